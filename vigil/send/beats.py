"""`vigil send ping|disk|docker|run`: heartbeats (POST /metric, metrics-sender's report) and
cron job wrapping (Healthchecks-style pings, or heartbeats plus a journal line)."""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import httpx

from vigil.send.client import USER_AGENT, Backoff, Client, Refused, Unreachable
from vigil.send.deliver import encode, post_lines
from vigil.send.lines import JOURNAL_ROUTE

log = logging.getLogger("vigil.send")

OUTPUT_TAIL = 10_000  # bytes of a job's output sent (Healthchecks keeps as much)


class DockerError(RuntimeError):
    """The running containers could not be listed."""


def report(host: str, name: str, kind: str, value: str | None) -> dict[str, Any]:
    """metrics-sender's report; the server stamps it with its own time."""
    body: dict[str, Any] = {"host": host, "name": name, "type": kind}
    if value is not None:
        body["value"] = value
    return body


def with_retries(call: Callable[[], Any], retry_for: float, what: str) -> bool:
    """call() until it does not raise Unreachable, for up to retry_for seconds."""
    backoff = Backoff()
    started = time.monotonic()
    while True:
        try:
            call()
            return True
        except Unreachable as exc:
            if time.monotonic() - started >= retry_for:
                log.error("%s: Vigil unreachable for %.0f s (%s)", what, retry_for, exc)
                return False
            time.sleep(
                min(backoff.next_delay(), max(0.0, retry_for - (time.monotonic() - started)))
            )


class Sender:
    """Posts reports and journal records, or prints them (dry run)."""

    def __init__(self, client: Client | None, out: TextIO | None = None, retry_for: float = 30.0):
        self.client = client
        self.out = out if out is not None else sys.stdout
        self.retry_for = retry_for

    def close(self) -> None:
        if self.client is not None:
            self.client.close()

    def _show(self, route: str, body: bytes) -> None:
        self.out.write(f"POST {route}\n{body.decode()}\n")
        self.out.flush()

    def metric(self, body: dict[str, Any]) -> bool:
        data = json.dumps(body).encode()
        if self.client is None:
            self._show("/metric", data)
            return True
        client = self.client
        return with_retries(
            lambda: client.post("/metric", data), self.retry_for, f"{body['type']} {body['name']}"
        )

    def journal(self, record: dict[str, Any]) -> bool:
        line = encode(record)
        if self.client is None:
            self._show(JOURNAL_ROUTE, line)
            return True
        client = self.client
        return with_retries(
            lambda: post_lines(client, JOURNAL_ROUTE, [line]), self.retry_for, "journal line"
        )


def disk_percent(mount: str) -> str:
    """Percent used as `df` computes it (used / (used + available to users), rounded up),
    an integer string; "100" when it cannot be measured (metrics-sender's convention)."""
    try:
        st = os.statvfs(mount)
    except OSError as exc:
        log.warning("cannot measure %s: %s; reporting 100", mount, exc)
        return "100"
    used = st.f_blocks - st.f_bfree
    total = used + st.f_bavail
    if total <= 0:
        return "100"
    return str(math.ceil(used * 100 / total))


def docker_containers(docker: str = "docker") -> list[str]:
    """The names of the running containers (`docker ps`)."""
    if shutil.which(docker) is None:
        raise DockerError(f"{docker} not found on PATH")
    result = subprocess.run(
        [docker, "ps", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise DockerError(f"docker ps failed ({result.returncode}): {result.stderr.strip()}")
    return [n.strip() for n in result.stdout.splitlines() if n.strip()]


@dataclass
class RunResult:
    status: int
    seconds: float
    tail: bytes


def run_command(cmd: Sequence[str], out: Any = None) -> RunResult:
    """Runs cmd, passing its output (stdout and stderr, merged) through to ours and keeping
    the last OUTPUT_TAIL bytes; the exit status is the shell's (128 + N for a signal)."""
    out = out if out is not None else sys.stdout.buffer
    started = time.monotonic()
    try:
        proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except OSError as exc:
        message = f"vigil send run: cannot start {cmd[0]}: {exc}\n".encode()
        out.write(message)
        out.flush()
        return RunResult(127 if isinstance(exc, FileNotFoundError) else 126, 0.0, message)
    assert proc.stdout is not None
    tail = bytearray()
    forward = {s: signal.signal(s, lambda n, _: proc.send_signal(n)) for s in (signal.SIGTERM,)}
    try:
        with proc.stdout:
            while chunk := os.read(proc.stdout.fileno(), 65536):
                out.write(chunk)
                out.flush()
                tail += chunk
                if len(tail) > 2 * OUTPUT_TAIL:
                    del tail[:-OUTPUT_TAIL]
        status = proc.wait()
    finally:
        for s, handler in forward.items():
            signal.signal(s, handler)
    if status < 0:
        status = 128 - status
    return RunResult(status, time.monotonic() - started, bytes(tail[-OUTPUT_TAIL:]))


class HealthchecksPinger:
    """Healthchecks' ping API: URL/start, then URL/<exit status> with the output as body,
    paired by ?rid=. URL is Vigil's /ping/<secret> (or any Healthchecks-compatible URL)."""

    def __init__(self, url: str, shown: str, dry_run: bool, out: TextIO | None = None) -> None:
        self.url = url.rstrip("/")
        self.shown = shown.rstrip("/")  # the URL with its secret masked, for messages
        self.dry_run = dry_run
        self.out = out if out is not None else sys.stdout
        self.rid = str(uuid.uuid4())
        self.http = httpx.Client(timeout=10.0, headers={"User-Agent": USER_AGENT})

    def ping(self, suffix: str, body: bytes = b"", retry_for: float = 30.0) -> bool:
        url = f"{self.url}/{suffix}"
        if self.dry_run:
            self.out.write(f"POST {self.shown}/{suffix}?rid={self.rid} ({len(body)} bytes)\n")
            return True

        def call() -> None:
            try:
                reply = self.http.post(url, params={"rid": self.rid}, content=body)
            except httpx.TransportError as exc:
                raise Unreachable(str(exc) or type(exc).__name__) from None
            if reply.status_code >= 500 or reply.status_code in (408, 429):
                raise Unreachable(f"HTTP {reply.status_code}")
            if reply.status_code >= 400:
                raise Refused(reply.status_code, reply.text)

        try:
            return with_retries(call, retry_for, f"ping {suffix}")
        except Refused as exc:
            log.error("ping %s refused: %s", suffix, exc)
            return False

    def close(self) -> None:
        self.http.close()
