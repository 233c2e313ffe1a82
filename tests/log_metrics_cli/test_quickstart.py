"""The quickstart of docs/log-metrics.md end to end with real processes: `vigil api` and
`vigil notifier` (the fake Telegram), `vigil send file ACCESS_LOG --follow --format combined
--now` following a file, `vigil metrics create --default`, and the real access log appended
a few hundred lines at a time until the default alert `totaltraffic` (more than 1000
requests in a minute) fires: in `vigil alerts --json`, `vigil alerts get totaltraffic` and
as a Telegram sendMessage."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import free_port
from tests.requests.data import access_lines
from tests.send.conftest import Sender, sender_env
from tests.support.fake_telegram import FakeTelegram
from tests.support.processes import VIGIL, vigil_env, vigil_process, wait_http, wait_until
from vigil import tokens

FAST = ["--poll", "0.05", "--batch-wait", "0.1"]
CHUNK = 300


def vigil(dsn: str, *args: str) -> Any:
    """`vigil ARGS --json` as a script runs it: its parsed output."""
    run = subprocess.run(
        [VIGIL, *args], env=vigil_env(dsn), capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout) if "--json" in args else run.stdout


@pytest.fixture
def sender_procs() -> Iterator[list[Sender]]:
    started: list[Sender] = []
    yield started
    for s in started:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()


def test_quickstart_totaltraffic_fires_on_telegram(
    dsn: str, telegram: FakeTelegram, tmp_path: Path, sender_procs: list[Sender]
) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        token = tokens.create(conn, "quickstart")
    port = free_port()
    env = vigil_env(dsn, VIGIL_PORT=str(port), **telegram.env())
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "access.log"
    log.write_bytes(b"")
    lines = access_lines()
    with (
        vigil_process("api", env, tmp_path / "api.log"),
        vigil_process("notifier", env, tmp_path / "notifier.log"),
        psycopg.connect(dsn, autocommit=True) as conn,
    ):
        wait_http(url + "/health")
        sender = Sender(
            ["file", str(log), "--follow", "--format", "combined", "--now",
             "--state-file", str(tmp_path / "send.json"), *FAST],
            sender_env(tmp_path, url, token),
            tmp_path / "send.err",
        )  # fmt: skip
        sender_procs.append(sender)

        # the defaults, as created: the metric refreshed every minute, the rule as shipped
        created = vigil(dsn, "metrics", "create", "--default", "--json")
        assert "totaltraffic" in created["created"]
        (metric,) = [
            m for m in vigil(dsn, "metrics", "list", "--json") if m["id"] == "totaltraffic"
        ]
        assert (metric["source"], metric["stat"], metric["props"], metric["period"]) == (
            "requests", "count", [], "1m"
        )  # fmt: skip
        rule = vigil(dsn, "alerts", "meta", "totaltraffic", "--json")
        assert (rule["match_name"], rule["agg"], rule["op"], rule["threshold"]) == (
            "totaltraffic", "max", ">", 1000
        )  # fmt: skip

        # a first few hundred lines: under the threshold, counted by the default metric
        def append(start: int) -> None:
            with log.open("ab") as f:
                f.write(b"\n".join(lines[start : start + CHUNK]) + b"\n")

        append(0)
        sent = CHUNK

        def stored() -> int:
            row = conn.execute("select count(*) from vigil.requests").fetchone()
            return int(row[0]) if row else 0

        wait_until(lambda: stored() >= CHUNK, timeout=20, what="the first lines stored")
        # counted by the job at the rates as shipped (refresh every 10 s, job every 5 s)
        wait_until(
            lambda: (
                conn.execute(
                    "select exists (select from vigil.log_metric_latest('totaltraffic', 5))"
                ).fetchone()
                == (True,)
            ),
            timeout=25,
            what="the first observation of totaltraffic",
        )
        (first,) = vigil(dsn, "metrics", "get", "totaltraffic", "--json", "--limit", "1")
        assert set(first) == {"time", "groups", "value"} and 1 <= first["value"] <= CHUNK
        # then faster than shipped, to keep the test short: the metric refreshed every
        # second (and the job that refreshes the due ones), the rule evaluated every second
        conn.execute(
            "update vigil.log_metrics set refresh_rate = interval '1 second', "
            "next_refresh_at = now() where id = 'totaltraffic'"
        )
        conn.execute(
            "update vigil.portable_jobs set schedule_interval = interval '1 second', "
            "next_run_at = now() where call = 'vigil.refresh_log_metrics'"
        )
        conn.execute(
            "update vigil.alert_rules set eval_interval = interval '1 second' "
            "where name = 'totaltraffic'"
        )
        early = vigil(dsn, "alerts", "get", "totaltraffic", "--json")
        assert all(a["state"] == "normal" for a in early), early  # 300 lines: under 1000

        # then more, a few hundred lines at a time, until it fires
        deadline = time.monotonic() + 40
        while not any("totaltraffic" in t for t in telegram.texts()):
            assert time.monotonic() < deadline, "totaltraffic did not fire on Telegram"
            if sent + CHUNK <= len(lines) and stored() >= sent - CHUNK:
                append(sent)
                sent += CHUNK
            time.sleep(0.3)

        firing = [a for a in vigil(dsn, "alerts", "--json") if a["rule"] == "totaltraffic"]
        assert [a["state"] for a in firing] == ["firing"]
        assert firing[0]["value"] > 1000
        (got,) = vigil(dsn, "alerts", "get", "totaltraffic", "--json")
        assert got["state"] == "firing" and got["value"] > 1000
        top = max(r["value"] for r in vigil(dsn, "metrics", "get", "totaltraffic", "--json"))
        assert top > 1000
        frame = vigil(dsn, "alerts", "observe", "--count", "1")
        assert "1 firing" in frame and "totaltraffic" in frame
        assert sender.proc.poll() is None, sender.stderr()
    told = [t for t in telegram.texts() if "totaltraffic" in t]
    assert len(told) == 1, telegram.texts()  # one message per change of state
