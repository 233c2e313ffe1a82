"""Push checks: Healthchecks-compatible pings, Uptime Kuma pushes, `vigil check`."""
