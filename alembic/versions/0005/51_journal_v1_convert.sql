-- Revision 0005, after 50_journal.sql: the lines of the old layout (vigil.journal_v1, see
-- 49_journal_v1_aside.sql) move to vigil.journal_lines and vigil.journal_sets with their
-- ids, so every read (vigil.journal, journal_search, paging, counts) returns what it did;
-- then the old table goes. No-op on a database without vigil.journal_v1.

do $$
declare
  v_ids        bigint[];
  v_units      text[];
  v_containers text[];
  v_realtime   boolean[];
  v_cursor_s   text[];
  v_cursor_b   text[];
  v_fields     jsonb[];
  v_moved      record;
  v_line       record;
  v_key        integer;
  v_last       bigint;
begin
  if to_regclass('vigil.journal_v1') is null then
    return;
  end if;
  perform vigil.journal_ensure_partition(d.day)
     from (select distinct (at at time zone 'UTC')::date as day from vigil.journal_v1) d;
  create temp table journal_v1_split on commit drop as
  select o.id, o.at, vigil._journal_key(o.sha256) as key, o.priority,
         vigil._journal_set_id(o.unit, o.container, sp.realtime, sp.cursor_s, sp.cursor_b,
                               sp.shared) as set_id,
         o.host, o.unit, o.container, o.message, sp.realtime, sp.cursor_s, sp.cursor_b,
         sp.shared, sp.own
    from vigil.journal_v1 o
    cross join lateral vigil._journal_split(o.fields, o.at) sp;
  select array_agg(d.set_id), array_agg(d.unit), array_agg(d.container), array_agg(d.realtime),
         array_agg(d.cursor_s), array_agg(d.cursor_b), array_agg(d.shared)
    into v_ids, v_units, v_containers, v_realtime, v_cursor_s, v_cursor_b, v_fields
    from (select distinct set_id, unit, container, realtime, cursor_s, cursor_b, shared
            from journal_v1_split) d;
  for v_moved in select * from vigil.journal_sets_put(v_ids, v_units, v_containers,
                                                      v_realtime, v_cursor_s, v_cursor_b,
                                                      v_fields)
  loop
    update journal_v1_split s set set_id = v_moved.stored
     where s.set_id = v_ids[v_moved.idx] and s.unit is not distinct from v_units[v_moved.idx]
       and s.container is not distinct from v_containers[v_moved.idx]
       and s.realtime = v_realtime[v_moved.idx]
       and s.cursor_s is not distinct from v_cursor_s[v_moved.idx]
       and s.cursor_b is not distinct from v_cursor_b[v_moved.idx]
       and s.shared = v_fields[v_moved.idx];
  end loop;
  insert into vigil.journal_lines (id, at, key, priority, set_id, host, message, fields)
  select id, at, key, priority, set_id, host, message, own from journal_v1_split order by at
  on conflict do nothing;
  -- Distinct old lines whose time and first 32 bits of SHA-256 agree: the next free key.
  for v_line in
    select s.* from journal_v1_split s
     where not exists (select from vigil.journal_lines l
                        where l.at = s.at and l.key = s.key and l.id = s.id)
  loop
    v_key := v_line.key;
    loop
      v_key := case when v_key = 2147483647 then -2147483648 else v_key + 1 end;
      insert into vigil.journal_lines (id, at, key, priority, set_id, host, message, fields)
      values (v_line.id, v_line.at, v_key, v_line.priority, v_line.set_id, v_line.host,
              v_line.message, v_line.own)
      on conflict do nothing;
      exit when found;
    end loop;
  end loop;
  -- New lines continue the old arrival order (the live tail's cursor).
  v_last := pg_sequence_last_value(pg_get_serial_sequence('vigil.journal_v1', 'id'));
  if v_last is not null then
    perform setval(pg_get_serial_sequence('vigil.journal_lines', 'id'), v_last);
  end if;
  drop table vigil.journal_v1 cascade;
end $$;
