"""Pure parsers of collectd's wire formats."""
