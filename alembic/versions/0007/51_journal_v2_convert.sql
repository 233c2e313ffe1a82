-- Revision 0007, after 50_journal.sql: the lines of the old layout (vigil.journal_lines_v2,
-- see 49_journal_v2_aside.sql) move to the new vigil.journal_lines with their ids and sets:
-- the short cursor "i;m;x" and _PID of their fields become the typed columns (seqnum,
-- booted, xor_hash, pid), a line with a typed cursor gets the dedupe key 0 (the next free
-- key when another line has the same time), and every read (vigil.journal, journal_search,
-- paging, counts) returns what it did. Then the old table goes (in TimescaleDB mode with
-- its chunks, compressed ones included). No-op on a database without vigil.journal_lines_v2.

do $$
declare
  v_line record;
  v_key  integer;
  v_last bigint;
  v_ids  boolean := to_regclass('vigil.journal_lines_v2_ids_idx') is not null;
  v_sets       bigint[];
  v_units      text[];
  v_containers text[];
  v_realtime   boolean[];
  v_cursor_s   text[];
  v_cursor_b   text[];
  v_fields     jsonb[];
  v_old        bigint[];
  v_moved      record;
begin
  if to_regclass('vigil.journal_lines_v2') is null then
    return;
  end if;
  perform vigil.journal_ensure_partition(d.day)
     from (select distinct (at at time zone 'UTC')::date as day
             from vigil.journal_lines_v2) d;
  -- The sets of lines whose cursor is not stored typed now (kept whole in the fields): the
  -- same set without cursor parts (the set ingest gives such a line), stored below.
  create temp table journal_v2_reset (old_set bigint primary key, set_id bigint not null)
    on commit drop;
  -- The lines as they are stored now: computed as read (no copy of the whole journal
  -- beside the old and the new table).
  create temp view journal_v2_split as
  select o.id, o.at, o.priority,
         case when c.short is null or c.typed then o.set_id else r.set_id end as set_id,
         not (c.short is null or c.typed) as reset, o.set_id as old_set,
         o.host, o.message, o.ids,
         case when c.typed then 0 else o.key end as key,
         case when c.typed then vigil._journal_hex(c.i) end as seqnum,
         case when c.typed then vigil._journal_us(o.at) - vigil._journal_hex(c.m) end as booted,
         case when c.typed then vigil._journal_hex(c.x) end as xor_hash,
         p.pid,
         nullif(case when c.short is null then o.fields
                     when c.typed then o.fields - '__CURSOR'
                     else o.fields || jsonb_build_object(
                            '__CURSOR', vigil._journal_cursor(s.cursor_s, s.cursor_b, c.short,
                                                              o.at),
                            '__MONOTONIC_TIMESTAMP', vigil._journal_hex(c.m)::text) end
                - case when p.pid is not null then '_PID' else '' end, '{}') as fields
    from vigil.journal_lines_v2 o
    join vigil.journal_sets s on s.id = o.set_id
    left join pg_temp.journal_v2_reset r on r.old_set = o.set_id
   cross join lateral (
         select case when s.cursor_s is not null then o.fields ->> '__CURSOR' end as short) c0
   cross join lateral (
         select c0.short,
                split_part(c0.short, ';', 1) as i, split_part(c0.short, ';', 2) as m,
                split_part(c0.short, ';', 3) as x,
                coalesce(vigil._journal_hex_ok(split_part(c0.short, ';', 1))
                         and vigil._journal_hex_ok(split_part(c0.short, ';', 2))
                         and vigil._journal_hex_ok(split_part(c0.short, ';', 3)), false)
                  as typed) c
   cross join lateral (
         select case when jsonb_typeof(o.fields -> '_PID') = 'string'
                      and o.fields ->> '_PID' ~ '^(0|[1-9][0-9]{0,9})$'
                      and (o.fields ->> '_PID')::bigint <= 2147483647
                     then (o.fields ->> '_PID')::integer end as pid) p;
  select array_agg(vigil._journal_set_id(s.unit, s.container, s.realtime, null, null,
                                         s.fields)),
         array_agg(s.unit), array_agg(s.container), array_agg(s.realtime),
         array_agg(null::text), array_agg(null::text), array_agg(s.fields), array_agg(s.id)
    into v_sets, v_units, v_containers, v_realtime, v_cursor_s, v_cursor_b, v_fields, v_old
    from vigil.journal_sets s
   where s.id in (select old_set from pg_temp.journal_v2_split where reset);
  if v_sets is not null then
    insert into pg_temp.journal_v2_reset (old_set, set_id)
    select * from unnest(v_old, v_sets);
    for v_moved in select * from vigil.journal_sets_put(v_sets, v_units, v_containers,
                                                        v_realtime, v_cursor_s, v_cursor_b,
                                                        v_fields)
    loop
      update pg_temp.journal_v2_reset set set_id = v_moved.stored
       where old_set = v_old[v_moved.idx];
    end loop;
  end if;
  insert into vigil.journal_lines (id, at, set_id, seqnum, booted, xor_hash, key, pid, priority,
                                   host, message, fields, ids)
  select id, at, set_id, seqnum, booted, xor_hash, key, pid, priority, host, message, fields,
         ids
    from pg_temp.journal_v2_split
  on conflict do nothing;
  -- Lines with a typed cursor and the same time (or a hash key equal to 0): the next free key.
  for v_line in
    select s.* from pg_temp.journal_v2_split s
     where not exists (select from vigil.journal_lines l where l.at = s.at and l.id = s.id)
     order by s.at, s.id
  loop
    v_key := v_line.key;
    loop
      v_key := case when v_key = 2147483647 then -2147483648 else v_key + 1 end;
      insert into vigil.journal_lines (id, at, set_id, seqnum, booted, xor_hash, key, pid,
                                       priority, host, message, fields, ids)
      values (v_line.id, v_line.at, v_line.set_id, v_line.seqnum, v_line.booted,
              v_line.xor_hash, v_key, v_line.pid, v_line.priority, v_line.host,
              v_line.message, v_line.fields, v_line.ids)
      on conflict do nothing;
      exit when found;
    end loop;
  end loop;
  -- New lines continue the old arrival order (the live tail's cursor).
  v_last := pg_sequence_last_value(pg_get_serial_sequence('vigil.journal_lines_v2', 'id'));
  if v_last is not null then
    perform setval(pg_get_serial_sequence('vigil.journal_lines', 'id'), v_last);
  end if;
  drop view pg_temp.journal_v2_split;
  drop table vigil.journal_lines_v2 cascade;
  if v_ids then
    perform vigil.trace_journal_index(true);
  end if;
  -- The substring indexes of closed days, built again now (with the job's config), unless
  -- no line was ever stored (a new installation).
  delete from vigil.journal_days;
  if v_last is not null then
    perform vigil.journal_maintenance(
              now(), coalesce((select config from vigil.portable_jobs
                                where job = 'journal_maintenance'), '{}')
                     || '{"settle": false}');
  end if;
end $$;
