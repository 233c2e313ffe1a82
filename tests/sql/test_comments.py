"""Every table, view, function and procedure of schema vigil has a COMMENT, so `\\d+` and
`\\df+` explain the system to a DBA. Runs in both database modes (``db``)."""

from __future__ import annotations

from tests.support.sql import Conn

UNCOMMENTED_SQL = """
select case c.relkind when 'v' then 'view' when 'm' then 'materialized view'
                      else 'table' end || ' vigil.' || c.relname
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where n.nspname = 'vigil' and c.relkind in ('r', 'p', 'v', 'm', 'f')
   and coalesce(obj_description(c.oid, 'pg_class'), '') = ''
union all
select case p.prokind when 'p' then 'procedure' else 'function' end
       || ' vigil.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')'
  from pg_proc p join pg_namespace n on n.oid = p.pronamespace
 where n.nspname = 'vigil' and p.prokind in ('f', 'p', 'w', 'a')
   and coalesce(obj_description(p.oid, 'pg_proc'), '') = ''
   -- objects of an extension installed into schema vigil are not ours to comment
   and not exists (select from pg_depend d where d.classid = 'pg_proc'::regclass
                      and d.objid = p.oid and d.deptype = 'e')
order by 1
"""


def test_every_table_view_and_function_is_commented(db: Conn) -> None:
    missing = [str(r[0]) for r in db.execute(UNCOMMENTED_SQL)]
    assert missing == [], "add COMMENT ON for: " + ", ".join(missing)


def test_the_check_notices_an_uncommented_object(db: Conn) -> None:
    db.execute("create table vigil.undocumented (id integer)")
    db.execute("create function vigil.undocumented_fn() returns integer language sql as 'select 1'")
    missing = [str(r[0]) for r in db.execute(UNCOMMENTED_SQL)]
    assert "table vigil.undocumented" in missing
    assert "function vigil.undocumented_fn()" in missing
