"""The supervisor of `vigil run`: starts each role (`python -m api|notifier|prober`),
restarts one that dies with backoff while the others keep serving, and publishes the
state of every role in a small JSON file that /health reads.

- A role that exits while the supervisor is not stopping is started again after 1 s,
  doubling to 30 s for a role that keeps failing; the delay resets once a run lasted a
  minute. Every restart is logged and counted.
- An optional watched resource (the embedded PostgreSQL) is checked every few seconds and
  started again when it is down, counted like a role.
- On SIGTERM/SIGINT every child gets SIGTERM, then SIGKILL after a grace period. Each
  child runs in its own process group, so the terminal's Ctrl+C (SIGINT to the foreground
  group) reaches the supervisor only and the children stop once, in order, without a
  traceback each.
The status file (VIGIL_RUN_STATUS in the children's environment) is replaced atomically,
so a reader never sees half of it.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vigil.reconnect import Backoff

log = logging.getLogger("vigil.run")

STATUS_ENV = "VIGIL_RUN_STATUS"
STABLE_SECONDS = 60.0  # a run this long resets the restart delay
POLL_SECONDS = 0.2
WATCH_SECONDS = 5.0
STOP_GRACE_SECONDS = 10.0


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Role:
    """One supervised child process."""

    name: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    started_at: str = ""
    restarts: int = 0
    last_exit: int | None = None
    restart_at: float | None = None
    backoff: Backoff = field(default_factory=Backoff)

    def status(self) -> dict[str, Any]:
        up = self.process is not None and self.process.poll() is None
        return {
            "name": self.name,
            "status": "up" if up else "restarting",
            "pid": self.process.pid if up and self.process else None,
            "restarts": self.restarts,
            "started_at": self.started_at,
            "last_exit": self.last_exit,
        }


@dataclass
class Watched:
    """A resource that is not a child (the embedded PostgreSQL): checked and restarted."""

    name: str
    running: Callable[[], bool]
    start: Callable[[], None]
    restarts: int = 0
    up: bool = True
    next_check: float = 0.0
    backoff: Backoff = field(default_factory=Backoff)

    def status(self) -> dict[str, Any]:
        return {"name": self.name, "status": "up" if self.up else "down", "restarts": self.restarts}


class Supervisor:
    def __init__(
        self,
        roles: Sequence[str],
        env: Mapping[str, str],
        status_path: Path,
        watched: Sequence[Watched] = (),
    ) -> None:
        self.roles = [Role(name, [sys.executable, "-m", name]) for name in roles]
        self.watched = list(watched)
        self.status_path = status_path
        self.env = {**env, STATUS_ENV: str(status_path)}
        self.stop_event = threading.Event()

    def stop(self, *_: object) -> None:
        self.stop_event.set()

    def run(self) -> int:
        """Supervises until stopped; then stops every child. Returns 0."""
        for role in self.roles:
            self._start(role)
        self._publish()
        try:
            while not self.stop_event.wait(POLL_SECONDS):
                changed = any([self._tend(role) for role in self.roles])
                changed = any([self._watch(w) for w in self.watched]) or changed
                if changed:
                    self._publish()
        finally:
            self._stop_all()
            self._publish()
        return 0

    def _start(self, role: Role) -> None:
        # process_group=0: out of the terminal's group, see the module's docstring.
        role.process = subprocess.Popen(role.argv, env=self.env, process_group=0)
        role.started = time.monotonic()
        role.started_at = _now()
        role.restart_at = None

    def _tend(self, role: Role) -> bool:
        """Notices an exit and restarts when due; True when the role's state changed."""
        now = time.monotonic()
        if role.process is not None and role.restart_at is None:
            code = role.process.poll()
            if code is None:
                return False
            role.last_exit = code
            if now - role.started >= STABLE_SECONDS:
                role.backoff.reset()
            delay = role.backoff.next()
            role.restart_at = now + delay
            log.error("%s exited with status %s; restarting in %.0fs", role.name, code, delay)
            return True
        if role.restart_at is not None and now >= role.restart_at:
            role.restarts += 1
            self._start(role)
            log.warning("%s restarted (restart %d)", role.name, role.restarts)
            return True
        return False

    def _watch(self, watched: Watched) -> bool:
        now = time.monotonic()
        if now < watched.next_check:
            return False
        was_up = watched.up
        watched.up = watched.running()
        if watched.up:
            watched.backoff.reset()
            watched.next_check = now + WATCH_SECONDS
            return not was_up
        log.error("%s is down; starting it again", watched.name)
        try:
            watched.start()
            watched.restarts += 1
            watched.up = watched.running()
        except Exception as exc:  # any failure to start: try again after the backoff
            log.error("%s could not be started: %s", watched.name, exc)
        watched.next_check = now + (WATCH_SECONDS if watched.up else watched.backoff.next())
        return True

    def _stop_all(self) -> None:
        stop_processes([r.process for r in self.roles if r.process])

    def _publish(self) -> None:
        state = {
            "updated_at": _now(),
            "stopping": self.stop_event.is_set(),
            "roles": [r.status() for r in self.roles] + [w.status() for w in self.watched],
        }
        tmp = self.status_path.with_name(self.status_path.name + ".tmp")
        try:
            self.status_path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(state))
            os.replace(tmp, self.status_path)
        except OSError as exc:  # a full disk must not stop the supervisor
            log.warning("cannot write %s: %s", self.status_path, exc)


def stop_processes(
    processes: Sequence[subprocess.Popen[bytes]], grace: float = STOP_GRACE_SECONDS
) -> None:
    """SIGTERM to every process still running, all at once (they shut down in parallel),
    then SIGKILL to each one not gone within `grace` seconds of that."""
    alive = [p for p in processes if p.poll() is None]
    for process in alive:
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in alive:
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def read_status(path: str | None) -> list[dict[str, Any]]:
    """The roles of the supervisor's status file ([] without one or when unreadable)."""
    if not path:
        return []
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return []
    roles = data.get("roles") if isinstance(data, dict) else None
    return [r for r in roles if isinstance(r, dict)] if isinstance(roles, list) else []


def supervised_roles() -> list[dict[str, Any]]:
    """The roles that the supervisor of this process publishes (its status file, named by
    VIGIL_RUN_STATUS in the environment); [] for a process that runs on its own."""
    return read_status(os.environ.get(STATUS_ENV))
