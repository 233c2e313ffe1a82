-- Journal logs: storage, dedupe, retention, compression and search.
--
-- One row per journald entry, stored compactly (docs/journal.md, "How lines are stored"):
-- - vigil.journal_sets holds what many lines share: the fields that are constant for a
--   process, unit or boot (vigil._journal_shared_keys(): _HOSTNAME, _SYSTEMD_UNIT,
--   _BOOT_ID, SYSLOG_IDENTIFIER, ...), with the unit and container. Keyed by a 64-bit
--   hash of its content (collisions probed to the next free id, compared by content).
-- - vigil.journal_lines holds per line only what varies: time, a dedupe key, the set,
--   host, priority, message, the parts of journald's __CURSOR found nowhere else (seqnum,
--   the boot's start on the realtime clock, which gives __MONOTONIC_TIMESTAMP, and the xor
--   hash) and _PID as typed columns, which TimescaleDB compresses to a few bits each, and
--   the remaining fields (null when none). __REALTIME_TIMESTAMP is not stored again when
--   it is the line's time. A line whose cursor is stored typed is identified by it: its
--   dedupe key is 0 (the next free key for a different line at the same microsecond).
-- - the view vigil.journal puts them together as before: every field, losslessly.
-- The wire formats (journalctl -o json, the Journal Export Format) are parsed by
-- api/journal/formats/journald.py; api/journal/store.py splits the fields.
--
-- TimescaleDB mode: vigil.journal_lines is a hypertable (1-day chunks), compressed after
-- 2 days (segmentby host, orderby set_id, at desc) and dropped after 14 days by policies.
-- vigil.journal_sets rows no line references any more are deleted by the job
-- prune_journal_sets (both modes) once they have not been used for the retention and a day.
-- Portable mode: vigil.journal_lines is partitioned by day; the portable job
-- journal_maintenance creates upcoming partitions, drops expired ones and builds a
-- pg_trgm index on each closed (past) day once its partition has stopped changing, so
-- substring search over old days is an index lookup while inserts (also a backfill of
-- past days) never pay for a trigram index.
--
-- Exposes: view vigil.journal, tables vigil.journal_lines, vigil.journal_sets,
-- vigil.journal_days, type vigil.journal_counts; vigil.journal_stage(),
-- journal_sets_put(), journal_ingest_staged(), journal_ingest(), journal_search(),
-- journal_bounds(), journal_retention(), journal_ensure_partition(), journal_sets_prune();
-- the jobs journal_maintenance (portable) or compression and retention policies
-- (TimescaleDB), and prune_journal_sets (both).

do $$
begin
  if exists (select from pg_available_extensions where name = 'pg_trgm') then
    create extension if not exists pg_trgm;
  end if;
end $$;

-- ---------------------------------------------------------------------------------------
-- Tables and the view

create table if not exists vigil.journal_sets (
  id        bigint not null,
  unit      text,
  container text,
  realtime  boolean not null,
  cursor_s  text,
  cursor_b  text,
  fields    jsonb not null,
  seen_at   timestamptz not null default now(),
  constraint journal_sets_pkey primary key (id)
);
alter table vigil.journal_sets add column if not exists seen_at timestamptz not null
  default now();
comment on table vigil.journal_sets is
  'What journal lines share: the fields that stay the same for a process, unit or boot '
  '(vigil._journal_shared_keys()), with unit and container. One row per distinct content; '
  'deleted by the job prune_journal_sets once no line references it (a few hundred bytes per '
  'process start or boot).';
select vigil._comment_columns('vigil.journal_sets',
  'id', 'A 64-bit hash of the content (unit, container, realtime, cursor parts, fields as '
        'sent); on a collision with a different content the next free id.',
  'unit', '_SYSTEMD_UNIT (or what the sender gave as unit).',
  'container', 'CONTAINER_NAME (docker journald log driver).',
  'realtime', 'True: a line''s __REALTIME_TIMESTAMP is its time (at, in microseconds since '
              'the epoch, as a string) unless the line carries its own.',
  'cursor_s', 'Not null: the lines'' __CURSOR is stored in parts: this (its s=, the journal '
              'file''s seqnum id), cursor_b (its b=, the boot id), the line''s time (t=) and '
              'the line''s typed columns seqnum, booted and xor_hash (its i=, m= and x=; m= '
              'also gives __MONOTONIC_TIMESTAMP).',
  'cursor_b', 'The b= (boot id) of the lines'' __CURSOR when cursor_s is not null.',
  'fields', 'The shared fields (arrays for repeated/binary fields).',
  'seen_at', 'When ingest last stored lines of this set (refreshed when an hour old); '
             'vigil.journal_sets_prune deletes sets unused for the retention and a grace '
             'period that no line references.');

create or replace function vigil._journal_line_columns() returns text
language sql immutable
as $$
  select 'at        timestamptz not null,
          set_id    bigint not null,
          seqnum    bigint,
          booted    bigint,
          xor_hash  bigint,
          key       integer not null,
          pid       integer,
          priority  smallint,
          host      text,
          message   text not null,
          fields    jsonb,
          ids       text[]'
$$;
comment on function vigil._journal_line_columns() is
  'The columns of a journal line (after vigil.journal_lines''s id), shared by '
  'vigil.journal_lines and its staging table pg_temp.journal_stage (vigil.journal_stage).';

do $$
declare
  v_columns constant text := format(
    '(id bigint generated by default as identity, %s,
      constraint journal_lines_at_key_key unique (at, key),
      constraint journal_lines_priority_check check (priority between 0 and 7))',
    vigil._journal_line_columns());
begin
  if to_regclass('vigil.journal_lines') is null then
    if vigil.has_timescale() then
      execute 'create table vigil.journal_lines ' || v_columns;
      perform create_hypertable('vigil.journal_lines', 'at',
                                chunk_time_interval => interval '1 day');
    else
      execute 'create table vigil.journal_lines ' || v_columns || ' partition by range (at)';
    end if;
  end if;
end $$;

