"""`vigil jobs run`: every due maintenance job now, in both modes, through the real command.

Portable mode runs the jobs of vigil.portable_jobs, TimescaleDB mode its policies and job
procedures with `CALL run_job(id)`; neither runs the alert jobs (detect, evaluate_rules).
The TimescaleDB lane's server takes one connection at a time: no connection is open while
the command runs.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.conftest import venv_bin
from tests.support.timescale import PGlite

Conn = psycopg.Connection[tuple[object, ...]]

LINE = re.compile(r"^(\S.*?)  (\d+\.\d\d) s(  FAILED: (.*))?$")
ALERT_JOBS = {"detect", "evaluate_rules", "detect_job", "evaluate_rules_job"}


@dataclass(frozen=True)
class Run:
    code: int
    jobs: dict[str, str | None]  # job -> its error (None: success), in the order run
    out: str
    err: str


def vigil_jobs(url: str, tmp: Path, *args: str) -> Run:
    env = {**os.environ, "DATABASE_URL": url, "VIGIL_DATA_DIR": str(tmp)}
    proc = subprocess.run(
        [venv_bin("vigil"), "jobs", *args], env=env, capture_output=True, text=True, timeout=120
    )
    jobs: dict[str, str | None] = {}
    for line in proc.stdout.splitlines():
        m = LINE.match(line)
        if m:
            jobs[m.group(1)] = m.group(4)
    return Run(proc.returncode, jobs, proc.stdout, proc.stderr)


# Two series, 10-second points over two closed hours: [H-4h, H-2h) with H the current hour.
LOAD = """
with s as (select id from vigil.series_ids(array['cpu', 'cpu'],
                                           array['{"host":"a"}', '{"host":"b"}']::jsonb[]))
insert into vigil.points (series_id, at, value)
select s.id, date_trunc('hour', now()) - interval '4 hours' + i * interval '10 seconds',
       (s.id * 1000 + i % 97)::float8
  from s, generate_series(0, 719) i
"""
# The hour rollup of those hours as stored (materialized only), and from the raw points.
HOURS = """
select series_id, bucket, n, total from vigil.points_hour
 where bucket >= date_trunc('hour', now()) - interval '4 hours'
   and bucket < date_trunc('hour', now()) - interval '2 hours'
 order by 1, 2
"""
RAW_HOURS = """
select series_id, date_trunc('hour', at, 'UTC'), count(*), sum(value) from vigil.points
 group by 1, 2 order by 1, 2
