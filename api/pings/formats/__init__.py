"""Pure parsers of the push check wire formats (no I/O)."""