comment on table vigil.journal_lines is
  'Journal lines (journald entries), one row per distinct line, without what they share '
  '(vigil.journal_sets); read them through the view vigil.journal. Partitioned by day '
  '(portable) or a hypertable (TimescaleDB). Retention, compression and search indexes: '
  'see docs/journal.md.';
select vigil._comment_columns('vigil.journal_lines',
  'id', 'Arrival order (identity). Keyset tie-break and live-tail cursor; not unique across '
        'partitions by constraint, unique in practice.',
  'at', 'Entry time: __REALTIME_TIMESTAMP (microseconds, UTC).',
  'key', 'Dedupe key. 0 for a line whose cursor is stored typed (seqnum not null: the cursor '
         'identifies it); else the first 32 bits of the SHA-256 of the raw line as sent '
         '(export format: of the entry''s bytes). With at, unique; a different line with the '
         'same (at, key) is stored under the next free key (compared by content).',
  'priority', 'PRIORITY, syslog severity 0 (emerg) .. 7 (debug).',
  'set_id', 'The shared fields, unit and container: vigil.journal_sets.id.',
  'host', '_HOSTNAME.',
  'message', 'MESSAGE as text. A byte-array MESSAGE is decoded as UTF-8; invalid bytes appear '
             'as \xNN escapes (the original array stays in the fields). NUL appears as \x00.',
  'seqnum', 'Not null: the line''s __CURSOR is stored typed (vigil.journal_sets.cursor_s and '
            'cursor_b hold its s= and b=, at its t=); this is its i= (seqnum, hex as bigint).',
  'booted', 'With seqnum: at minus the cursor''s m= (__MONOTONIC_TIMESTAMP), in microseconds: '
            'the boot''s start on the realtime clock, the same for most lines of a boot.',
  'xor_hash', 'With seqnum: the cursor''s x= (hex as bigint).',
  'pid', '_PID when it is a decimal integer as journald writes it (not in fields then).',
  'fields', 'The fields of the line that are not shared (vigil.journal_sets) and not '
            'otherwise stored: no plain-string MESSAGE, no __REALTIME_TIMESTAMP equal to at, no '
            '__CURSOR nor __MONOTONIC_TIMESTAMP when seqnum is set, no _PID when pid is set. '
            'Null when none are left.',
  -- as in sql/57_trace.sql, which indexes it
  'ids', 'The request and trace ids the line carries (vigil._journal_ids), null when none: '
         'filled at ingest, searched by vigil.trace through journal_lines_ids_idx.');

create index if not exists journal_lines_host_at_idx on vigil.journal_lines (host, at);

create or replace function vigil._journal_cursor(p_s text, p_b text, p_short text,
                                                 p_at timestamptz)
returns text
language sql immutable parallel safe
as $$
  select 's=' || p_s || ';i=' || split_part(p_short, ';', 1) || ';b=' || p_b
         || ';m=' || split_part(p_short, ';', 2)
         || ';t=' || to_hex((extract(epoch from p_at) * 1000000)::bigint)
         || ';x=' || split_part(p_short, ';', 3)
$$;
comment on function vigil._journal_cursor(text, text, text, timestamptz) is
  'A journald __CURSOR from the short form "i;m;x" that lines stored before the typed cursor '
  'columns (revision 0007) kept in their fields.';

-- stable, as extract() on a timestamptz is: the view vigil.journal inlines these two
create or replace function vigil._journal_us(p_at timestamptz) returns bigint
language sql stable parallel safe
as $$ select (extract(epoch from p_at) * 1000000)::bigint $$;
comment on function vigil._journal_us(timestamptz) is
  'A journal line''s time as journald writes it: microseconds since the epoch.';

create or replace function vigil._journal_fields(
  p_shared jsonb, p_realtime boolean, p_cursor_s text, p_cursor_b text, p_at timestamptz,
  p_seqnum bigint, p_booted bigint, p_xor_hash bigint, p_pid integer, p_fields jsonb)
returns jsonb
language sql stable parallel safe
as $$
  select p_shared
         || case when p_realtime
                 then jsonb_build_object('__REALTIME_TIMESTAMP',
                                         vigil._journal_us(p_at)::text)
                 else '{}' end
         || coalesce(p_fields, '{}')
         || case when p_pid is not null then jsonb_build_object('_PID', p_pid::text)
                 else '{}' end
         || case when p_seqnum is not null
                 then jsonb_build_object(
                        '__CURSOR', 's=' || p_cursor_s || ';i=' || to_hex(p_seqnum)
                                    || ';b=' || p_cursor_b
                                    || ';m=' || to_hex(vigil._journal_us(p_at) - p_booted)
                                    || ';t=' || to_hex(vigil._journal_us(p_at))
                                    || ';x=' || to_hex(p_xor_hash),
                        '__MONOTONIC_TIMESTAMP', (vigil._journal_us(p_at) - p_booted)::text)
                 else '{}' end
$$;
comment on function vigil._journal_fields(jsonb, boolean, text, text, timestamptz, bigint,
                                          bigint, bigint, integer, jsonb) is
  'Every field of a journal line from its stored parts (vigil.journal_sets and '
  'vigil.journal_lines columns): the shared fields, __REALTIME_TIMESTAMP, its own fields, '
  '_PID, __CURSOR and __MONOTONIC_TIMESTAMP. vigil.journal shows it.';

create or replace view vigil.journal as
select l.id, l.at, l.host, s.unit, s.container, l.priority, l.message,
       vigil._journal_fields(s.fields, s.realtime, s.cursor_s, s.cursor_b, l.at, l.seqnum,
                             l.booted, l.xor_hash, l.pid, l.fields) as fields
  from vigil.journal_lines l
  join vigil.journal_sets s on s.id = l.set_id;
comment on view vigil.journal is
  'Journal lines as sent: one row per distinct line with every field (the lines of '
  'vigil.journal_lines with their shared fields from vigil.journal_sets).';
