"""The prober process: active HTTP checks of the configured services (uptime)."""
