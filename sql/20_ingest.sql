-- Ingest of heartbeat (ping) and disk metrics. Threshold breaches are decided here,
-- at ingest, in the same transaction as the report.

create or replace function vigil._parse_int(p_text text) returns integer
language sql immutable
as $$
  select case when p_text ~ '^\s*\+?[0-9]{1,7}\s*$' and btrim(p_text)::integer > 0
              then btrim(p_text)::integer end
$$;
comment on function vigil._parse_int(text) is
  'Positive integer (at most 7 digits) from text, else null. Used for ping deadlines in minutes.';

create or replace function vigil._parse_number(p_text text) returns numeric
language sql immutable
as $$
  -- numeric, not float8: a long run of digits must not overflow (the API caps values
  -- at 1024 characters; numeric holds far more).
  select case when p_text ~ '^\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,4})?\s*$'
              then btrim(p_text)::numeric end
$$;
comment on function vigil._parse_number(text) is
  'Finite number from text, else null (null alerts under a threshold rule).';

create or replace function vigil.render_message(p_to_state text, p_host text, p_name text,
                                                p_value text) returns text
language sql immutable
as $$
  select case p_to_state when 'alert' then 'Alert: ' else 'OK again: ' end
         || p_host || ' - ' || p_name
         || case when coalesce(p_value, '') <> '' then ' Value: ' || p_value else '' end
$$;
comment on function vigil.render_message(text, text, text, text) is
  'Telegram text of a transition: "Alert: {host} - {name}" or "OK again: {host} - {name}", '
  'followed by " Value: {value}" when there is a value.';

create or replace function vigil._transition(p_metric_id bigint, p_to text, p_now timestamptz,
                                             p_reason text) returns boolean
language plpgsql
as $$
declare
  v_m  vigil.metrics;
  v_tid bigint;
begin
  -- Guarded: only a metric not already in p_to changes; a second caller changes nothing.
  update vigil.metrics
     set state = p_to, state_changed_at = p_now
   where id = p_metric_id and state <> p_to
  returning * into v_m;
  if not found then
    return false;
  end if;
  insert into vigil.transitions (metric_id, at, from_state, to_state, value, reason)
  values (v_m.id, p_now, case p_to when 'ok' then 'alert' else 'ok' end, p_to, v_m.value, p_reason)
  returning id into v_tid;
  insert into vigil.outbox (transition_id, text)
  values (v_tid, vigil.render_message(p_to, v_m.host, v_m.name, v_m.value));
  perform pg_notify('vigil_outbox', '');
  return true;
end
$$;
comment on function vigil._transition(bigint, text, timestamptz, text) is
  'Moves a metric to a state if it is not in it already, records the transition and writes '
  'its message to the outbox, all in the caller''s transaction; NOTIFY wakes the notifier.';

do $$
begin
  if not exists (select from pg_type t join pg_namespace n on n.oid = t.typnamespace
                  where n.nspname = 'vigil' and t.typname = '_judged') then
    create type vigil._judged as (ord integer, host text, name text, type text, value text,
                                  at timestamptz, deadline timestamptz, want text, reason text);
  end if;
end $$;
comment on type vigil._judged is 'A report with its rule applied (see vigil._judge_reports).';

create or replace function vigil._judge_reports(p_hosts text[], p_names text[], p_types text[],
                                                p_values text[], p_ats timestamptz[],
                                                p_now timestamptz)
returns setof vigil._judged
language sql stable
as $$
  -- want is null for a report of an unknown type (no rule).
  select i.ord::integer, i.host, i.name, i.type, i.value, coalesce(i.at, p_now), d.deadline,
         case when r.kind = 'deadline' then case when d.deadline <= p_now then 'alert' else 'ok' end
              when r.kind = 'threshold' then case when d.breach then 'alert' else 'ok' end
         end,
         case when r.kind = 'deadline' then
                case when d.deadline <= p_now then 'ping older than its deadline' else 'fresh ping' end
              when r.kind = 'threshold' then
                case when d.breach then 'value above threshold or not a number'
                     else 'value at or below threshold' end
         end
    from unnest(p_hosts, p_names, p_types, p_values, p_ats)
         with ordinality as i (host, name, type, value, at, ord)
    left join vigil.rules r on r.type = i.type
   cross join lateral (
     select case when r.kind = 'deadline' then coalesce(i.at, p_now) + make_interval(
                   mins => coalesce(vigil._parse_int(i.value), r.default_deadline_minutes))
            end as deadline,
            r.kind = 'threshold'
              and coalesce(vigil._parse_number(i.value) > r.threshold::numeric, true) as breach
   ) d
$$;
comment on function vigil._judge_reports(text[], text[], text[], text[], timestamptz[], timestamptz) is
  'Applies vigil.rules to a batch of reports: deadline and wanted state (null: unknown type).';

create or replace function vigil.ingest_metrics(p_hosts text[], p_names text[], p_types text[],
                                                p_values text[], p_ats timestamptz[],
                                                p_now timestamptz default now())