select vigil._comment_columns('vigil.journal',
  'id', 'Arrival order (identity). Keyset tie-break and live-tail cursor.',
  'at', 'Entry time: __REALTIME_TIMESTAMP (microseconds, UTC).',
  'host', '_HOSTNAME.',
  'unit', '_SYSTEMD_UNIT.',
  'container', 'CONTAINER_NAME (docker journald log driver).',
  'priority', 'PRIORITY, syslog severity 0 (emerg) .. 7 (debug).',
  'message', 'MESSAGE as text. A byte-array MESSAGE is decoded as UTF-8; invalid bytes appear '
             'as \xNN escapes (the original array stays in fields.MESSAGE). NUL appears as \x00.',
  'fields', 'Every field of the entry (arrays for repeated/binary fields), except a plain-string '
            'MESSAGE, which is only in the message column.');

create table if not exists vigil.journal_days (
  day        date not null,
  heap_bytes bigint not null,
  checked_at timestamptz not null,
  constraint journal_days_pkey primary key (day)
);
comment on table vigil.journal_days is
  'Portable mode: closed days whose partition journal_maintenance has seen but not yet '
  'indexed. Its trigram index is built once the size stayed the same between two runs, so '
  'a backfill into past days never pays for maintaining a trigram index.';
select vigil._comment_columns('vigil.journal_days',
  'heap_bytes', 'The partition''s size when the job last looked.',
  'checked_at', 'When the job last looked (its p_now).');

-- ---------------------------------------------------------------------------------------
-- Shared fields

create or replace function vigil._journal_shared_keys() returns text[]
language sql immutable
as $$
  select array['_HOSTNAME', '_MACHINE_ID', '_BOOT_ID', '_TRANSPORT', '_UID', '_GID', '_COMM',
               '_EXE', '_CMDLINE', '_CAP_EFFECTIVE', '_SELINUX_CONTEXT', '_SYSTEMD_CGROUP',
               '_SYSTEMD_UNIT', '_SYSTEMD_USER_UNIT', '_SYSTEMD_SLICE', '_SYSTEMD_USER_SLICE',
               '_SYSTEMD_INVOCATION_ID', '_SYSTEMD_OWNER_UID', '_SYSTEMD_SESSION',
               '_AUDIT_SESSION', '_AUDIT_LOGINUID', '_RUNTIME_SCOPE', '_NAMESPACE', '_STREAM_ID',
               'PRIORITY', 'SYSLOG_FACILITY', 'SYSLOG_IDENTIFIER', 'CONTAINER_NAME',
               'CONTAINER_ID', 'CONTAINER_ID_FULL', 'CONTAINER_TAG', 'IMAGE_NAME', '__SEQNUM_ID']
$$;
comment on function vigil._journal_shared_keys() is
  'The journald fields that stay the same for a process, unit or boot: stored once per '
  'distinct content in vigil.journal_sets. api/journal/store.py has the same list.';

create or replace function vigil._journal_hex(p_hex text) returns bigint
language sql immutable parallel safe
as $$ select ('x' || lpad(p_hex, 16, '0'))::bit(64)::bigint $$;
comment on function vigil._journal_hex(text) is
  'Up to 16 hex digits as a bigint (the bits as they are: 16 digits from 8 up are negative); '
  'to_hex() gives the digits back without leading zeros.';

create or replace function vigil._journal_hex_ok(p_hex text) returns boolean
language sql immutable parallel safe
as $$ select length(p_hex) between 1 and 16 and (p_hex = '0' or left(p_hex, 1) <> '0') $$;
comment on function vigil._journal_hex_ok(text) is
  'Whether hex digits are a 64-bit number as journald writes it (1 to 16 digits, no leading '
  'zero), which vigil._journal_hex and to_hex() carry over unchanged.';

-- Revision 0007 added the typed cursor parts and _PID to the result.
drop function if exists vigil._journal_split(jsonb, timestamptz);

create or replace function vigil._journal_split(
  p_fields jsonb, p_at timestamptz,
  out shared jsonb, out own jsonb, out realtime boolean, out cursor_s text, out cursor_b text,
  out seqnum bigint, out booted bigint, out xor_hash bigint, out pid integer)
language plpgsql immutable
as $$
declare
  v_us   bigint := vigil._journal_us(p_at);
  v_keys constant text[] := vigil._journal_shared_keys();
  v_m    text[];
  v_text text;
begin
  shared := coalesce((select jsonb_object_agg(e.key, e.value) from jsonb_each(p_fields) e
                       where e.key = any(v_keys)), '{}');
  own := p_fields - v_keys;
  realtime := coalesce(p_fields -> '__REALTIME_TIMESTAMP' = to_jsonb(v_us::text), false);
  if realtime then
    own := own - '__REALTIME_TIMESTAMP';
  end if;
  -- journald's __CURSOR, when its t= and m= are the line's times and its i=, m= and x= are
  -- 64-bit hex numbers as journald writes them (no leading zeros)
  if jsonb_typeof(p_fields -> '__CURSOR') = 'string'
     and jsonb_typeof(p_fields -> '__MONOTONIC_TIMESTAMP') = 'string' then
    v_text := p_fields ->> '__MONOTONIC_TIMESTAMP';
    if v_text ~ '^(0|[1-9][0-9]{0,17})$' then
      v_m := regexp_match(p_fields ->> '__CURSOR',
                          '^s=([0-9a-f]+);i=([0-9a-f]+);b=([0-9a-f]+);m=([0-9a-f]+);'
                          't=([0-9a-f]+);x=([0-9a-f]+)$');
      if v_m[5] = to_hex(v_us) and v_m[4] = to_hex(v_text::bigint)
         and vigil._journal_hex_ok(v_m[2]) and vigil._journal_hex_ok(v_m[6]) then
        cursor_s := v_m[1];
        cursor_b := v_m[3];
        seqnum := vigil._journal_hex(v_m[2]);
        booted := v_us - v_text::bigint;
        xor_hash := vigil._journal_hex(v_m[6]);
        own := own - '__CURSOR' - '__MONOTONIC_TIMESTAMP';
      end if;
    end if;
  end if;
  if jsonb_typeof(p_fields -> '_PID') = 'string' then
    v_text := p_fields ->> '_PID';
    if v_text ~ '^(0|[1-9][0-9]{0,9})$' then
      if v_text::bigint <= 2147483647 then
        pid := v_text::integer;
        own := own - '_PID';
      end if;
    end if;
  end if;
  if own = '{}' then
    own := null;
  end if;
