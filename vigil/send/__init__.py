"""`vigil send`: a sender that speaks HTTP to Vigil (httpx) and never touches its database.

It imports nothing from the server packages (api, notifier, prober) and no database driver,
so it can run on any machine that has the `vigil` package installed.
"""
