"""`vigil send journal`: journald -> POST /journal, resuming at a persisted cursor.

`journalctl -o json` prints one JSON object per entry, each with its `__CURSOR`. The lines
are sent unchanged (as NDJSON), and the cursor of the last line of a batch is written to the
state file (atomically) only after Vigil acknowledged that batch; the next run starts with
`--after-cursor` there. A crash between the POST and the state write sends that batch once
more, byte for byte, and the server stores nothing twice: no gaps, no repeats.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, TextIO

from vigil.send.client import Backoff, Client, Refused, Unreachable
from vigil.send.deliver import post_lines
from vigil.send.files import Fatal
from vigil.send.lines import JOURNAL_ROUTE
from vigil.send.spool import StateLocked, write_atomically

log = logging.getLogger("vigil.send")


@dataclass
class JournalOptions:
    state_file: Path
    follow: bool = False
    since: str | None = None  # first run only (no cursor yet); None: the whole journal
    directory: str | None = None  # journalctl -D
    files: tuple[str, ...] = ()  # journalctl --file
    batch_lines: int = 1000
    batch_bytes: int = 1 << 20
    batch_wait: float = 1.0
    retry_for: float = 60.0  # without --follow: give up after this long unreachable


def journalctl_command(o: JournalOptions, cursor: str | None) -> list[str]:
    cmd = ["journalctl", "-o", "json", "--no-pager", "-q"]
    if cursor:
        cmd += ["--after-cursor", cursor]
    elif o.since:
        cmd += ["--since", o.since]
    if o.directory:
        cmd += ["-D", o.directory]
    for f in o.files:
        cmd += ["--file", f]
    if o.follow:
        cmd += ["--follow", "--no-tail"]
    return cmd


def _pump(stream: IO[bytes], out: queue.Queue[bytes | None]) -> None:
    for line in stream:
        out.put(line)
    out.put(None)


class JournalSender:
    def __init__(self, o: JournalOptions, client: Client | None, out: TextIO | None = None) -> None:
        self.o = o
        self.client = client  # None: --dry-run
        self.out = out if out is not None else sys.stdout
        self.stopping = False
        self.backoff = Backoff()
        self.cursor: str | None = None
        self.sent = 0

    def _load_cursor(self) -> str | None:
        try:
            data = json.loads(self.o.state_file.read_bytes())
        except FileNotFoundError:
            return None
        except ValueError as exc:
            raise Fatal(f"{self.o.state_file} is not a vigil send state file: {exc}") from None
        cursor = data.get("cursor") if isinstance(data, dict) else None
        return cursor if isinstance(cursor, str) and cursor else None

    def _on_signal(self, signum: int, _: FrameType | None) -> None:
        self.stopping = True

    def _deliver(self, lines: list[bytes], cursor: str | None) -> bool:
        """Sends one batch until acknowledged (or gives up); then persists its cursor."""
        if self.client is None:
            self.out.write(f"POST {JOURNAL_ROUTE} ({len(lines)} lines)\n")
            self.out.write(b"".join(lines).decode("utf-8", "backslashreplace"))
            self.out.flush()
            return True
        body = [line.rstrip(b"\n") for line in lines]
        down_since: float | None = None
        while True:
            try:
                post_lines(self.client, JOURNAL_ROUTE, body)
                break
            except Refused as exc:
                if exc.status in (401, 403, 404):
                    raise Fatal(f"Vigil refused the batch: {exc}") from None
                log.error("Vigil refused a batch of %d entries (%s); skipped", len(lines), exc)
                break
            except Unreachable as exc:
                now = time.monotonic()
                down_since = down_since or now
                if self.stopping or (not self.o.follow and now - down_since >= self.o.retry_for):
                    log.error("Vigil unreachable (%s); the cursor stays before this batch", exc)
                    return False
                delay = self.backoff.next_delay()
                log.warning("Vigil unreachable (%s); retry in %.1f s", exc, delay)
                deadline = time.monotonic() + delay
                while time.monotonic() < deadline and not self.stopping:
                    time.sleep(0.05)
        self.backoff.reset()
        self.sent += len(lines)
        log.info("sent %d entries (%d in this run)", len(lines), self.sent)
        if cursor:
            self.cursor = cursor
            write_atomically(self.o.state_file, json.dumps({"cursor": cursor}).encode())
        return True

    def run(self) -> int:
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        lock = None
        try:
            if self.client is not None:
                lock = _lock(self.o.state_file)
            return self._run()
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            if lock is not None:
                lock.close()

    def _run(self) -> int:
        cursor = self._load_cursor()
        cmd = journalctl_command(self.o, cursor)
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)  # its stderr is ours
        except FileNotFoundError:
            raise Fatal("journalctl not found on PATH") from None
        assert proc.stdout is not None
        lines: queue.Queue[bytes | None] = queue.Queue(maxsize=4 * self.o.batch_lines)
        pump = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
        pump.start()
        batch: list[bytes] = []
        size = 0
        since = 0.0
        last_cursor: str | None = None
        ended = False
        ok = True
        try:
            while not ended:
                timeout = max(0.0, since + self.o.batch_wait - time.monotonic()) if batch else 0.2
                try:
                    line = lines.get(timeout=timeout)
                except queue.Empty:
                    line = b""
                if line is None:
                    ended = True
                elif line.strip().startswith(b"{"):
                    with_cursor = _cursor(line)
                    last_cursor = with_cursor or last_cursor
                    if not batch:
                        since = time.monotonic()
                    batch.append(line if line.endswith(b"\n") else line + b"\n")
                    size += len(line)
                full = len(batch) >= self.o.batch_lines or size >= self.o.batch_bytes
                late = batch and time.monotonic() - since >= self.o.batch_wait
                if batch and (full or late or ended or self.stopping):
                    if not self._deliver(batch, last_cursor):
                        ok = False
                        break
                    batch, size = [], 0
                if self.stopping:
                    break
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            # the pump reaches the end of the pipe: take what it still holds (unsent: the
            # cursor stays before it), then close the pipe
            deadline = time.monotonic() + 5
            while pump.is_alive() and time.monotonic() < deadline:
                with contextlib.suppress(queue.Empty):
                    lines.get(timeout=0.1)
            pump.join(timeout=1)
            if not pump.is_alive():
                proc.stdout.close()
        if not ok:
            return 1
        if ended and proc.returncode not in (0, None) and not self.stopping:
            log.error("journalctl exited with status %s", proc.returncode)
            return 1
        return 0


def _cursor(line: bytes) -> str | None:
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    cursor = obj.get("__CURSOR") if isinstance(obj, dict) else None
    return cursor if isinstance(cursor, str) else None


def _lock(state_file: Path) -> IO[str]:
    import fcntl

    state_file.parent.mkdir(parents=True, exist_ok=True)
    handle = state_file.with_name(state_file.name + ".lock").open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise StateLocked(f"{state_file} is in use by another vigil send") from None
    return handle
