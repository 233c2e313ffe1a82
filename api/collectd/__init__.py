"""collectd's write_http plugin (POST /collectd): value lists stored as numeric series."""
