-- Revision 0007, before 50_journal.sql: journal lines stored before the typed cursor
-- columns (vigil.journal_lines with the cursor parts and _PID in its fields) are renamed
-- aside to vigil.journal_lines_v2, with their partitions (journal_v2_pYYYYMMDD), indexes
-- and identity sequence, so 50_journal.sql creates the new layout under the usual names
-- and 51_journal_v2_convert.sql moves the lines over. TimescaleDB mode: the hypertable is
-- renamed (its chunks, compressed or not, stay its own). No-op on a database without the
-- old layout.

do $$
declare
  v_rel record;
begin
  if to_regclass('vigil.journal_lines') is null
     or exists (select from pg_attribute
                 where attrelid = 'vigil.journal_lines'::regclass and attname = 'seqnum'
                   and not attisdropped) then
    return;
  end if;
  for v_rel in
    select c.relname, c.relkind from pg_class c
     where c.relnamespace = 'vigil'::regnamespace and c.relname ~ '^journal_p[0-9]{8}'
       and c.relkind in ('r', 'i')
     order by c.relkind desc
  loop
    execute format('alter %s vigil.%I rename to %I',
                   case v_rel.relkind when 'r' then 'table' else 'index' end,
                   v_rel.relname, 'journal_v2_' || substr(v_rel.relname, 9));
  end loop;
  -- Its indexes (the unique (at, key), (host, at), ids, and TimescaleDB's (at desc)).
  for v_rel in
    select c.relname from pg_index x join pg_class c on c.oid = x.indexrelid
     where x.indrelid = 'vigil.journal_lines'::regclass and c.relname like 'journal\_lines\_%'
  loop
    execute format('alter index vigil.%I rename to %I', v_rel.relname,
                   'journal_lines_v2_' || substr(v_rel.relname, 15));
  end loop;
  alter table vigil.journal_lines rename to journal_lines_v2;
  alter sequence if exists vigil.journal_lines_id_seq rename to journal_lines_v2_id_seq;
end $$;