end
$$;
comment on function vigil._journal_split(jsonb, timestamptz) is
  'A line''s fields split into the shared ones (vigil._journal_shared_keys()) and its own '
  '(null when none); realtime: __REALTIME_TIMESTAMP was the line''s time and is left out of '
  'own; cursor_s, cursor_b, seqnum, booted, xor_hash: the __CURSOR (and '
  '__MONOTONIC_TIMESTAMP) left out of own, in parts (see vigil.journal_lines.seqnum); pid: '
  '_PID left out of own. api/journal/store.py splits the same way.';

create or replace function vigil._journal_set_id(p_unit text, p_container text,
                                                 p_realtime boolean, p_cursor_s text,
                                                 p_cursor_b text, p_fields jsonb)
returns bigint
language sql immutable
as $$
  select ('x' || encode(substr(sha256(convert_to(
           jsonb_build_array(p_unit, p_container, p_realtime, p_cursor_s, p_cursor_b,
                             p_fields)::text, 'UTF8')), 1, 8), 'hex'))::bit(64)::bigint
$$;
comment on function vigil._journal_set_id(text, text, boolean, text, text, jsonb) is
  'The id a set of shared fields gets when SQL splits the fields (vigil.journal_ingest): a '
  '64-bit hash of its content. The API hashes its own encoding; equal sets written both '
  'ways are stored twice, which reads do not notice.';

create or replace function vigil._journal_key(p_sha256 bytea) returns integer
language sql immutable
as $$ select ('x' || encode(substr(p_sha256, 1, 4), 'hex'))::bit(32)::integer $$;
comment on function vigil._journal_key(bytea) is
  'The dedupe key of a line (vigil.journal_lines.key): the first 32 bits of its SHA-256.';

create or replace function vigil._journal_same_set(p_a bigint, p_b bigint) returns boolean
language sql stable
as $$
  select p_a = p_b or exists (
    select from vigil.journal_sets a, vigil.journal_sets b
     where a.id = p_a and b.id = p_b
       and (a.unit, a.container, a.realtime, a.cursor_s, a.cursor_b, a.fields)
           is not distinct from (b.unit, b.container, b.realtime, b.cursor_s, b.cursor_b, b.fields))
$$;
comment on function vigil._journal_same_set(bigint, bigint) is
  'Whether two sets of shared fields are the same content (the API and SQL hash them '
  'differently, so the same line may come with either id).';

create or replace function vigil.journal_sets_put(
  p_ids bigint[], p_units text[], p_containers text[], p_realtime boolean[],
  p_cursor_s text[], p_cursor_b text[], p_fields jsonb[])
returns table (idx integer, stored bigint)
language plpgsql
as $$
declare
  v_set record;
  v_id  bigint;
begin
  -- Sets in use stay (vigil.journal_sets_prune): marked used, at most once an hour, BEFORE
  -- the insert: the update locks a set the prune may delete (only sets unused for far
  -- longer than an hour), so either the prune waits and then finds it used, or the prune
  -- committed first and the insert below stores the set again. (An insert that finds the
  -- set takes no lock: marking it afterwards could miss a set deleted in between.)
  update vigil.journal_sets s set seen_at = now()
   where s.id = any(p_ids) and s.seen_at < now() - interval '1 hour';
  insert into vigil.journal_sets (id, unit, container, realtime, cursor_s, cursor_b, fields)
  select * from unnest(p_ids, p_units, p_containers, p_realtime, p_cursor_s, p_cursor_b,
                       p_fields)
  on conflict do nothing;
  -- A different set under the same id (a hash collision): probe the next ids.
  for v_set in
    select u.* from unnest(p_ids, p_units, p_containers, p_realtime, p_cursor_s, p_cursor_b,
                           p_fields)
                    with ordinality as u(id, unit, container, realtime, cursor_s, cursor_b,
                                         fields, idx)
      join vigil.journal_sets s on s.id = u.id
     where (s.unit, s.container, s.realtime, s.cursor_s, s.cursor_b, s.fields)
           is distinct from (u.unit, u.container, u.realtime, u.cursor_s, u.cursor_b, u.fields)
  loop
    v_id := v_set.id;
    <<probe>>
    loop
      v_id := case when v_id = 9223372036854775807 then -9223372036854775808 else v_id + 1 end;
      loop
        -- The same set at this id: marked used (and locked, as above); else stored here,
        -- unless a different set holds the id (then the next one).
        update vigil.journal_sets s set seen_at = now()
         where s.id = v_id
           and (s.unit, s.container, s.realtime, s.cursor_s, s.cursor_b, s.fields)
               is not distinct from (v_set.unit, v_set.container, v_set.realtime,
                                     v_set.cursor_s, v_set.cursor_b, v_set.fields);
        exit probe when found;
        insert into vigil.journal_sets (id, unit, container, realtime, cursor_s, cursor_b,
                                        fields)
        values (v_id, v_set.unit, v_set.container, v_set.realtime, v_set.cursor_s,
                v_set.cursor_b, v_set.fields)
        on conflict do nothing;
        exit probe when found;
        -- Taken: by a different set (next id), or by this one stored meanwhile (mark it).
        exit when not exists (
          select from vigil.journal_sets s
           where s.id = v_id
             and (s.unit, s.container, s.realtime, s.cursor_s, s.cursor_b, s.fields)
                 is not distinct from (v_set.unit, v_set.container, v_set.realtime,
                                       v_set.cursor_s, v_set.cursor_b, v_set.fields));
      end loop;
    end loop;
    idx := v_set.idx;
    stored := v_id;
    return next;
  end loop;
end
$$;
comment on function vigil.journal_sets_put(bigint[], text[], text[], boolean[], text[], text[],
                                           jsonb[]) is
  'Stores sets of shared journal fields (parallel arrays) unless stored, and marks them used '
  '(seen_at, when an hour old). Returns, for each set whose id already holds a different set '
  '(a hash collision), its position (1-based) and the id it got instead; lines of that set '
  'must use that id.';

