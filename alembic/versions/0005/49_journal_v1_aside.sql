-- Revision 0005, before 50_journal.sql: the journal's old layout (vigil.journal a table of
-- whole lines, dedupe by a 32-byte SHA-256) is renamed aside to vigil.journal_v1, with its
-- partitions and their indexes (journal_v1_pYYYYMMDD...), so 50_journal.sql creates the new
-- layout under the usual names and 51_journal_v1_convert.sql moves the lines over.
-- No-op on a database without the old layout (nothing renamed, nothing dropped).

do $$
declare
  v_rel record;
begin
  if coalesce((select c.relkind::text from pg_class c
                where c.oid = to_regclass('vigil.journal')), '') not in ('r', 'p') then
    return;
  end if;
  -- Functions whose types or names the new layout changes.
  drop function if exists vigil.journal_search(timestamptz, timestamptz, text, text, text,
                                               integer, text, timestamptz, bigint, boolean,
                                               integer, bigint);
  drop function if exists vigil._journal_columns();
  for v_rel in
    select c.relname, c.relkind from pg_class c
     where c.relnamespace = 'vigil'::regnamespace and c.relname ~ '^journal_p[0-9]{8}'
       and c.relkind in ('r', 'i')
     order by c.relkind desc
  loop
    execute format('alter %s vigil.%I rename to %I',
                   case v_rel.relkind when 'r' then 'table' else 'index' end,
                   v_rel.relname, 'journal_v1_' || substr(v_rel.relname, 9));
  end loop;
  alter table vigil.journal rename to journal_v1;
  alter index if exists vigil.journal_host_at_idx rename to journal_v1_host_at_idx;
end $$;
