"""`vigil send file`: files -> batches in the spool -> Vigil, with positions kept.

The loop, single-threaded: poll every file (Tail), turn new lines into records (lines.py),
seal a batch into the spool when it has `batch_lines` lines, `batch_bytes` bytes or is
`batch_wait` seconds old, then send the spooled batches oldest first; while Vigil is
unreachable, retry with exponential backoff (up to 30 s) and keep reading into the spool.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from vigil.send.client import Backoff, Client, Refused, Unreachable
from vigil.send.deliver import encode, post_lines
from vigil.send.follow import Position, Tail
from vigil.send.lines import FORMATS, JOURNAL_ROUTE, Source, Stamp
from vigil.send.spool import Sealed, Store

log = logging.getLogger("vigil.send")


class Fatal(RuntimeError):
    """Stop: retrying cannot help (e.g. the token is refused)."""


@dataclass
class Options:
    paths: list[Path]
    format: str = "auto"
    follow: bool = False
    now: bool = False
    group: str | None = None
    host: str = "localhost"
    batch_lines: int = 1000
    batch_bytes: int = 1 << 20
    batch_wait: float = 1.0
    poll: float = 0.2
    settle: float = 5.0  # partial last line / rotated file: seconds without growth
    retry_for: float = 60.0  # without --follow: give up sending after this long
    spool_max_bytes: int = 100 << 20


@dataclass
class Pending:
    lines: list[bytes] = field(default_factory=list)
    size: int = 0
    since: float = 0.0


class FileSender:
    def __init__(
        self,
        options: Options,
        store: Store | None,
        client: Client | None,
        out: TextIO | None = None,
        resume: dict[str, Any] | None = None,
    ) -> None:
        self.o = options
        self.store = store  # None: --dry-run
        self.client = client
        self.out = out if out is not None else sys.stdout
        self.format = FORMATS[options.format]
        if resume is None:
            resume = store.resume_state() if store else {}
        saved = resume.get("files") or {}
        self.tails = [
            Tail(p, Position.from_json(saved.get(str(p))), options.settle) for p in options.paths
        ]
        self.saved = saved
        self.pending: dict[str, Pending] = {}
        self.last_us = 0
        self.backoff = Backoff()
        self.next_try = 0.0
        self.unreachable_since: float | None = None
        self.stopping = False
        self.sent_lines = 0

    # --- reading ---

    def _stamp_us(self) -> int:
        us = max(time.time_ns() // 1000, self.last_us + 1)  # strictly increasing: keeps order
        self.last_us = us
        return us

    def _add(self, route: str, line: bytes, now: float) -> None:
        pending = self.pending.setdefault(route, Pending())
        if not pending.lines:
            pending.since = now
        pending.lines.append(line)
        pending.size += len(line) + 1

    def _full(self) -> bool:
        return any(
            p.size >= self.o.batch_bytes or len(p.lines) >= self.o.batch_lines
            for p in self.pending.values()
        )

    def read(self, now: float, final: bool = False) -> int:
        """Reads what is new in every file (up to a quarter batch of bytes each), sealing
        full batches. A batch is sealed only between polls: the positions it records are
        then those after its last line."""
        n = 0
        limit = max(64 * 1024, self.o.batch_bytes // 4)
        for tail in self.tails:
            room = self.o.batch_lines - max(
                (len(p.lines) for p in self.pending.values()), default=0
            )
            for line, offset, file_id in tail.poll(now, final, limit, max(1, room)):
                source = Source(str(tail.path), file_id, self.o.host, self.o.group)
                route, record = self.format(
                    line, offset, source, Stamp(self._stamp_us(), self.o.now)
                )
                self._add(route, encode(record), now)
                n += 1
            if self._full():
                self.seal()
        return n

    def positions(self) -> dict[str, Any]:
        files = dict(self.saved)
        for tail in self.tails:
            position = tail.position()
            if position is not None:
                files[str(tail.path)] = position
        return {"files": files}

    def seal(self) -> None:
        """Every pending line into the spool (one batch per route), with the positions
        after them."""
        routes = [(r, p) for r, p in self.pending.items() if p.lines]
        if not routes:
            return
        state = self.positions()
        for route, pending in routes:
            if self.store is None:
                self.out.write(f"POST {route} ({len(pending.lines)} lines)\n")
                self.out.write(b"\n".join(pending.lines).decode() + "\n")
                self.out.flush()
            else:
                self.store.seal(route, pending.lines, state)
        self.pending.clear()
        if self.store is not None:
            self._enforce_cap()

    def due(self, now: float) -> bool:
        return any(p.lines and now - p.since >= self.o.batch_wait for p in self.pending.values())

    def _enforce_cap(self) -> None:
        """Drops the oldest batches past the spool's cap; counts them (reported to Vigil
        once it answers again)."""
        assert self.store is not None
        dropped = 0
        for path in self.store.over_cap():
            with contextlib.suppress(OSError, ValueError, KeyError):
                dropped += self.store.read(path).lines
            self.store.discard(path)
        if dropped:
            self.store.count("unreported_dropped_lines", dropped)
            total = self.store.count("dropped_lines", dropped)
            log.warning(
                "the spool reached its cap of %d bytes while Vigil was unreachable; dropped "
                "the oldest %d lines (%d in total)",
                self.o.spool_max_bytes,
                dropped,
                total,
            )

    def _report_drops(self) -> None:
        """After a delivery: one journal line saying how many lines the cap dropped."""
        assert self.store is not None
        counters = self.store.counters
        dropped = counters.get("unreported_dropped_lines", 0)
        if not dropped:
            return
        total = counters.get("dropped_lines", dropped)
        record = {
            "__REALTIME_TIMESTAMP": str(self._stamp_us()),
            "_HOSTNAME": self.o.host,
            "SYSLOG_IDENTIFIER": "vigil-send",
            "PRIORITY": "4",
            "MESSAGE": f"vigil send: Vigil was unreachable and the spool reached its cap of "
            f"{self.o.spool_max_bytes} bytes: {dropped} lines were dropped, the oldest first "
            f"({total} in total for this state file)",
            "VIGIL_DROPPED_LINES": str(dropped),
            "VIGIL_DROPPED_TOTAL": str(total),
        }
        if self.o.group:
            record["_SYSTEMD_UNIT"] = self.o.group
        self._add(JOURNAL_ROUTE, encode(record), time.monotonic())
        self.store.count("unreported_dropped_lines", -dropped)

    # --- sending ---

    def _send_one(self, batch: Sealed) -> None:
        assert self.client is not None and self.store is not None
        try:
            post_lines(self.client, batch.route, batch.body.rstrip(b"\n").split(b"\n"))
        except Refused as exc:
            if exc.status in (401, 403):
                raise Fatal(f"Vigil refused the token ({exc}); the spool is kept") from None
            if exc.status == 404:
                raise Fatal(
                    f"{self.client.target.shown}{batch.route}: {exc}; is this Vigil's URL?"
                ) from None
            # The server will never take this batch: skip it, say so, count it.
            total = self.store.count("refused_lines", batch.lines)
            log.error(
                "Vigil refused a batch of %d lines (%s); skipped (%d so far)",
                batch.lines,
                exc,
                total,
            )
        self.store.acknowledge(batch)
        self.sent_lines += batch.lines

    def send(self, now: float) -> None:
        """Sends spooled batches, oldest first, until one fails (then backs off)."""
        if self.store is None or self.client is None or now < self.next_try:
            return
        for path in self.store.pending():
            try:
                batch = self.store.read(path)
            except (OSError, ValueError, KeyError) as exc:
                log.error("unreadable spool file %s (%s): moved aside", path, exc)
                path.rename(path.with_suffix(".bad"))
                self.store.discard(path)
                continue
            try:
                self._send_one(batch)
            except Unreachable as exc:
                delay = self.backoff.next_delay()
                if self.unreachable_since is None:
                    self.unreachable_since = now
                log.warning(
                    "Vigil unreachable (%s); %d batches (%d bytes) spooled; retry in %.1f s",
                    exc,
                    len(self.store.pending()),
                    self.store.spooled_bytes(),
                    delay,
                )
                self.next_try = time.monotonic() + delay
                return
            if self.unreachable_since is not None:
                log.warning("Vigil reachable again; sending the spool")
                self.unreachable_since = None
            self.backoff.reset()
            self.next_try = 0.0
            self._report_drops()

    # --- the loop ---

    def _on_signal(self, signum: int, _: FrameType | None) -> None:
        self.stopping = True

    def run(self, sleep: Callable[[float], None] = time.sleep) -> int:
        """Follows (or reads to the end) and sends; the exit code."""
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            return self._loop(sleep)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            for tail in self.tails:
                tail.close()

    def _loop(self, sleep: Callable[[float], None]) -> int:
        while True:
            now = time.monotonic()
            read = self.read(now, final=self.stopping or not self.o.follow)
            all_read = all(t.done for t in self.tails)
            if self.stopping or (not self.o.follow and all_read) or self.due(now):
                self.seal()
            self.send(now)
            pending = self.store.pending() if self.store else []
            if self.stopping:
                if pending:
                    log.warning(
                        "stopping with %d batches in the spool; they are sent next time",
                        len(pending),
                    )
                return 0
            if not self.o.follow and all_read and not any(p.lines for p in self.pending.values()):
                if not pending:
                    return 0
                if (
                    self.unreachable_since is not None
                    and now - self.unreachable_since >= self.o.retry_for
                ):
                    log.error(
                        "Vigil unreachable for %.0f s: %d batches stay in the spool and are "
                        "sent on the next run",
                        now - self.unreachable_since,
                        len(pending),
                    )
                    return 1
            if not read:
                wake = self.o.poll
                if pending and self.next_try:
                    wake = min(wake, max(0.0, self.next_try - time.monotonic()))
                sleep(wake)
