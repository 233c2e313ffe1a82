"""What every Vigil process (`python -m api|notifier|prober`) does first: read and check
its settings (a clear message and exit status 2 when they are wrong), set up logging."""

from __future__ import annotations

import sys
from collections.abc import Callable

from vigil.logs import configure_logging
from vigil.settings import Settings, SettingsError


def run_process(main: Callable[[Settings], None]) -> int:
    """Runs `main` with the environment's settings; the exit status of the process."""
    try:
        settings = Settings.from_env()
        settings.require_database_url()
    except SettingsError as exc:
        print(f"vigil: {exc}", file=sys.stderr)
        return 2
    configure_logging()
    try:
        main(settings)
    except KeyboardInterrupt:  # Ctrl+C on a role run alone (`vigil api`): no traceback
        print("vigil: interrupted", file=sys.stderr)
        return 130
    return 0