"""


def load_points(dsn: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(LOAD)
        return c.execute(RAW_HOURS).fetchall()


def stored_hours(dsn: str, timescale: bool) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn, autocommit=True) as c:
        if timescale:  # what the refresh materialized, not the real-time union
            c.execute("alter materialized view vigil.points_hour"
                      " set (timescaledb.materialized_only = true)")  # fmt: skip
        return c.execute(HOURS).fetchall()


def test_run_makes_the_rollups_complete_portable(dsn: str, tmp_path: Path) -> None:
    raw = load_points(dsn)
    assert len(raw) == 4
    assert stored_hours(dsn, False) == [], "rollups complete before the run: nothing is proven"
    with psycopg.connect(dsn, autocommit=True) as c:
        # Between 00:00 and 05:00 UTC the loaded hours lie in yesterday, a closed day the pack
        # job would fold into vigil.points_packed (which then stands in for points_hour).
        c.execute("update vigil.portable_jobs set config = config || '{\"after\": \"2 days\"}'"
                  " where job = 'pack_series_points'")  # fmt: skip
    run = vigil_jobs(dsn, tmp_path, "run")
    assert run.code == 0, run.err
    assert "refresh_series_rollups" in run.jobs
    assert set(run.jobs.values()) == {None}
    assert not ALERT_JOBS & set(run.jobs)
    assert stored_hours(dsn, False) == raw


@pytest.mark.timescale
def test_run_makes_the_rollups_complete_timescale(
    ts_dsn: str, pglite: PGlite, tmp_path: Path
) -> None:
    raw = load_points(ts_dsn)
    assert len(raw) == 4
    assert stored_hours(ts_dsn, True) == [], "materialized before the run: nothing is proven"
    with psycopg.connect(ts_dsn, autocommit=True) as c:  # back to real-time reads
        c.execute("alter materialized view vigil.points_hour"
                  " set (timescaledb.materialized_only = false)")  # fmt: skip
    run = vigil_jobs(pglite.url, tmp_path, "run")
    assert run.code == 0, run.out + run.err
    assert "refresh_continuous_aggregate points_hour" in run.jobs
    assert "retention points_data" in run.jobs
    assert "refresh_series_rollups_job" in run.jobs
    assert set(run.jobs.values()) == {None}
    assert not ALERT_JOBS & set(run.jobs), run.out
    assert stored_hours(ts_dsn, True) == raw


def next_runs(conn: Conn) -> dict[str, object]:
    return dict(conn.execute("select job, next_run_at from vigil.portable_jobs").fetchall())  # type: ignore[arg-type]


def test_due_all_job_and_alert_jobs_portable(dsn: str, conn: Conn, tmp_path: Path) -> None:
    before = next_runs(conn)
    first = vigil_jobs(dsn, tmp_path, "run")
    assert first.code == 0, first.err
    maintenance = set(before) - {"detect", "evaluate_rules"}
    assert set(first.jobs) == maintenance
    after = next_runs(conn)
    # Each job ran once and is scheduled again; the alert jobs were left to the notifier.
    assert all(after[j] != before[j] for j in maintenance)
    assert after["detect"] == before["detect"]
    assert after["evaluate_rules"] == before["evaluate_rules"]

    again = vigil_jobs(dsn, tmp_path, "run")
    assert (again.code, again.jobs) == (0, {})
    assert "no maintenance job is due" in again.out

    every = vigil_jobs(dsn, tmp_path, "run", "--all")
    assert (every.code, set(every.jobs)) == (0, maintenance)

    one = vigil_jobs(dsn, tmp_path, "run", "--job", "prune_series")
    assert (one.code, list(one.jobs)) == (0, ["prune_series"])

    refused = vigil_jobs(dsn, tmp_path, "run", "--job", "detect")
    assert refused.code == 2
    assert "no maintenance job 'detect'" in refused.err
    assert refused.jobs == {}

    conn.execute("update vigil.portable_jobs set enabled = false where job = 'prune_checks'")
    disabled = vigil_jobs(dsn, tmp_path, "run", "--job", "prune_checks")
    assert disabled.code == 2 and "disabled" in disabled.err
    assert "prune_checks" not in vigil_jobs(dsn, tmp_path, "run", "--all").jobs

    listed = vigil_jobs(dsn, tmp_path, "list")
    assert listed.code == 0
    assert "prune_checks" in listed.out and "disabled" in listed.out
    assert "detect" not in listed.out.replace("prune_", "")


def test_a_failing_job_fails_the_command_and_the_others_run_portable(
    dsn: str, conn: Conn, tmp_path: Path
) -> None:
    conn.execute(
        'update vigil.portable_jobs set config = \'{"points": "ninety days"}\''
        " where job = 'prune_series'"
    )
    run = vigil_jobs(dsn, tmp_path, "run", "--all")
    assert run.code == 1
    error = run.jobs["prune_series"]
    assert error is not None and "interval" in error
    assert "1 job(s) failed: prune_series" in run.err
    assert run.jobs["refresh_series_rollups"] is None  # the others still ran
    row = conn.execute(
        "select last_error from vigil.portable_jobs where job = 'prune_series'"
    ).fetchone()
    assert row is not None and "interval" in str(row[0])


@pytest.mark.timescale
def test_by_id_and_a_failing_job_timescale(ts_dsn: str, pglite: PGlite, tmp_path: Path) -> None:
    listed = vigil_jobs(pglite.url, tmp_path, "list")
    assert listed.code == 0, listed.err
    assert "detect_job" not in listed.out and "evaluate_rules_job" not in listed.out
    with psycopg.connect(ts_dsn, autocommit=True) as c:
        row = c.execute(
            "select job_id from timescaledb_information.jobs"
            " where proc_name = 'prune_alert_events_job'"
        ).fetchone()
        assert row is not None
        job_id = int(str(row[0]))
        c.execute('select alter_job(%s, config => \'{"retention": "forever-ish"}\')', (job_id,))
    run = vigil_jobs(pglite.url, tmp_path, "run", "--job", str(job_id))
    assert run.code == 1
    assert list(run.jobs) == ["prune_alert_events_job"]
    error = run.jobs["prune_alert_events_job"]
    assert error is not None and "interval" in error, run.out