returns table (ord integer, state text, error text)
language plpgsql
as $$
declare
  v_j       vigil._judged[];
  v_ids     bigint[];
  v_hosts   text[];
  v_names   text[];
  v_states  text[];
  v_changed bigint[];
begin
  -- The rules are applied once; the steps below read the judged reports from v_j.
  select array_agg(j::vigil._judged order by j.ord) into v_j
    from vigil._judge_reports(p_hosts, p_names, p_types, p_values, p_ats, p_now) j;

  -- 1. One current row per metric, from its last report in the batch. Rows are inserted
  --    in (host, name) order so concurrent batches lock them in one order (no deadlock).
  --    The upsert leaves state alone, so RETURNING gives the state before this batch.
  with latest as (
    select distinct on (j.host, j.name) j.*
      from unnest(v_j) j
     where j.want is not null
     order by j.host, j.name, j.ord desc
  ), up as (
    insert into vigil.metrics as m (host, name, type, value, last_seen, deadline)
    select l.host, l.name, l.type, l.value, l.at, l.deadline from latest l order by l.host, l.name
    on conflict (host, name) do update
      set type = excluded.type, value = excluded.value,
          last_seen = excluded.last_seen, deadline = excluded.deadline
    returning m.id, m.host, m.name, m.state
  )
  select array_agg(up.id), array_agg(up.host), array_agg(up.name), array_agg(up.state)
    into v_ids, v_hosts, v_names, v_states
    from up;

  -- 2. Every report is history; 3. every change of state, in report order, is a
  --    transition with its outbox message.
  with j as (
    select j.*, u.id, u.old_state
      from unnest(v_j) j
      join unnest(v_ids, v_hosts, v_names, v_states) as u (id, host, name, old_state)
        using (host, name)
  ), history as (
    insert into vigil.metric_history (metric_id, at, value)
    select j.id, j.at, j.value from j
  ), seq as (
    select j.*, coalesce(lag(j.want) over (partition by j.id order by j.ord), j.old_state) as prev
      from j
  ), tr as (
    insert into vigil.transitions (metric_id, at, from_state, to_state, value, reason)
    select s.id, p_now, s.prev, s.want, s.value, s.reason
      from seq s where s.want <> s.prev
     order by s.id, s.ord
    returning id, metric_id, to_state, value
  ), msg as (
    insert into vigil.outbox (transition_id, text)
    select tr.id, vigil.render_message(tr.to_state, u.host, u.name, tr.value)
      from tr join unnest(v_ids, v_hosts, v_names) as u (id, host, name) on u.id = tr.metric_id
     order by tr.id
  )
  select array_agg(distinct tr.metric_id) into v_changed from tr;

  -- 4. The metric ends in the state of its last report.
  if v_changed is not null then
    update vigil.metrics m
       set state = f.want, state_changed_at = p_now
      from (select distinct on (u.id) u.id, j.want
              from unnest(v_j) j
              join unnest(v_ids, v_hosts, v_names) as u (id, host, name) using (host, name)
             order by u.id, j.ord desc) f
     where m.id = f.id and m.id = any (v_changed);
    perform pg_notify('vigil_outbox', '');
  end if;

  return query
  select j.ord, j.want,
         case when j.want is null then
           format('unknown metric type "%s" (type must be one of: %s)', j.type,
                  (select string_agg(r.type, ', ' order by r.type) from vigil.rules r))
         end
    from unnest(v_j) j
   order by j.ord;
end
$$;
comment on function vigil.ingest_metrics(text[], text[], text[], text[], timestamptz[], timestamptz) is
  'Stores a batch of ping/disk reports set-based (the API groups concurrent requests into one '
  'call): upserts the current rows, keeps every report as history, and makes every change of '
  'state in report order (transition + outbox message, one NOTIFY). Returns one row per '
  'report with its resulting state, or the reason it was rejected. A null timestamp means '
  'p_now.';

create or replace function vigil.ingest_metric(p_host text, p_name text, p_type text,
                                               p_value text, p_at timestamptz,
                                               p_now timestamptz default now())
returns text
language plpgsql
as $$
declare
  v_state text;
  v_error text;
begin
  select b.state, b.error into v_state, v_error
    from vigil.ingest_metrics(array[p_host], array[p_name], array[p_type], array[p_value],
                              array[p_at], p_now) b;
  if v_error is not null then
    raise exception 'unknown metric type "%"', p_type
      using errcode = '22023',
            hint = 'type must be one of: '
                   || (select string_agg(type, ', ' order by type) from vigil.rules);
  end if;
  return v_state;
end
$$;
comment on function vigil.ingest_metric(text, text, text, text, timestamptz, timestamptz) is
  'Stores one report of a ping or disk metric (a batch of one for vigil.ingest_metrics) and '
  'returns the resulting state. Raises 22023 for an unknown type.';