create or replace function vigil.journal_sets_prune(p_now timestamptz, p_config jsonb)
returns integer
language plpgsql
as $$
declare
  v_grace  interval := greatest(coalesce((p_config ->> 'grace')::interval, interval '1 day'),
                                interval '0');
  v_before timestamptz := p_now - vigil.journal_retention() - v_grace;
  v_until  timestamptz;
  v_n      integer;
begin
  -- A line refers to a set that ingest marked used (seen_at) at most an hour before the
  -- line was stored, and ingest stores no line more than a day ahead: the lines of a set
  -- unused since v_before lie before v_until, the oldest (already expired) days only.
  select max(seen_at) + interval '1 hour' + interval '1 day' into v_until
    from vigil.journal_sets where seen_at < v_before;
  if v_until is null then
    return 0;
  end if;
  delete from vigil.journal_sets s
   where s.seen_at < v_before
     and s.id not in (select l.set_id from vigil.journal_lines l where l.at <= v_until);
  get diagnostics v_n = row_count;
  return v_n;
end
$$;
comment on function vigil.journal_sets_prune(timestamptz, jsonb) is
  'The job prune_journal_sets (both modes): deletes the sets of shared journal fields that '
  'ingest has not used for the retention plus config.grace (1 day) and that no line '
  'references (their lines expired). Ingest marks a set used whenever it stores lines of it '
  '(and stores it again if it is gone), so a set in use is never deleted. Returns the sets '
  'deleted.';

create or replace procedure vigil.journal_sets_prune_job(job_id integer, config jsonb)
language plpgsql
as $$
begin
  perform vigil.journal_sets_prune(now(), coalesce(config, '{}'));
end
$$;
comment on procedure vigil.journal_sets_prune_job(integer, jsonb) is
  'TimescaleDB job (add_job, every hour): vigil.journal_sets_prune(now(), config).';

select vigil._register_job('prune_journal_sets', 'vigil.journal_sets_prune', interval '1 hour',
                           '{"grace": "1 day"}',
                           p_timescale_job => 'vigil.journal_sets_prune_job',
                           p_timescale_every => interval '1 hour');

-- ---------------------------------------------------------------------------------------
-- Portable mode partitions

-- Earlier schemas named the partitions with this helper; vigil._day_partition_ensure does.
drop function if exists vigil._journal_partition_name(date);

create or replace function vigil.journal_ensure_partition(p_day date) returns boolean
language sql
as $$ select vigil._day_partition_ensure('journal_lines', 'journal_p', 'journal_maintenance',
                                        p_day) $$;
comment on function vigil.journal_ensure_partition(date) is
  'Portable mode: creates the partition of vigil.journal_lines for one UTC day unless it '
  'exists. Returns true when it created one. No-op in TimescaleDB mode.';

create or replace function vigil.journal_retention() returns interval
language sql stable
as $$ select vigil._retention('journal_lines', 'journal_maintenance') $$;
comment on function vigil.journal_retention() is
  'How long journal lines are kept: the retention policy (TimescaleDB) or the '
  'journal_maintenance job config (portable); 14 days by default. Ingest rejects older lines.';

create or replace function vigil._journal_drop_partial_trgm(p_partition text, p_keep text)
returns integer
language plpgsql
as $$
declare
  v_index text;
  v_n     integer := 0;
begin
  for v_index in
    select c.relname from pg_index x
      join pg_class c on c.oid = x.indexrelid
     where x.indrelid = format('vigil.%I', p_partition)::regclass
       and c.relname like p_partition || '\_trgm\_h%' and c.relname is distinct from p_keep
  loop
    execute format('drop index vigil.%I', v_index);
    v_n := v_n + 1;
  end loop;
  return v_n;
end
$$;
comment on function vigil._journal_drop_partial_trgm(text, text) is
  'Drops the hourly partial trigram indexes of one journal partition except p_keep.';

create or replace function vigil.journal_maintenance(p_now timestamptz, p_config jsonb)
returns integer
language plpgsql
as $$
declare
  v_retention interval := coalesce((p_config ->> 'retention')::interval, interval '14 days');
  v_ahead     integer  := coalesce((p_config ->> 'days_ahead')::integer, 3);
  v_trgm      boolean  := coalesce((p_config ->> 'trigram_index')::boolean, true);
  v_every     integer  := coalesce((p_config ->> 'today_index_hours')::integer, 1);
  v_settle    boolean  := coalesce((p_config ->> 'settle')::boolean, true);
  v_today     date     := (p_now at time zone 'UTC')::date;
  v_hour      timestamp := date_trunc('hour', p_now at time zone 'UTC');
  v_part      record;
  v_opclass   text;
  v_partial   text;
  v_bytes     bigint;
  v_n         integer  := 0;
