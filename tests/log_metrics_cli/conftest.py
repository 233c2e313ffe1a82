"""Fixtures of the `vigil metrics` tests: one migrated database per module, real request
records and journal lines (or generated ones of the same shape), and the console script run
in this process (fast) or as a subprocess."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from api.requests.store import json_row
from tests.conftest import TEMPLATE, new_database
from tests.requests.data import access_lines
from tests.support.datasets import loghub_text
from vigil.accesslog import parse_clf
from vigil.cli.main import main
from vigil.cluster import Cluster

Conn = psycopg.Connection[tuple[Any, ...]]
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
"""The start of the current minute: the data sit in the minutes before it."""


@pytest.fixture(scope="module")
def lm_dsn(pg_cluster: Cluster) -> Iterator[str]:
    """A database of this module's own, with the log metrics."""
    with new_database(pg_cluster, TEMPLATE) as url:
        yield url


@pytest.fixture(scope="module")
def lm_conn(lm_dsn: str) -> Iterator[Conn]:
    with psycopg.connect(lm_dsn, autocommit=True) as c:
        yield c


# Data --------------------------------------------------------------------------------


def restamp_access(lines: list[bytes], end: datetime, seconds: int) -> list[bytes]:
    """Access log lines spread evenly over the `seconds` before `end` (the real log is from
    2015, past any retention)."""
    out = []
    for i, line in enumerate(lines):
        at = end - timedelta(seconds=seconds * (len(lines) - i) / len(lines))
        start, stop = line.index(b"["), line.index(b"]")
        out.append(line[: start + 1] + f"{at:%d/%b/%Y:%H:%M:%S} +0000".encode() + line[stop:])
    return out


def store_requests(conn: Conn, lines: list[bytes], host: str = "web-1") -> int:
    """Combined log lines as request records (vigil.requests_ingest); how many were stored."""
    rows = []
    for line in lines:
        r = parse_clf(line)
        rows.append(
            json_row(r, int.from_bytes(hashlib.sha256(line).digest()[:8], "big", signed=True), host)
        )
    conn.execute("select vigil.requests_ingest(%s::jsonb)", (json.dumps(rows),))
    return len(rows)


@dataclass(frozen=True)
class Line:
    at: datetime
    host: str
    unit: str
    priority: int
    message: str
    identifier: str


def store_journal(conn: Conn, lines: list[Line]) -> None:
    """Journal lines through vigil.journal_ingest (the arrays entry point)."""
    result = conn.execute(
        "select accepted from vigil.journal_ingest(%s, %s, %s, %s, %s, %s::smallint[], %s,"
        " %s::jsonb)",
        (
            [x.at for x in lines],
            [hashlib.sha256(f"{i}{x!r}".encode()).digest() for i, x in enumerate(lines)],
            [x.host for x in lines],
            [x.unit for x in lines],
            [None for _ in lines],
            [x.priority for x in lines],
            [x.message for x in lines],
            json.dumps([{"_HOSTNAME": x.host, "SYSLOG_IDENTIFIER": x.identifier} for x in lines]),
        ),
    ).fetchone()
    assert result == (len(lines),)


def openssh_lines(end: datetime, seconds: int, host: str, limit: int = 400) -> list[Line]:
    """sshd lines (loghub OpenSSH_2k.log, or generated ones of its format) spread over the
    `seconds` before `end`; `authentication failure` lines at priority 5, the others at 6."""
    texts = [t.split(": ", 1)[1] for t in loghub_text("OpenSSH").splitlines()[:limit] if ": " in t]
    return [
        Line(
            at=end - timedelta(seconds=seconds * (len(texts) - i) / len(texts)),
            host=host,
            unit="ssh.service",
            priority=5 if "authentication failure" in t else 6,
            message=t,
            identifier="sshd",
        )
        for i, t in enumerate(texts)
    ]


def real_access_lines(n: int) -> list[bytes]:
    return access_lines()[:n]


# The console script -------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        assert self.code == 0, self.err
        return json.loads(self.out)


Vigil = Callable[..., Result]


@pytest.fixture
def vigil(lm_dsn: str, monkeypatch: pytest.MonkeyPatch) -> Vigil:
    """`vigil ARGS` run by vigil.cli.main in this process (a subprocess costs half a second):
    its exit code, stdout and stderr."""
    for key in ("VIGIL_DATA_DIR", "VIGIL_URL", "VIGIL_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("DATABASE_URL", lm_dsn)

    def run(*args: str) -> Result:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse: usage errors (2), --help (0)
                code = exc.code if isinstance(exc.code, int) else 1
        return Result(code, out.getvalue(), err.getvalue())

    return run


def refused(result: Result, code: int = 1) -> str:
    """The one line on stderr of a command that must fail with exit code `code`."""
    assert result.code == code, (result.out, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err  # one line, never a traceback
    assert lines[0].startswith("vigil: "), lines[0]
    return lines[0]
