"""A comparable description of schema ``vigil`` from the catalogs (pg_dump cannot be used
against the TimescaleDB test server: it runs PostgreSQL 17, the machine's pg_dump is 15).

Two databases with equal fingerprints have the same tables, columns (type, default, not
null), constraints, indexes, views, functions and procedures (full definitions),
triggers, comments, seed rows of the tuning tables and, in TimescaleDB mode, the same
hypertables and jobs (procedure, interval, config; job ids are left out as they differ).
"""

from __future__ import annotations

from typing import Any

import psycopg

Conn = psycopg.Connection[tuple[Any, ...]]

SCHEMA = "vigil"

# TimescaleDB names internal objects by id, and ids differ between two databases:
# _materialized_hypertable_44, _hyper_3_7_chunk, continuous_agg_invalidation_trigger('44'),
# cagg_watermark(44).
TIMESCALE_IDS = (
    r"(_materialized_hypertable_|_partial_view_|_direct_view_|_hyper_"
    r"|invalidation_trigger\('|cagg_watermark\()[0-9_]+"
)

QUERIES: dict[str, str] = {
    "relations": """
        select c.relname, c.relkind::text, c.relpersistence::text,
               obj_description(c.oid, 'pg_class')
          from pg_class c
         where c.relnamespace = %(schema)s::regnamespace
           and c.relkind in ('r', 'p', 'v', 'm', 'S', 'f', 'c')
         order by 1""",
    "columns": """
        select c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid), a.attidentity::text, a.attgenerated::text,
               col_description(c.oid, a.attnum)
          from pg_attribute a
          join pg_class c on c.oid = a.attrelid
          left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
         where c.relnamespace = %(schema)s::regnamespace and a.attnum > 0 and not a.attisdropped
           and c.relkind in ('r', 'p', 'v', 'm', 'f', 'c')
         order by 1, a.attnum""",
    "constraints": """
        select c.relname, k.conname, pg_get_constraintdef(k.oid, true),
               obj_description(k.oid, 'pg_constraint')
          from pg_constraint k join pg_class c on c.oid = k.conrelid
         where c.relnamespace = %(schema)s::regnamespace
         order by 1, 2""",
    "indexes": """
        select c.relname, pg_get_indexdef(i.indexrelid), obj_description(i.indexrelid, 'pg_class')
          from pg_index i join pg_class c on c.oid = i.indrelid
         where c.relnamespace = %(schema)s::regnamespace
         order by 1, 2""",
    "views": """
        select c.relname, regexp_replace(pg_get_viewdef(c.oid, true), %(ids)s, '\\1#', 'g')
          from pg_class c
         where c.relnamespace = %(schema)s::regnamespace and c.relkind in ('v', 'm')
         order by 1""",
    "functions": """
        select p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
               p.prokind::text, pg_get_functiondef(p.oid),
               obj_description(p.oid, 'pg_proc')
          from pg_proc p
         where p.pronamespace = %(schema)s::regnamespace and p.prokind in ('f', 'p', 'w')
         order by 1""",
    "aggregates": """
        select p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
               obj_description(p.oid, 'pg_proc')
          from pg_proc p
         where p.pronamespace = %(schema)s::regnamespace and p.prokind = 'a'
         order by 1""",
    "triggers": """
        select c.relname, t.tgname,
               regexp_replace(pg_get_triggerdef(t.oid, true), %(ids)s, '\\1#', 'g')
          from pg_trigger t join pg_class c on c.oid = t.tgrelid
         where c.relnamespace = %(schema)s::regnamespace and not t.tgisinternal
         order by 1, 2""",
    "types": """
        select t.typname, t.typtype::text, obj_description(t.oid, 'pg_type'),
               (select array_agg(e.enumlabel order by e.enumsortorder)
                  from pg_enum e where e.enumtypid = t.oid)
          from pg_type t
         where t.typnamespace = %(schema)s::regnamespace and t.typtype in ('e', 'd')
         order by 1""",
    "schema": """
        select nspname, obj_description(oid, 'pg_namespace')
          from pg_namespace where nspname = %(schema)s""",
}

# Seed rows of the tables a DBA tunes (time-dependent columns left out).
SEED_QUERIES: dict[str, str] = {
    "rules": "select to_jsonb(r) from vigil.rules r order by 1",
    "alert_rules": (
        "select to_jsonb(r) - 'id' - 'created_at' - 'updated_at' - 'next_eval_at' "
        "from vigil.alert_rules r order by r.name"
    ),
    "portable_jobs": (
        "select to_jsonb(j) - 'next_run_at' from vigil.portable_jobs j order by j.job"
    ),
}

TIMESCALE_QUERIES: dict[str, str] = {
    "hypertables": """
        select d.hypertable_name, d.column_name, d.dimension_type, d.time_interval::text,
               d.integer_interval, d.num_partitions
          from timescaledb_information.dimensions d
         where d.hypertable_schema = %(schema)s
         order by 1, 2""",
    "jobs": """
        select proc_schema, proc_name, schedule_interval::text, max_runtime::text,
               max_retries, retry_period::text, scheduled,
               (config - 'hypertable_id' - 'mat_hypertable_id')::text,  -- ids differ
               hypertable_schema, hypertable_name
          from timescaledb_information.jobs
         where proc_schema = %(schema)s or hypertable_schema = %(schema)s
         order by 1, 2, hypertable_name, 8""",
}


def has_timescale(conn: Conn) -> bool:
    row = conn.execute("select exists (select from pg_extension where extname = 'timescaledb')")
    found = row.fetchone()
    return bool(found and found[0])


def fingerprint(conn: Conn, schema: str = SCHEMA) -> dict[str, list[tuple[Any, ...]]]:
    """The catalog description of ``schema``: section name -> sorted rows."""
    params = {"schema": schema, "ids": TIMESCALE_IDS}
    out: dict[str, list[tuple[Any, ...]]] = {}
    # Type names and definitions are printed relative to search_path: pin it.
    saved = conn.execute("select current_setting('search_path')").fetchone()
    assert saved is not None
    conn.execute("select set_config('search_path', 'pg_catalog', false)")
    try:
        for name, sql in QUERIES.items():
            out[name] = list(conn.execute(sql, params))
        for name, sql in SEED_QUERIES.items():
            out["seed:" + name] = list(conn.execute(sql))
        if has_timescale(conn):
            for name, sql in TIMESCALE_QUERIES.items():
                out["timescaledb:" + name] = list(conn.execute(sql, params))
    finally:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.INERROR:
            conn.execute("select set_config('search_path', %s, false)", (saved[0],))
    return out


def diff(a: dict[str, list[tuple[Any, ...]]], b: dict[str, list[tuple[Any, ...]]]) -> list[str]:
    """Human-readable differences (empty when equal), for assertion messages."""
    lines: list[str] = []
    for section in sorted(set(a) | set(b)):
        rows_a, rows_b = a.get(section, []), b.get(section, [])
        for row in rows_a:
            if row not in rows_b:
                lines.append(f"{section}: only in first: {row!r}")
        for row in rows_b:
            if row not in rows_a:
                lines.append(f"{section}: only in second: {row!r}")
        if not lines and rows_a != rows_b:
            lines.append(f"{section}: same rows, different order")
    return lines