begin
  if vigil.has_timescale() then
    return 0;
  end if;
  v_n := vigil._day_partitions_ensure('journal_lines', 'journal_p', 'journal_maintenance', p_now,
                                      v_retention, v_ahead);

  select format('%I.gin_trgm_ops', n.nspname) into v_opclass
    from pg_extension e join pg_namespace n on n.oid = e.extnamespace
   where e.extname = 'pg_trgm';
  v_trgm := v_trgm and v_opclass is not null;
  if v_trgm then
    -- GIN builds are much faster with room to sort (local to this transaction).
    perform set_config('maintenance_work_mem',
                       coalesce(p_config ->> 'maintenance_work_mem', '256MB'), true);
  end if;

  for v_part in
    select c.oid, c.relname, (substr(c.relname, 10))::date as day
      from pg_inherits i
      join pg_class c on c.oid = i.inhrelid
     where i.inhparent = 'vigil.journal_lines'::regclass and c.relname ~ '^journal_p[0-9]{8}$'
     order by 3
  loop
    if (v_part.day + 1)::timestamp at time zone 'UTC' <= p_now - v_retention then
      -- Every line of this day is past the retention.
      execute format('drop table vigil.%I', v_part.relname);
      delete from vigil.journal_days where day = v_part.day;
      v_n := v_n + 1;
    elsif v_trgm and v_part.day < v_today
          and to_regclass(format('vigil.%I', v_part.relname || '_message_trgm')) is null then
      -- A closed day: build its substring index once the partition has stopped changing
      -- (same size as at the previous run), so lines still arriving for it (a backfill,
      -- a sender catching up) are never inserted into a trigram index.
      v_bytes := pg_relation_size(v_part.oid);
      if v_bytes > 0 and (not v_settle or exists (
                            select from vigil.journal_days d
                             where d.day = v_part.day and d.heap_bytes = v_bytes)) then
        -- The hourly partial indexes of the day go first (the reindex must not rebuild them).
        v_n := v_n + vigil._journal_drop_partial_trgm(v_part.relname, null);
        if coalesce((p_config ->> 'compact_indexes')::boolean, true) then
          -- Its btrees were filled by interleaved inserts (pages half full): rebuilt dense.
          execute format('reindex table vigil.%I', v_part.relname);
        end if;
        execute format('create index %I on vigil.%I using gin (message %s)'
                       ' with (fastupdate = off)',
                       v_part.relname || '_message_trgm', v_part.relname, v_opclass);
        v_n := v_n + 1;
        delete from vigil.journal_days where day = v_part.day;
      elsif v_bytes > 0 then
        insert into vigil.journal_days (day, heap_bytes, checked_at)
        values (v_part.day, v_bytes, p_now)
        on conflict (day) do update set heap_bytes = excluded.heap_bytes,
                                        checked_at = excluded.checked_at;
      end if;
    elsif v_trgm and v_every > 0 and v_part.day = v_today and v_hour > v_today
          and extract(hour from v_hour)::integer % v_every = 0 then
      -- Today: index the closed hours (a partial index, replaced every hour), so only
      -- the current hour is searched without an index and inserts never pay for it.
      v_partial := v_part.relname || '_trgm_h' || to_char(v_hour, 'HH24');
      if to_regclass(format('vigil.%I', v_partial)) is null then
        execute format('create index %I on vigil.%I using gin (message %s) where at < %L',
                       v_partial, v_part.relname, v_opclass, v_hour at time zone 'UTC');
        v_n := v_n + 1 + vigil._journal_drop_partial_trgm(v_part.relname, v_partial);
      end if;
    end if;
  end loop;
  return v_n;
end
$$;
comment on function vigil.journal_maintenance(timestamptz, jsonb) is
  'Portable mode job: creates the partitions of the retention window and config.days_ahead '
  '(3) days ahead, drops partitions entirely older than config.retention (14 days), and '
  '(config.trigram_index, true) builds a pg_trgm GIN index on message for each closed day '
  'once its partition has the same size on two runs (vigil.journal_days; config.settle '
  'false: at once), rebuilding its '
  'btree indexes densely first (config.compact_indexes, true), and a partial '
  'one for the closed hours of today, rebuilt every config.today_index_hours (1; 0 = never). '
  'Index builds use config.maintenance_work_mem (256MB). Returns the number of partitions '
  'and indexes created or dropped.';

create or replace function vigil._journal_indexed_until() returns timestamptz
language sql stable
as $$
  select max((substr(c.relname, 10, 8)::date + substr(c.relname, 25, 2)::int * interval '1 hour')
             at time zone 'UTC')
    from pg_class c
   where c.relnamespace = 'vigil'::regnamespace and c.relkind = 'i'
     and c.relname ~ '^journal_p[0-9]{8}_trgm_h[0-9]{2}$'
$$;
comment on function vigil._journal_indexed_until() is
  'Portable mode: the time up to which today''s partition has a partial trigram index '
  '(null when none); journal_search splits substring searches there.';

-- In TimescaleDB mode partitions and retention are TimescaleDB's business (policies below).
select vigil._register_job('journal_maintenance', 'vigil.journal_maintenance',
                           interval '10 minutes',
                           '{"retention": "14 days", "days_ahead": 3, "trigram_index": true}');

-- Today's partitions exist right after migrating.
select vigil.journal_maintenance(now(), '{"trigram_index": false}');

-- ---------------------------------------------------------------------------------------
-- TimescaleDB mode: compression and retention policies

do $$
begin
  if vigil.has_timescale() then
    if not exists (select from timescaledb_information.compression_settings
                    where hypertable_schema = 'vigil' and hypertable_name = 'journal_lines') then
      -- Lines of one program side by side compress best (measured on 100,000 loghub lines:
      -- 50.5 bytes per line; segmentby set_id, orderby at desc: 51.4);
      -- the min/max of at per batch still narrows time ranges.
      alter table vigil.journal_lines set (timescaledb.compress,
                                           timescaledb.compress_segmentby = 'host',
                                           timescaledb.compress_orderby = 'set_id, at desc');
    end if;
    perform add_compression_policy('vigil.journal_lines', interval '2 days',
                                   if_not_exists => true);
    perform add_retention_policy('vigil.journal_lines', interval '14 days',
                                 if_not_exists => true);
  end if;
end $$;

-- ---------------------------------------------------------------------------------------
-- Ingest

create or replace function vigil.journal_bounds(
  p_now timestamptz default now(),
  out oldest timestamptz,
  out newest timestamptz,
  out retention interval)
language sql stable
as $$
  select p_now - r, p_now + interval '1 day', r from vigil.journal_retention() r
$$;
comment on function vigil.journal_bounds(timestamptz) is
  'Which entry times ingest stores: from now - retention (older lines are expired) to '
  'now + 1 day (later lines are from a wrong clock).';

create or replace function vigil.journal_stage() returns void
language plpgsql
as $$
begin
  -- A session that staged lines before an upgrade may hold the table with older columns.
  if exists (select from pg_class c
              where c.relnamespace = pg_my_temp_schema() and c.relname = 'journal_stage'
                and not exists (select from pg_attribute a
                                 where a.attrelid = c.oid and a.attname = 'seqnum')) then
    drop table pg_temp.journal_stage;
  end if;
  execute format('create temp table if not exists journal_stage (%s) on commit delete rows',
                 vigil._journal_line_columns());
