-- Heartbeats and disk alerts: metrics reported by senders (POST /metric), their alert
-- rules, ingest, deadline detection and alert history. Threshold breaches are decided at
-- ingest, in the same transaction as the report; passed ping deadlines by vigil.detect.
-- The rules are the built-in rows of vigil.alert_rules with a metric_type (ping: a deadline,
-- disk: a threshold; 15_alerts); every change of state is also an instance change of that
-- rule (vigil._metric_announce), so silences, maintenance windows, dependencies, reminders
-- and the alert history apply to heartbeats as to every other rule.
-- Exposes: tables vigil.metrics, metric_history, transitions; vigil.ingest_metrics(),
-- ingest_metric(), detect(), detect_job, next_deadline(), render_message(), metric_delete();
-- the view vigil.metric_overview; the jobs detect and prune_metric_history (portable) or
-- detect_job and a retention policy (TimescaleDB).

create table if not exists vigil.metrics (
  id               bigint generated always as identity,
  host             text not null,
  name             text not null,
  type             text not null,
  value            text,
  last_seen        timestamptz not null,
  deadline         timestamptz,
  state            text not null default 'ok',
  state_changed_at timestamptz not null default now(),
  created_at       timestamptz not null default now(),
  constraint metrics_pkey primary key (id),
  constraint metrics_host_name_key unique (host, name),
  constraint metrics_type_fkey foreign key (type) references vigil.alert_rules (metric_type),
  constraint metrics_state_check check (state in ('ok', 'alert'))
);
comment on table vigil.metrics is
  'Current row per (host, name): latest value and alert state. A new POST updates it.';
select vigil._comment_columns('vigil.metrics',
  'last_seen', 'Timestamp of the latest report (sender clock).',
  'deadline', 'Deadline rules only: when the metric goes into alert unless a fresh ping arrives.',
  'state', 'ok or alert; changed only by vigil._transition() and vigil.ingest_metrics().');

-- The metric types became rows of vigil.alert_rules (15_alerts drops the old table of
-- types, and with it this key, when it upgrades a database).
do $$
begin
  if not exists (select from pg_constraint
                  where conrelid = 'vigil.metrics'::regclass and conname = 'metrics_type_fkey') then
    alter table vigil.metrics add constraint metrics_type_fkey
      foreign key (type) references vigil.alert_rules (metric_type);
  end if;
end $$;

-- The detector looks only at metrics whose deadline can pass: no full scan.
create index if not exists metrics_open_deadline_idx
  on vigil.metrics (deadline) where state = 'ok' and deadline is not null;

create table if not exists vigil.metric_history (
  metric_id bigint not null,
  at        timestamptz not null,
  value     text,
  constraint metric_history_metric_fkey foreign key (metric_id)
    references vigil.metrics (id) on delete cascade
);
comment on table vigil.metric_history is
  'Every accepted report (time, value) per metric. A hypertable in TimescaleDB mode.';
create index if not exists metric_history_metric_at_idx on vigil.metric_history (metric_id, at desc);
create index if not exists metric_history_at_idx on vigil.metric_history (at);

create table if not exists vigil.transitions (
  id         bigint generated always as identity,
  metric_id  bigint not null,
  at         timestamptz not null,
  from_state text not null,
  to_state   text not null,
  value      text,
  reason     text not null,
  constraint transitions_pkey primary key (id),
  constraint transitions_metric_fkey foreign key (metric_id)
    references vigil.metrics (id) on delete cascade
);
comment on table vigil.transitions is 'Alert history: every change of state of a metric.';
create index if not exists transitions_metric_idx on vigil.transitions (metric_id, at desc);

-- The outbox (10_outbox) is created before the transitions its messages announce.
do $$
begin
  if not exists (select from pg_constraint
                  where conrelid = 'vigil.outbox'::regclass
                    and conname = 'outbox_transition_fkey') then
    alter table vigil.outbox add constraint outbox_transition_fkey
      foreign key (transition_id) references vigil.transitions (id) on delete set null;
  end if;
end $$;

-- Ingest ---------------------------------------------------------------------------------

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

create or replace function vigil._metric_announce(p_transition_id bigint, p_metric_id bigint,
                                                  p_host text, p_name text, p_type text,
                                                  p_to text, p_value text, p_reason text,
                                                  p_now timestamptz)
