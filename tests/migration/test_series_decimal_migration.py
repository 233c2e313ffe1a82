"""Revision 0007 converts a TimescaleDB-mode install from the layout before it (vigil.points a
hypertable of float8 values, continuous aggregates per minute, hour and day) to values stored
as decimals in vigil.points_data: the raw points read back identical, and every read returns
what it returned before the upgrade, also for the hours and days older than the raw points
(kept in the archive of the old aggregates)."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from alembic import command

from tests.migration.test_series_storage_migration import assert_same_reads, reads
from tests.series import cases
from tests.support.timescale import PGlite
from vigil.migrate import alembic_config


@pytest.mark.timescale
def test_timescale_old_layout_is_converted_and_read_the_same(ts_empty: PGlite) -> None:
    command.upgrade(alembic_config(ts_empty.url), "0006")
    with psycopg.connect(ts_empty.dsn, autocommit=True) as c:
        # A DBA's own raw retention and compression age: kept by the upgrade.
        c.execute("select remove_retention_policy('vigil.points')")
        c.execute("select add_retention_policy('vigil.points', interval '60 days')")
        c.execute("select remove_compression_policy('vigil.points')")
        c.execute(
            "select add_compression_policy('vigil.points', compress_after => interval '2 hours')"
        )
        now = c.execute("select now()").fetchone()[0]  # type: ignore[index]
        end = now - timedelta(minutes=10)
        rds = cases.shifted(cases.nab_series("rds_cpu_utilization_cc0c53.csv"), end)
        ec2 = cases.shifted(cases.nab_series("ec2_cpu_utilization_825cc2.csv"), end)
        a = cases.insert_points(c, "cpu", {"host": "db-1"}, rds)
        b = cases.insert_points(c, "cpu", {"host": "web-1"}, ec2)
        for tier in cases.GRANULARITIES:
            c.execute(
                f"call refresh_continuous_aggregate('vigil.points_{tier}', null,"
                f" date_trunc('{tier}', now(), 'UTC'))"
            )
        # Retention dropped the raw points of the oldest days: their hours and days are only
        # in the aggregates (what the reads return there).
        cut = rds[0][0].replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=3)
        c.execute("select drop_chunks('vigil.points', older_than => %s::timestamptz)", (cut,))
        # A point in an old, materialized hour not refreshed since (read raw before and after).
        late = rds[-500][0] + timedelta(seconds=1)
        cases.insert_points(c, "cpu", {"host": "db-1"}, [(late, 1 / 3)])
        lo, hi = rds[0][0] - timedelta(days=1), now + timedelta(hours=1)
        before = reads(c, lo, hi)
        # Minutes are kept as long as the raw points (90 days, the old minute aggregate's
        # retention too): those of the dropped days go with them.
        for key in [k for k in before if k.startswith("minute")]:
            before[key] = [r for r in before[key] if r[0] >= cut]
        raw = {sid: cases.raw_points(c, sid) for sid in (a, b)}
        assert min(at for at, _ in raw[a]) >= cut

    command.upgrade(alembic_config(ts_empty.url), "head")
    with psycopg.connect(ts_empty.dsn, autocommit=True) as c:
        kinds = c.execute(
            "select c.relname, c.relkind from pg_class c join pg_namespace n"
            " on n.oid = c.relnamespace where n.nspname = 'vigil'"
            " and c.relname ~ '^points(_data|_minute|_hour|_day)?(_v1|_archive)?$' order by 1"
        ).fetchall()
        assert kinds == [
            ("points", "v"),
            ("points_data", "r"),
            ("points_day", "v"),
            ("points_day_archive", "r"),
            ("points_hour", "v"),
            ("points_hour_archive", "r"),
            ("points_minute", "v"),
        ]
        until: dict[str, object] = dict(
            c.execute("select tier, until from vigil.points_archive_until").fetchall()
        )
        assert until == {"hour": cut, "day": cut}
        tuned = c.execute(
            "select count(*) filter (where proc_name = 'policy_retention'"
            "   and (config ->> 'drop_after')::interval = '60 days'),"
            " count(*) filter (where proc_name = 'policy_compression'"
            "   and (config ->> 'compress_after')::interval = '2 hours'),"
            " count(*) from timescaledb_information.jobs"
            " where hypertable_name = 'points_data'"
            "   and proc_name in ('policy_retention', 'policy_compression')"
        ).fetchone()
        assert tuned == (1, 1, 2)
        for sid in (a, b):
            assert cases.raw_points(c, sid) == raw[sid]  # the same float8, bit for bit
        stored = c.execute(
            "select count(*) filter (where f is null), count(*) from vigil.points_data"
        ).fetchone()
        # Most values are short decimals (m, e); 1/3 and float noise such as 94.79799999999999
        # (the SQL encoder keeps no residual) stay floats.
        assert stored is not None and stored[1] * 0.8 < stored[0] < stored[1]
        assert_same_reads(reads(c, lo, hi), before)
        # The hourly job materializes every raw chunk's buckets; the reads stay the same.
        (job,) = c.execute(
            "select job_id from timescaledb_information.jobs"
            " where proc_name = 'refresh_series_rollups_job'"
        ).fetchone()  # type: ignore[misc]
        c.execute("call run_job(%s)", (job,))
        assert c.execute("select count(*) from vigil.points_hour").fetchone()[0] > 24  # type: ignore[index]
        for j in c.execute(
            "select job_id from timescaledb_information.jobs"
            " where proc_name = 'policy_compression' and hypertable_name like 'points%'"
        ).fetchall():
            c.execute("call run_job(%s)", j)
        compressed = c.execute(
            "select count(*) from timescaledb_information.chunks"
            " where hypertable_name = 'points_data' and is_compressed"
        ).fetchone()
        assert compressed is not None and compressed[0] >= 9
        assert_same_reads(reads(c, lo, hi), before)
        # A deleted series leaves nothing behind, the archive included.
        c.execute("select vigil.delete_series(%s)", (a,))
        left = c.execute(
            "select (select count(*) from vigil.points_data where series_id = %s)"
            " + (select count(*) from vigil.points_hour_archive where series_id = %s)",
            (a, a),
        ).fetchone()
        assert left == (0,)