end
$$;
comment on function vigil.journal_stage() is
  'Creates this session''s temp table pg_temp.journal_stage (emptied at commit) that a '
  'sender batch is COPYed into before vigil.journal_ingest_staged() stores it. Its set_id '
  'values must be stored (vigil.journal_sets_put) first.';

do $$
begin
  if to_regtype('vigil.journal_counts') is null then
    create type vigil.journal_counts as (
      accepted   integer,
      duplicated integer,
      expired    integer,
      future     integer
    );
  end if;
end $$;
comment on type vigil.journal_counts is
  'What ingest did with a batch of journal lines: stored (accepted), already stored or '
  'repeated in the batch (duplicated), older than the retention (expired), more than 1 day '
  'ahead (future).';

create or replace function vigil.journal_ingest_staged(p_now timestamptz default now())
returns vigil.journal_counts
language plpgsql
as $$
declare
  v_oldest   timestamptz;
  v_newest   timestamptz;
  v_total    integer;
  v_expired  integer;
  v_future   integer;
  v_accepted integer;
  v_line     record;
  v_key      integer;
begin
  select b.oldest, b.newest into v_oldest, v_newest from vigil.journal_bounds(p_now) b;
  select w.total, w.expired, w.future into v_total, v_expired, v_future
    from vigil._stage_window('journal_stage', 'journal_lines', 'journal_p', 'journal_maintenance',
                             v_oldest, v_newest) w;
  insert into vigil.journal_lines (at, key, priority, set_id, host, message, seqnum, booted,
                                  xor_hash, pid, fields, ids)
  select at, key, priority, set_id, host, message, seqnum, booted, xor_hash, pid, fields, ids
    from pg_temp.journal_stage
   where at between v_oldest and v_newest
  on conflict do nothing;
  get diagnostics v_accepted = row_count;
  if v_accepted < v_total - v_expired - v_future then
    -- Not stored: duplicates, or a different line under the same (at, key) (a collision
    -- of the 32-bit key), which goes to the next free key unless stored there already.
    for v_line in
      select s.* from pg_temp.journal_stage s
       where s.at between v_oldest and v_newest
         and not exists (
           select from vigil.journal_lines l
            where l.at = s.at and l.key = s.key
              and (l.host, l.priority, l.message, l.seqnum, l.booted, l.xor_hash, l.pid,
                   l.fields)
                  is not distinct from (s.host, s.priority, s.message, s.seqnum, s.booted,
                                        s.xor_hash, s.pid, s.fields)
              and vigil._journal_same_set(l.set_id, s.set_id))
    loop
      v_key := v_line.key;
      loop
        v_key := case when v_key = 2147483647 then -2147483648 else v_key + 1 end;
        insert into vigil.journal_lines (at, key, priority, set_id, host, message, seqnum,
                                        booted, xor_hash, pid, fields, ids)
        values (v_line.at, v_key, v_line.priority, v_line.set_id, v_line.host, v_line.message,
                v_line.seqnum, v_line.booted, v_line.xor_hash, v_line.pid, v_line.fields,
                v_line.ids)
        on conflict do nothing;
        if found then
          v_accepted := v_accepted + 1;
          exit;
        end if;
        exit when exists (
          select from vigil.journal_lines l
           where l.at = v_line.at and l.key = v_key
             and (l.host, l.priority, l.message, l.seqnum, l.booted, l.xor_hash, l.pid,
                  l.fields) is not distinct from
                 (v_line.host, v_line.priority, v_line.message, v_line.seqnum, v_line.booted,
                  v_line.xor_hash, v_line.pid, v_line.fields)
             and vigil._journal_same_set(l.set_id, v_line.set_id));
      end loop;
    end loop;
  end if;
  if v_accepted > 0 then
    -- Log metrics of this source count the stored rows' time ranges again (62_log_metrics).
    perform vigil._log_metrics_touch('journal', v_oldest, v_newest);
  end if;
  truncate pg_temp.journal_stage;
  return (v_accepted, v_total - v_expired - v_future - v_accepted, v_expired, v_future);
end
$$;
comment on function vigil.journal_ingest_staged(timestamptz) is
  'Stores the lines in pg_temp.journal_stage (see vigil.journal_stage) and empties it. Lines '
  'older than the retention (expired) or more than 1 day ahead (future) are not stored; a '
  'line already stored with the same content under its (at, key), or repeated in the '
  'batch, counts as duplicated.';

create or replace function vigil.journal_ingest(
  p_at        timestamptz[],
  p_sha256    bytea[],
  p_host      text[],
  p_unit      text[],
  p_container text[],
  p_priority  smallint[],
  p_message   text[],
  p_fields    jsonb,
  p_now       timestamptz default now())
returns vigil.journal_counts
language plpgsql
as $$
declare
  v_ids        bigint[];
  v_units      text[];
  v_containers text[];
  v_realtime   boolean[];
  v_cursor_s   text[];
  v_cursor_b   text[];
  v_fields     jsonb[];
  v_moved      record;
