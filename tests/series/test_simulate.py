"""`vigil simulate` against a real API server: upstream defaults, then batches."""

from __future__ import annotations

import os
import re
import subprocess
from typing import Any

import psycopg

from tests.conftest import ApiServer, venv_bin

Conn = psycopg.Connection[Any]


def simulate(api: ApiServer, token: str, *args: str) -> tuple[int, dict[str, int]]:
    env = {**os.environ, "VIGIL_TOKEN": token}
    res = subprocess.run(
        [venv_bin("vigil"), "simulate", "--url", api.url, "--report-every", "0", *args],
        env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    match = re.search(r"sent=(\d+) accepted=(\d+) failed=(\d+)", res.stdout)
    assert match, res.stdout + res.stderr
    sent, accepted, failed = map(int, match.groups())
    return res.returncode, {"sent": sent, "accepted": accepted, "failed": failed}


def test_upstream_defaults(api: ApiServer, token: str, conn: Conn) -> None:
    code, counts = simulate(api, token, "--duration", "1.4")
    assert code == 0
    # 20 senders, one POST every 300 ms each: 5 rounds in 1.4 s at most (a sender that falls
    # behind catches up, never ahead of its schedule). How many rounds a loaded machine
    # completes in time is not the point: every sender posted, none faster than its pace.
    assert counts["accepted"] == counts["sent"] and counts["failed"] == 0
    per_series = conn.execute(
        "select s.name, count(*) from vigil.points p join vigil.series s on s.id = p.series_id"
        " group by 1 order by 1"
    ).fetchall()
    assert [n for n, _ in per_series] == [f"metric_{c}" for c in "abcdefghijklmnopqrst"]
    assert all(1 <= int(str(points)) <= 5 for _, points in per_series), per_series
    assert 20 <= counts["sent"] <= 100
    lo, hi = conn.execute("select min(value), max(value) from vigil.points").fetchone()  # type: ignore[misc]
    assert 20 <= lo <= hi <= 40
    assert conn.execute("select count(*) from vigil.points").fetchone() == (counts["sent"],)


def test_batches_rate_and_failures(api: ApiServer, token: str, conn: Conn) -> None:
    code, counts = simulate(
        api, token, "--series", "30", "--rate", "2000", "--batch-size", "250", "--duration", "1"
    )
    assert code == 0
    assert counts["sent"] == 2000 and counts["accepted"] == 2000
    assert conn.execute("select count(distinct series_id) from vigil.points").fetchone() == (30,)
    code, counts = simulate(api, "wrong-token", "--duration", "0.5", "--series", "2")
    assert code == 1
    assert counts["accepted"] == 0 and counts["failed"] == counts["sent"] > 0
