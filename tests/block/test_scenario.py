"""The issue's scenario on the real access log (../shared/data/access/apache_combined_5k.log,
or in a clone without it the generated log of the same shape, tests/requests/data.py): a
fail2ban-like rule blocks the noisy IP, the export lists it, ingest from it gets 403, and the
expiry lifts it.

The log is replayed as the quickstart appends a sample log: every line, in order, stamped
within the last whole minute (its lines' own times are from 2015 and a block lasts from
now). A log metric counts the responses 401/403/404 per client IP per minute
(vigil.log_metric_create, sql/62_log_metrics.sql); the rule `--series` on it, above 19,
blocks for 1h. Which IPs must be blocked is computed from the file itself."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.conftest import ApiServer
from tests.notifier.relays import drain_until, relay_for
from tests.requests.data import ACCESS_LOG, NOISY_IP, access_lines, access_lines_are_real
from tests.support.fake_telegram import FakeTelegram
from vigil.cli.main import main

Conn = psycopg.Connection[tuple[object, ...]]
FILE_ID = ACCESS_LOG.rsplit("/", 1)[-1]
STAMP = re.compile(r"\[(\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2}) [+-]\d{4}\]")
DENIED = {"401", "403", "404"}
THRESHOLD = 19


def denied_by_ip(lines: list[str]) -> Counter[str]:
    """Responses 401/403/404 per client IP in the file (one minute, replayed)."""
    return Counter(
        line.split(" ", 1)[0]
        for line in lines
        if (parts := line.split('"'))
        and len(parts) > 2
        and parts[2].split()[:1] in [[d] for d in DENIED]
    )


def noisy_ips(lines: list[str]) -> set[str]:
    """IPs with more than THRESHOLD responses 401/403/404 in the file."""
    return {ip for ip, n in denied_by_ip(lines).items() if n > THRESHOLD}


def replay(lines: list[str], minute: datetime) -> bytes:
    """The lines, in order, stamped within `minute` (its first 50 seconds), as NDJSON with
    the file id and byte offset of each line, as a sender following the file sends them
    (identical lines at different offsets are distinct requests)."""
    out = []
    offset = 0
    for i, line in enumerate(lines):
        at = minute + timedelta(seconds=50 * i / len(lines))
        stamped = STAMP.sub(at.strftime("[%d/%b/%Y:%H:%M:%S +0000]"), line, count=1)
        record = {"line": stamped, "format": "combined", "file_id": FILE_ID, "offset": offset}
        out.append(json.dumps(record))
        offset += len(line.encode()) + 1
    return ("\n".join(out) + "\n").encode()


def poll(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_a_rule_blocks_the_noisy_ip_of_the_real_access_log(
    api: ApiServer,
    conn: Conn,
    dsn: str,
    token: str,
    telegram: FakeTelegram,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    lines = [line.decode() for line in access_lines()]
    expected = noisy_ips(lines)
    # the real log: 208.91.156.11 with 34 of them, the next IP has 7
    assert expected == {"208.91.156.11" if access_lines_are_real() else NOISY_IP}
    (noisy,) = expected
    denied = denied_by_ip(lines)[noisy]
    assert denied >= 20
    minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    auth = {"Authorization": f"Bearer {token}"}
    r = httpx.post(
        api.url + "/v1/requests",
        params={"host": "web-1"},
        content=replay(lines, minute),
        headers={**auth, "Content-Type": "application/x-ndjson"},
        timeout=60,
    )
    assert r.status_code in (200, 202), r.text
    assert r.json()["accepted"] == len(lines)

    conn.execute(
        "select vigil.log_metric_create('http_denied_by_ip', 'requests', 'count', null, '{ip}',"
        " '1 minute', '1 minute', %s)",
        (Jsonb({"status": [401, 403, 404]}),),
    )
    conn.execute("select vigil.log_metric_refresh('http_denied_by_ip')")
    monkeypatch.setenv("DATABASE_URL", dsn)
    code = main(
        ["rules", "add", "noisy-ip", "--series", "http_denied_by_ip", "--agg", "max", "--window",
         "5m", "--above", str(THRESHOLD), "--group-wait", "0s", "--block-for", "1h"]
    )  # fmt: skip
    assert code == 0
    assert "blocks the address in label ip for 1h" in capsys.readouterr().out
    conn.execute("select vigil.evaluate_rules(now())")

    blocked = conn.execute(
        "select host(network), reason, added_by, expires_at - added_at"
        " from vigil.blocked_networks where expires_at > now()"
    ).fetchall()
    assert blocked == [
        (
            noisy,
            f"rule noisy-ip: http_denied_by_ip = {denied}",
            "rule:noisy-ip",
            timedelta(hours=1),
        )
    ]
    # Telegram is told, in the firing message.
    relay = relay_for(dsn, telegram)
    drain_until(relay, conn, None)
    texts = telegram.texts()
    assert len(texts) == 1 and "Alert: noisy-ip" in texts[0]
    assert f"Blocked {noisy} for 1h (until " in texts[0]

    # The export lists it.
    export = httpx.get(api.url + "/v1/block/export", headers=auth, timeout=10)
    assert export.text == f"deny {noisy};\n"
    # Ingest from it gets 403 (within the guard's cache time); others are served.
    line = lines[0].encode()
    from_ip = {**auth, "X-Forwarded-For": noisy, "Content-Type": "text/plain"}

    def status(headers: dict[str, str]) -> int:
        return httpx.post(
            api.url + "/v1/requests", content=line, headers=headers, timeout=10
        ).status_code

    assert poll(lambda: status(from_ip) == 403, timeout=7)
    assert status({**auth, "X-Forwarded-For": "83.149.9.216"}) in (200, 202)
    # Expiry lifts it: the hour is up (moved to two seconds from now).
    conn.execute("update vigil.blocked_networks set expires_at = now() + interval '2 seconds'")
    assert poll(lambda: status(from_ip) in (200, 202), timeout=10)
    export = httpx.get(api.url + "/v1/block/export", headers=auth, timeout=10)
    assert export.text == ""