begin
  perform vigil.journal_stage();
  if exists (select from pg_class c
              where c.relnamespace = pg_my_temp_schema() and c.relname = 'journal_split'
                and not exists (select from pg_attribute a
                                 where a.attrelid = c.oid and a.attname = 'seqnum')) then
    drop table pg_temp.journal_split;
  end if;
  create temp table if not exists journal_split (
    at timestamptz, key integer, priority smallint, set_id bigint, host text, unit text,
    container text, message text, realtime boolean, cursor_s text, cursor_b text,
    shared jsonb, own jsonb, seqnum bigint, booted bigint, xor_hash bigint, pid integer
  ) on commit delete rows;
  truncate pg_temp.journal_split;
  insert into pg_temp.journal_split
  select r.at, case when sp.seqnum is null then vigil._journal_key(r.sha256) else 0 end,
         r.priority,
         vigil._journal_set_id(r.unit, r.container, sp.realtime, sp.cursor_s, sp.cursor_b,
                               sp.shared),
         r.host, r.unit, r.container, r.message, sp.realtime, sp.cursor_s, sp.cursor_b,
         sp.shared, sp.own, sp.seqnum, sp.booted, sp.xor_hash, sp.pid
    from rows from (unnest(p_at), unnest(p_sha256), unnest(p_host), unnest(p_unit),
                    unnest(p_container), unnest(p_priority), unnest(p_message),
                    jsonb_array_elements(p_fields))
         as r(at, sha256, host, unit, container, priority, message, fields)
    cross join lateral vigil._journal_split(r.fields, r.at) sp;
  select array_agg(d.set_id), array_agg(d.unit), array_agg(d.container), array_agg(d.realtime),
         array_agg(d.cursor_s), array_agg(d.cursor_b), array_agg(d.shared)
    into v_ids, v_units, v_containers, v_realtime, v_cursor_s, v_cursor_b, v_fields
    from (select distinct set_id, unit, container, realtime, cursor_s, cursor_b, shared
            from pg_temp.journal_split) d;
  for v_moved in select * from vigil.journal_sets_put(v_ids, v_units, v_containers,
                                                      v_realtime, v_cursor_s, v_cursor_b,
                                                      v_fields)
  loop
    update pg_temp.journal_split s set set_id = v_moved.stored
     where s.set_id = v_ids[v_moved.idx] and s.unit is not distinct from v_units[v_moved.idx]
       and s.container is not distinct from v_containers[v_moved.idx]
       and s.realtime = v_realtime[v_moved.idx]
       and s.cursor_s is not distinct from v_cursor_s[v_moved.idx]
       and s.cursor_b is not distinct from v_cursor_b[v_moved.idx]
       and s.shared = v_fields[v_moved.idx];
  end loop;
  insert into pg_temp.journal_stage (at, key, priority, set_id, host, message, seqnum, booted,
                                     xor_hash, pid, fields, ids)
  select at, key, priority, set_id, host, message, seqnum, booted, xor_hash, pid, own,
         vigil._journal_ids(own, message)
    from pg_temp.journal_split;
  return vigil.journal_ingest_staged(p_now);
end
$$;
comment on function vigil.journal_ingest(timestamptz[], bytea[], text[], text[], text[],
                                         smallint[], text[], jsonb, timestamptz) is
  'Stores a batch of parsed journal lines given as parallel arrays (p_sha256: of each raw '
  'line; p_fields: a JSON array of the entries'' field objects, without a plain-string '
  'MESSAGE); splits the shared fields off in SQL; same rules and counts as '
  'vigil.journal_ingest_staged. For clients that cannot COPY.';

-- ---------------------------------------------------------------------------------------
-- Search

create or replace function vigil.journal_search(
  p_from      timestamptz default null,
  p_to        timestamptz default null,
  p_host      text default null,
  p_unit      text default null,
  p_container text default null,
  p_priority  integer default null,
  p_text      text default null,
  p_after_at  timestamptz default null,
  p_after_id  bigint default null,
  p_newest_first boolean default true,
  p_limit     integer default 100,
  p_tail_id   bigint default null)
returns setof vigil.journal
language plpgsql stable
as $$
declare
  v_where text := 'true';
  v_cmp   text := case when p_newest_first then '<' else '>' end;
  v_dir   text := case when p_newest_first then 'desc' else 'asc' end;
  v_split timestamptz;
begin
  if p_limit is null or p_limit not between 1 and 1000 then
    raise exception 'page size must be between 1 and 1000' using errcode = '22023';
  end if;
  if p_from is not null then v_where := v_where || ' and at >= $1'; end if;
  if p_to is not null then v_where := v_where || ' and at <= $2'; end if;
  if p_host is not null then v_where := v_where || ' and host = $3'; end if;
  if p_unit is not null then v_where := v_where || ' and unit = $4'; end if;
  if p_container is not null then v_where := v_where || ' and container = $5'; end if;
  if p_priority is not null then v_where := v_where || ' and priority <= $6'; end if;
  if p_text is not null and p_text <> '' then
    v_where := v_where || ' and message ilike (''%'' || vigil._like_escape($7) || ''%'')';
  end if;
  if p_after_at is not null then
    v_where := v_where || format(' and (at, id) %s ($8, coalesce($9, 0))', v_cmp);
  end if;
  if p_tail_id is not null then
    -- Live tail: lines that arrived after the newest shown, within the last hour.
    v_where := v_where || ' and id > $10 and at >= now() - interval ''1 hour''';
  end if;
  if p_text is not null and p_text <> '' and p_tail_id is null then
    v_split := vigil._journal_indexed_until();
  end if;
  if v_split is not null then
    -- Lines before the split are in trigram-indexed partitions (or index parts); after it,
    -- only the current hour, searched directly. Two branches let the planner use both.
    return query execute format(
      'select * from ((select * from vigil.journal where %1$s and at < %4$L'
      ' order by at %2$s, id %3$s limit $11)'
      ' union all (select * from vigil.journal where %1$s and at >= %4$L'
      ' order by at %2$s, id %3$s limit $11)) u order by at %2$s, id %3$s limit $11',
      v_where, v_dir, v_dir, v_split)
      using p_from, p_to, p_host, p_unit, p_container, p_priority, p_text,
            p_after_at, p_after_id, p_tail_id, p_limit;
    return;
  end if;
  return query execute format(
    'select * from vigil.journal where %s order by at %s, id %s limit $11',
    v_where, v_dir, v_dir)
    using p_from, p_to, p_host, p_unit, p_container, p_priority, p_text,
          p_after_at, p_after_id, p_tail_id, p_limit;
end
$$;
comment on function vigil.journal_search(timestamptz, timestamptz, text, text, text, integer,
                                         text, timestamptz, bigint, boolean, integer, bigint) is
  'One page of journal lines. Filters (null = any): time range (inclusive), host, unit, '
  'container, priority (at most, i.e. this severity or worse), case-insensitive substring. '
  'Keyset paging: lines strictly after (p_after_at, p_after_id) in the page order '
  '(newest first by default). p_tail_id: only lines with id > p_tail_id from the last hour.';
