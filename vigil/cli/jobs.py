"""`vigil jobs list|run`: the maintenance jobs, and running them now.

Maintenance is every registered job except the alert jobs (vigil._alert_jobs(): ping
detection and rule evaluation, which the notifier or TimescaleDB run every few seconds):
rollup refresh, compression, retention, partitions, index builds, packing. `vigil jobs run`
runs the due ones now, one transaction each, most frequent first, and returns when they are
done: after a bulk load, or before measuring. Portable mode runs them through
vigil.run_maintenance_job (the registry vigil.portable_jobs), TimescaleDB mode with
`CALL run_job(id)`.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg

from vigil import QUERIES
from vigil.cluster import database_url
from vigil.db import Conn
from vigil.settings import Settings

# TimescaleDB's procedure (a CALL, which cannot be prepared as a named query): runs one job
# or policy now in this session; it may commit inside, so the connection is autocommit.
RUN_TIMESCALE_JOB = "call run_job(%s)"


@dataclass(frozen=True)
class Job:
    name: str
    job_id: int | None  # TimescaleDB mode: the job id for run_job
    every: timedelta
    enabled: bool
    due: bool


def maintenance_jobs(conn: Conn) -> list[Job]:
    """The maintenance jobs of the active mode, most frequent first."""
    rows = conn.execute(QUERIES["maintenance_jobs"]).fetchall()
    return [
        Job(
            str(name),
            None if job_id is None else int(str(job_id)),
            every if isinstance(every, timedelta) else timedelta(0),
            bool(on),
            bool(due),
        )
        for name, job_id, every, on, due in rows
    ]


def run_job(conn: Conn, job: Job) -> str | None:
    """Runs one job now in its own transaction (conn is autocommit); its error, or None."""
    if job.job_id is None:
        row = conn.execute(QUERIES["run_maintenance_job"], (job.name,)).fetchone()
        return None if row is None or row[0] is None else str(row[0])
    try:
        conn.execute(RUN_TIMESCALE_JOB, (job.job_id,))
    except psycopg.Error as exc:
        return (exc.diag.message_primary or str(exc)).strip()
    return None


def select_jobs(jobs: list[Job], names: list[str] | None, every: bool) -> list[Job] | str:
    """The jobs to run: the named ones (enabled, due or not), all enabled ones with
    `every`, else the due ones; or why the names cannot be run."""
    if not names:
        return [j for j in jobs if j.enabled and (every or j.due)]
    by_name = {j.name: j for j in jobs} | {str(j.job_id): j for j in jobs if j.job_id}
    chosen: list[Job] = []
    for name in names:
        job = by_name.get(name)
        if job is None:
            known = ", ".join(j.name for j in jobs) or "none"
            return (
                f"no maintenance job {name!r} (alert jobs are run by the notifier; "
                f"maintenance jobs: {known})"
            )
        if not job.enabled:
            return f"job {job.name!r} is disabled; enable it first (see docs/dba.md)"
        if job not in chosen:
            chosen.append(job)
    return chosen


def cmd_jobs(settings: Settings, args: argparse.Namespace) -> int:
    with database_url(settings) as url, psycopg.connect(url, autocommit=True) as conn:
        jobs = maintenance_jobs(conn)
        if args.action == "list":
            print(f"{'job':<44} {'id':>6} {'every':>16}  state")
            for j in jobs:
                state = "disabled" if not j.enabled else "due" if j.due else "scheduled"
                print(f"{j.name:<44} {j.job_id or '-':>6} {j.every!s:>16}  {state}")
            return 0
        chosen = select_jobs(jobs, args.job, args.all)
        if isinstance(chosen, str):
            print(f"vigil: {chosen}", file=sys.stderr)
            return 2
        failed = []
        for job in chosen:
            t0 = time.perf_counter()
            error = run_job(conn, job)
            seconds = time.perf_counter() - t0
            if error is None:
                print(f"{job.name}  {seconds:.2f} s", flush=True)
            else:
                print(f"{job.name}  {seconds:.2f} s  FAILED: {error}", flush=True)
                failed.append(job.name)
    if failed:
        print(f"vigil: {len(failed)} job(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    if not chosen:
        print("no maintenance job is due (--all runs every one)")
    return 0


def register(subparsers: Any) -> dict[str, Any]:
    jobs = subparsers.add_parser("jobs", help="maintenance jobs: list, run now")
    actions = jobs.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="maintenance jobs of the active mode, due or not")
    run = actions.add_parser(
        "run",
        help="run the due maintenance jobs now and wait for them (rollups, compression, "
        "retention, index builds, packing; never alert detection)",
    )
    which = run.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true", help="every enabled job, due or not")
    which.add_argument(
        "--job", action="append", metavar="NAME", help="this job (repeatable), due or not"
    )
    return {"jobs": cmd_jobs}