returns void
language plpgsql
as $$
declare
  v_rule vigil.alert_rules;
begin
  -- A recovery ends the instance that is firing, also when the metric changed its type
  -- since (then the firing instance is of the old type's rule).
  select r.* into v_rule
    from vigil.alert_rules r
    left join vigil.alert_instances i
           on p_to = 'ok' and i.rule_id = r.id and i.key = 'metric:' || p_metric_id
              and i.state = 'firing'
   where r.metric_type = p_type or i.rule_id is not null
   order by i.rule_id is null
   limit 1;
  perform vigil._instance_set(
    v_rule, 'metric:' || p_metric_id,
    jsonb_build_object('host', p_host, 'name', p_name, 'type', p_type),
    case p_to when 'alert' then 'firing' else 'normal' end,
    vigil._to_float(vigil._parse_number(p_value)), p_value, p_reason, p_now,
    vigil._rule_text(v_rule, case p_to when 'alert' then 'firing' else 'normal' end,
                     vigil.render_message(p_to, p_host, p_name, p_value),
                     jsonb_build_object('host', p_host, 'name', p_name, 'type', p_type,
                                        'value', coalesce(p_value, ''), 'reason', p_reason,
                                        'instance', p_host || ' - ' || p_name)),
    'metric:' || p_metric_id, p_transition_id);
end
$$;
comment on function vigil._metric_announce(bigint, bigint, text, text, text, text, text, text,
                                           timestamptz) is
  'A heartbeat transition as a change of its built-in rule''s instance: alert event and, '
  'unless silenced, in maintenance or suppressed, the outbox message (the rule''s templates, '
  'else vigil.render_message), ordered per metric (instance_key metric:<id>).';

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
  perform vigil._metric_announce(v_tid, v_m.id, v_m.host, v_m.name, v_m.type, p_to, v_m.value,
                                 p_reason, p_now);
  return true;
end
$$;
comment on function vigil._transition(bigint, text, timestamptz, text) is
  'Moves a metric to a state if it is not in it already, records the transition and announces '
  'it (vigil._metric_announce), all in the caller''s transaction.';

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
  -- want: alert, ok, keep (between the recovery and the alert threshold: the state stays),
  -- or null for a report of an unknown type (no built-in rule). A deadline rule has no op.
  select i.ord::integer, i.host, i.name, i.type, i.value, coalesce(i.at, p_now), d.deadline,
         case when r.id is null then null
              when r.op is null then case when d.deadline <= p_now then 'alert' else 'ok' end
              when d.breach then 'alert'
              when r.recover_op is null or d.recovered then 'ok'
              else 'keep' end,
         case when r.id is null then null
              when r.op is null then
                case when d.deadline <= p_now then 'ping older than its deadline' else 'fresh ping' end
              when d.breach then
                case when r.op = '>' then 'value above threshold or not a number'
                     else format('value %s %s or not a number', r.op, r.threshold) end
              when r.recover_op is null then
                case when r.op = '>' then 'value at or below threshold'
                     else format('value not %s %s', r.op, r.threshold) end
              when d.recovered then format('value %s %s', r.recover_op, r.recover_threshold)
              else format('value between recovery (%s %s) and alert (%s %s) thresholds',
                          r.recover_op, r.recover_threshold, r.op, r.threshold) end
    from unnest(p_hosts, p_names, p_types, p_values, p_ats)
         with ordinality as i (host, name, type, value, at, ord)
    left join vigil.alert_rules r on r.metric_type = i.type
   cross join lateral (select vigil._parse_number(i.value) as n) v
   cross join lateral (
     -- numeric, not float8: a huge value sent as text must compare, not overflow.
     select case when r.op is null then coalesce(i.at, p_now) + coalesce(
                   make_interval(mins => vigil._parse_int(i.value)), r.no_data_after)
            end as deadline,
            r.op is not null and coalesce(vigil._compare(v.n, r.op, r.threshold::numeric), true)
              as breach,
            coalesce(vigil._compare(v.n, r.recover_op, r.recover_threshold::numeric), false)
              as recovered
   ) d
$$;
comment on function vigil._judge_reports(text[], text[], text[], text[], timestamptz[], timestamptz) is
  'Applies the built-in heartbeat rules to a batch of reports: deadline and wanted state '
  '(alert, ok, keep inside the hysteresis band; null: unknown type).';

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
  v_ords      integer[];
  v_afters    text[];
  v_tr_ids    bigint[];
  v_tr_ords   integer[];
  v_tr_prevs  text[];
  v_tr_afters text[];
  v_r         vigil._judged;
  v_tid       bigint;
  v_i         integer;
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
  --    transition. A report inside a hysteresis band (want = keep) leaves the state as it
  --    was: the state after each report is the want of the last report before it (itself
  --    included) that was not keep, else the state before the batch.
  with j as (
    select j.*, u.id, u.old_state
      from unnest(v_j) j
      join unnest(v_ids, v_hosts, v_names, v_states) as u (id, host, name, old_state)
        using (host, name)
  ), history as (
    insert into vigil.metric_history (metric_id, at, value)
    select j.id, j.at, j.value from j
  ), g as (
    select j.*, count(nullif(j.want, 'keep')) over (partition by j.id order by j.ord) as grp
      from j
  ), e as (
    select g.*, coalesce(first_value(nullif(g.want, 'keep'))
                           over (partition by g.id, g.grp order by g.ord), g.old_state) as after
      from g
  ), seq as (
    select e.*, coalesce(lag(e.after) over (partition by e.id order by e.ord), e.old_state) as prev
      from e
  )
  select array_agg(s.ord order by s.ord), array_agg(s.after order by s.ord),
         array_agg(s.id order by s.id, s.ord) filter (where s.after <> s.prev),
         array_agg(s.ord order by s.id, s.ord) filter (where s.after <> s.prev),
         array_agg(s.prev order by s.id, s.ord) filter (where s.after <> s.prev),
         array_agg(s.after order by s.id, s.ord) filter (where s.after <> s.prev)
    into v_ords, v_afters, v_tr_ids, v_tr_ords, v_tr_prevs, v_tr_afters
    from seq s;

  -- 4. Each change is a transition, announced in report order per metric (with the type
  --    the report had); the metric ends in the state after its last report.
  if v_tr_ids is not null then
    for v_i in 1 .. cardinality(v_tr_ids) loop
      v_r := v_j[v_tr_ords[v_i]];  -- v_j is ordered by ord, 1 .. n
      insert into vigil.transitions (metric_id, at, from_state, to_state, value, reason)
      values (v_tr_ids[v_i], p_now, v_tr_prevs[v_i], v_tr_afters[v_i], v_r.value, v_r.reason)
      returning id into v_tid;
      perform vigil._metric_announce(v_tid, v_tr_ids[v_i], v_r.host, v_r.name, v_r.type,
                                     v_tr_afters[v_i], v_r.value, v_r.reason, p_now);
    end loop;
    update vigil.metrics m
       set state = f.after, state_changed_at = p_now
      from (select distinct on (u.id) u.id, a.after
              from unnest(v_j) j
              join unnest(v_ords, v_afters) as a (ord, after) on a.ord = j.ord
              join unnest(v_ids, v_hosts, v_names) as u (id, host, name) using (host, name)
             order by u.id, j.ord desc) f
     where m.id = f.id and m.state <> f.after;
  end if;

  perform vigil._rules_due_now('heartbeat', p_now);

  return query
  select j.ord, a.after,
         case when j.want is null then
           format('unknown metric type "%s" (type must be one of: %s)', j.type,
                  (select string_agg(r.type, ', ' order by r.type) from vigil.rules r))
         end
    from unnest(v_j) j
    left join unnest(v_ords, v_afters) as a (ord, after) on a.ord = j.ord
   order by j.ord;
end
$$;
comment on function vigil.ingest_metrics(text[], text[], text[], text[], timestamptz[], timestamptz) is
  'Stores a batch of ping/disk reports set-based (the API groups concurrent requests into one '
  'call): upserts the current rows, keeps every report as history, and makes every change of '
  'state in report order (transition, alert event, outbox message unless withheld). Returns one row per '
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

-- Detection ------------------------------------------------------------------------------

create or replace function vigil.detect(p_now timestamptz default now()) returns integer
language plpgsql
as $$
declare
  v_id bigint;
  v_n  integer := 0;
begin
  -- Only metrics whose deadline has passed are read (metrics_open_deadline_idx).
  -- SKIP LOCKED: a row being ingested or handled by a concurrent run is left to it.
  for v_id in
    select id from vigil.metrics
     where state = 'ok' and deadline is not null and deadline <= p_now
     order by deadline
       for update skip locked
  loop
    if vigil._transition(v_id, 'alert', p_now, 'no ping before its deadline') then
      v_n := v_n + 1;
    end if;
  end loop;
  perform vigil._heartbeat('detect', v_n);
  return v_n;
end
$$;
comment on function vigil.detect(timestamptz) is
  'Puts every ping metric whose deadline passed by p_now into alert (one transition and one '
  'outbox message each) and records the detector heartbeat. Returns the number of transitions.';

create or replace procedure vigil.detect_job(job_id integer, config jsonb)
language plpgsql
as $$
begin
  perform vigil.detect(now());
end
$$;
comment on procedure vigil.detect_job(integer, jsonb) is
  'TimescaleDB job wrapper around vigil.detect(now()); see timescaledb_information.jobs.';

create or replace function vigil.next_deadline() returns timestamptz
language sql stable
as $$
  select min(deadline) from vigil.metrics where state = 'ok' and deadline is not null
$$;
comment on function vigil.next_deadline() is
  'The earliest deadline that can still pass (an index probe); the portable-mode scheduler '
  'wakes up at that moment to run vigil.detect, so alerts are not late by a whole tick.';

-- What the operator pages read and do ----------------------------------------------------

create or replace view vigil.metric_overview as
select m.id, m.host, m.name, m.type, m.value, m.last_seen, m.deadline, m.state,
       m.state_changed_at, case when r.op is null then 'deadline' else 'threshold' end as kind,
       case when r.op is null then 'deadline ' || coalesce(vigil._utc(m.deadline), '-')
            else 'threshold ' || r.op || ' ' || r.threshold
       end as limit_text,
       m.state = 'alert' as alerting
  from vigil.metrics m
  join vigil.alert_rules r on r.metric_type = m.type;
comment on view vigil.metric_overview is
  'Every metric with its rule (deadline or threshold) for the dashboard; order by alerting '
  'desc to put alerts first.';
select vigil._comment_columns('vigil.metric_overview',
  'limit_text', 'The deadline (ping) or threshold (disk) the state is decided by, as text.');

create or replace function vigil.metric_delete(p_id bigint) returns boolean
language sql
as $$
  delete from vigil.metrics where id = p_id returning true
$$;
comment on function vigil.metric_delete(bigint) is
  'Deletes a metric with its history, transitions and alert instances (trigger '
  'metrics_forget_alerts); its messages stay in the outbox.';

select vigil._forget_alerts_on_delete('vigil.metrics', 'metric', 'heartbeat');

-- Jobs -----------------------------------------------------------------------------------

create or replace function vigil.prune_metric_history(p_now timestamptz, p_config jsonb)
returns integer
language sql
as $$
  select vigil._delete_expired('vigil.metric_history', 'at', p_now,
                               coalesce((p_config ->> 'retention')::interval, '90 days'))
$$;
comment on function vigil.prune_metric_history(timestamptz, jsonb) is
  'Portable mode retention: deletes metric history older than config.retention (default 90 days).';

create or replace function vigil._job_detect(p_now timestamptz, p_config jsonb) returns integer
language sql
as $$ select vigil.detect(p_now) $$;
comment on function vigil._job_detect(timestamptz, jsonb) is 'Portable job entry for vigil.detect.';

select vigil._register_job('detect', 'vigil._job_detect', interval '1 second',
                           p_timescale_job => 'vigil.detect_job',
                           p_timescale_every => interval '5 seconds');
select vigil._register_job('prune_metric_history', 'vigil.prune_metric_history',
                           interval '1 hour', '{"retention": "90 days"}');

-- TimescaleDB mode: hypertable and retention policy (instead of prune_metric_history).
do $$
begin
  if vigil.has_timescale() then
    perform create_hypertable('vigil.metric_history', 'at',
                              chunk_time_interval => interval '7 days',
                              if_not_exists => true, migrate_data => true);
    perform add_retention_policy('vigil.metric_history', interval '90 days',
                                 if_not_exists => true);
  end if;
end $$;
