"""The `vigil` command line: one module per group of subcommands; `main` parses and runs."""
