-- Heartbeats and disk alerts: metrics reported by senders (POST /metric), their alert
-- rules, ingest, deadline detection and alert history. Threshold breaches are decided at
-- ingest, in the same transaction as the report; passed ping deadlines by vigil.detect.
-- The rules are the built-in rows of vigil.alert_rules with a metric_type (ping: a deadline,
-- disk: a threshold; 15_alerts); every change of state is also an instance change of that
-- rule (vigil._metric_announce), so silences, maintenance windows, dependencies, reminders
-- and the alert history apply to heartbeats as to every other rule.
-- Push checks (Healthchecks-style pings, Uptime Kuma pushes) are ping metrics too: each has
-- a row in vigil.metrics (host 'check', type ping) whose deadline the pings move and
-- vigil.detect watches, plus its schedule and secret in vigil.push_checks.
-- Exposes: tables vigil.metrics, metric_history, transitions, push_checks, push_pings,
-- ping_keys; vigil.ingest_metrics(), ingest_metric(), detect(), detect_job, next_deadline(),
-- render_message(), metric_delete(), push_check_add(), push_check_find(),
-- push_check_by_slug(), push_ping(), push_check_schedule(), push_check_delete(),
-- ping_key_set(); the views vigil.metric_overview and push_check_overview; the jobs detect
-- and prune_metric_history (portable) or detect_job and a retention policy (TimescaleDB).

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

-- Push checks ----------------------------------------------------------------------------

create table if not exists vigil.push_checks (
  id            bigint generated always as identity,
  name          text not null,
  metric_id     bigint not null,
  secret_hash   bytea not null,
  period        interval not null default interval '1 day',
  grace         interval not null default interval '1 hour',
  cron          text,
  tz            text not null default 'UTC',
  due_at        timestamptz,
  started_at    timestamptz,
  started_rid   uuid,
  last_ping_at  timestamptz,
  last_kind     text,
  last_duration interval,
  n_pings       bigint not null default 0,
  keep_pings    integer not null default 100,
  created_at    timestamptz not null default now(),
  constraint push_checks_pkey primary key (id),
  constraint push_checks_name_key unique (name),
  constraint push_checks_secret_hash_key unique (secret_hash),
  constraint push_checks_metric_key unique (metric_id),
  constraint push_checks_metric_fkey foreign key (metric_id)
    references vigil.metrics (id) on delete cascade,
  constraint push_checks_name_check check (name ~ '^[a-z0-9][a-z0-9_-]{0,99}$'),
  constraint push_checks_schedule_check
    check (period >= interval '1 second' and grace >= interval '0'
           and grace <= interval '365 days' and period <= interval '365 days'),
  constraint push_checks_cron_check check (cron is null or length(cron) between 9 and 200),
  constraint push_checks_keep_pings_check check (keep_pings between 1 and 100000)
);
comment on table vigil.push_checks is
  'Push checks: jobs that report by pinging their URL (/ping/<secret>, Healthchecks-compatible) '
  'or pushing (/api/push/<secret>, Uptime Kuma). Each is the ping metric metric_id (host '
  '''check''); a check is late when no success or failure ping arrives by due_at. Changing '
  'period or grace takes effect at once; cron and tz from the next ping (or vigil check '
  'schedule).';
select vigil._comment_columns('vigil.push_checks',
  'name', 'The check''s name, also its slug in /ping/<ping-key>/<slug>: a-z, 0-9, - and _.',
  'secret_hash', 'SHA-256 of the secret in the check''s ping URL (the secret is shown once).',
  'period', 'Expected time between pings (when cron is null).',
  'grace', 'How late a ping may be, and how long a started run may take, before the alert.',
  'cron', 'Cron expression (5 fields) of the expected pings, evaluated in tz; null = period.',
  'tz', 'IANA time zone of cron.',
  'due_at', 'When the check is late: next expected ping + grace, set by each success or failure '
            'ping; null until the first one (a new check never alerts).',
  'started_at', 'A run that sent /start and has not finished: it alerts at started_at + grace.',
  'started_rid', 'The run id (?rid=) of that start, null when it had none.',
  'last_kind', 'Kind of the last success, failure or start ping.',
  'last_duration', 'Duration of the last finished run: its end ping minus its start ping.',
  'n_pings', 'Pings received; push_pings.n numbers them.',
  'keep_pings', 'How many of the newest pings push_pings keeps for the check.');

create table if not exists vigil.push_pings (
  check_id     bigint not null,
  n            bigint not null,
  at           timestamptz not null,
  kind         text not null,
  exit_status  smallint,
  rid          uuid,
  duration     interval,
  response_ms  double precision,
  source       text not null default 'healthchecks',
  method       text,
  remote_addr  text,
  user_agent   text,
  body         text,
  constraint push_pings_pkey primary key (check_id, n),
  constraint push_pings_check_fkey foreign key (check_id)
    references vigil.push_checks (id) on delete cascade,
  constraint push_pings_kind_check check (kind in ('success', 'fail', 'start', 'log')),
  constraint push_pings_source_check check (source in ('healthchecks', 'uptime-kuma'))
);
comment on table vigil.push_pings is
  'The newest pings of each push check (push_checks.keep_pings of them): kind, exit status, run '
  'id, run duration, Uptime Kuma''s response time and the request body (cut to the API''s ping '
  'body limit).';
select vigil._comment_columns('vigil.push_pings',
  'n', 'The ping''s number within its check (1, 2, ...).',
  'kind', 'success, fail, start or log (an exit status: 0 = success, else fail).',
  'duration', 'success/fail ending a run: time since its start (same rid, or both without).',
  'response_ms', 'Uptime Kuma pushes: the ping= value (response time in milliseconds).',
  'source', 'healthchecks (/ping/...) or uptime-kuma (/api/push/...).',
  'body', 'The request body as text (Uptime Kuma: msg=), at most the API''s ping body limit.');

create table if not exists vigil.ping_keys (
  key_hash   bytea not null,
  created_at timestamptz not null default now(),
  constraint ping_keys_pkey primary key (key_hash)
);
comment on table vigil.ping_keys is
  'The ping key of slug URLs (/ping/<ping-key>/<slug>), as SHA-256; one at a time '
  '(vigil check key makes a new one and retires the old).';

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
                     coalesce(vigil._push_check_text(p_metric_id, p_to, p_reason),
                              vigil.render_message(p_to, p_host, p_name, p_value)),
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
  'else vigil.render_message, or for a push check vigil._push_check_text), ordered per metric '
  '(instance_key metric:<id>).';

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
         case when r.id is null or ck.taken then null
              when r.op is null then case when d.deadline <= p_now then 'alert' else 'ok' end
              when d.breach then 'alert'
              when r.recover_op is null or d.recovered then 'ok'
              else 'keep' end,
         case when r.id is null or ck.taken then null
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
    -- A push check's metric (host 'check') is moved by its pings only. CASE: the lookup
    -- runs for reports of host 'check' only (a join would read vigil.metrics per batch).
   cross join lateral (
     select case when i.host = 'check' then exists (
              select from vigil.metrics m join vigil.push_checks c on c.metric_id = m.id
               where m.host = 'check' and m.name = i.name) else false end as taken) ck
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
  '(alert, ok, keep inside the hysteresis band; null: unknown type, or the metric of a push '
  'check).';

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
         case when j.want is null and j.host = 'check'
                   and exists (select from vigil.rules r where r.type = j.type) then
           format('"check - %s" is a push check: it takes pings at its own URL, not reports',
                  j.name)
              when j.want is null then
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
  if v_error like '"check - %' then
    raise exception '%', v_error
      using errcode = '22023', hint = 'see vigil check list; ping /ping/<secret> instead';
  elsif v_error is not null then
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
    if vigil._transition(v_id, 'alert', p_now,
                         coalesce(vigil._push_check_late(v_id, p_now),
                                  'no ping before its deadline')) then
      v_n := v_n + 1;
    end if;
  end loop;
  perform vigil._heartbeat('detect', v_n);
  return v_n;
end
$$;
comment on function vigil.detect(timestamptz) is
  'Puts every ping metric (push checks included) whose deadline passed by p_now into alert (one '
  'transition and one outbox message each) and records the detector heartbeat. Returns the '
  'number of transitions.';

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

-- Push checks: pings ---------------------------------------------------------------------
-- A check is a ping metric (host 'check') whose deadline its pings set: a success or failure
-- ping makes it due at the next expected time (now + period, or the next cron time, which
-- the caller computes in the check's time zone) + grace; a start makes it due at the latest
-- at start + grace. vigil.detect alerts the late ones; a failure alerts at once.

create or replace function vigil._push_check_tz(p_tz text) returns void
language plpgsql stable
as $$
begin
  if p_tz is null or not exists (select from pg_timezone_names where name = p_tz) then
    raise exception 'unknown time zone "%"', p_tz
      using errcode = '22023', hint = 'use an IANA name such as Europe/Berlin or UTC';
  end if;
end
$$;
comment on function vigil._push_check_tz(text) is
  'Raises 22023 unless p_tz is a known IANA time zone name.';

create or replace function vigil._push_check_text(p_metric_id bigint, p_to text, p_reason text)
returns text
language sql stable
as $$
  select case p_to when 'alert' then 'Alert: ' || c.name || ' - ' || p_reason
                   else 'OK again: ' || c.name end
    from vigil.push_checks c
   where c.metric_id = p_metric_id
$$;
comment on function vigil._push_check_text(bigint, text, text) is
  'Message of a push check''s change of state: "Alert: {name} - {reason}" or "OK again: '
  '{name}"; null when the metric is not a push check.';

create or replace function vigil._push_check_late(p_metric_id bigint, p_now timestamptz)
returns text
language sql stable
as $$
  select case when c.started_at is not null and c.started_at + c.grace <= p_now
              then format('started %s, not finished within %s', vigil._utc(c.started_at),
                          vigil.short_interval(c.grace))
              else format('late: no ping since %s', coalesce(vigil._utc(c.last_ping_at), 'it was added'))
         end
    from vigil.push_checks c
   where c.metric_id = p_metric_id
$$;
comment on function vigil._push_check_late(bigint, timestamptz) is
  'Why a push check passed its deadline at p_now (a started run that did not finish within '
  'grace, or late); null when the metric is not a push check.';

create or replace function vigil.push_check_add(p_name text, p_secret_hash bytea,
                                                p_period interval default interval '1 day',
                                                p_grace interval default interval '1 hour',
                                                p_cron text default null,
                                                p_tz text default 'UTC',
                                                p_now timestamptz default now())
returns bigint
language plpgsql
as $$
declare
  v_metric bigint;
  v_id     bigint;
begin
  if p_name is null or p_name !~ '^[a-z0-9][a-z0-9_-]{0,99}$' then
    raise exception 'invalid check name "%"', p_name
      using errcode = '22023',
            hint = 'use 1 to 100 of a-z, 0-9, - and _, starting with a letter or digit; '
                   'the name is also the slug of /ping/<ping-key>/<slug>';
  end if;
  perform vigil._push_check_tz(coalesce(p_tz, 'UTC'));
  if exists (select from vigil.push_checks where name = p_name) then
    raise exception 'a check named "%" exists', p_name
      using errcode = '23505', hint = 'pick another name, or delete it first: vigil check delete';
  end if;
  insert into vigil.metrics (host, name, type, value, last_seen, deadline, created_at,
                             state_changed_at)
  values ('check', p_name, 'ping', null, p_now, null, p_now, p_now)
  on conflict (host, name) do nothing
  returning id into v_metric;
  if v_metric is null then
    raise exception 'a heartbeat metric "check - %" exists', p_name
      using errcode = '23505', hint = 'pick another name, or delete that metric first';
  end if;
  insert into vigil.push_checks (name, metric_id, secret_hash, period, grace, cron, tz,
                                 created_at)
  values (p_name, v_metric, p_secret_hash, coalesce(p_period, interval '1 day'),
          coalesce(p_grace, interval '1 hour'), p_cron, coalesce(p_tz, 'UTC'), p_now)
  returning id into v_id;
  return v_id;
end
$$;
comment on function vigil.push_check_add(text, bytea, interval, interval, text, text, timestamptz) is
  'Creates a push check and its ping metric (host ''check''): late after period + grace (or '
  'the next time of cron in tz + grace) without a ping. p_secret_hash is the SHA-256 of its '
  'secret. Raises 22023 for a bad name or time zone, 23505 when the name is taken. The cron '
  'expression is checked by the caller.';

create or replace function vigil.push_check_find(p_secret_hash bytea)
returns table (id bigint, name text, cron text, tz text)
language sql stable
as $$
  select c.id, c.name, c.cron, c.tz from vigil.push_checks c where c.secret_hash = p_secret_hash
$$;
comment on function vigil.push_check_find(bytea) is
  'The push check whose secret has this SHA-256 (no row: unknown).';

create or replace function vigil.push_check_by_slug(p_key_hash bytea, p_slug text,
                                                    p_create boolean default false,
                                                    p_now timestamptz default now())
returns table (id bigint, name text, cron text, tz text, created boolean)
language plpgsql
as $$
declare
  v_id bigint;
begin
  if not exists (select from vigil.ping_keys k where k.key_hash = p_key_hash) then
    return;
  end if;
  return query select c.id, c.name, c.cron, c.tz, false
                 from vigil.push_checks c where c.name = p_slug;
  if found or not p_create or p_slug !~ '^[a-z0-9][a-z0-9_-]{0,99}$' then
    return;
  end if;
  begin
    -- Its own secret is random and never shown: the slug URL is how it is pinged.
    v_id := vigil.push_check_add(p_slug, sha256(convert_to(gen_random_uuid()::text, 'UTF8')),
                                 p_now => p_now);
  exception when unique_violation then
    -- Created by a concurrent ping (or the name is a heartbeat metric's).
    return query select c.id, c.name, c.cron, c.tz, false
                   from vigil.push_checks c where c.name = p_slug;
    return;
  end;
  return query select c.id, c.name, c.cron, c.tz, true from vigil.push_checks c where c.id = v_id;
end
$$;
comment on function vigil.push_check_by_slug(bytea, text, boolean, timestamptz) is
  'The push check named p_slug, when p_key_hash is the SHA-256 of the ping key; with '
  'p_create, one is created with the defaults (period 1 day, grace 1 hour) when missing '
  '(created = true). No row: unknown key, or unknown slug without p_create.';

create or replace function vigil.push_ping(p_check_id bigint, p_kind text,
                                           p_exit_status integer default null,
                                           p_rid uuid default null,
                                           p_body text default null,
                                           p_next_cron timestamptz default null,
                                           p_source text default 'healthchecks',
                                           p_response_ms double precision default null,
                                           p_method text default null,
                                           p_remote_addr text default null,
                                           p_user_agent text default null,
                                           p_now timestamptz default now())
returns table (state text, duration interval)
language plpgsql
as $$
declare
  v_c        vigil.push_checks;
  v_kind     text := p_kind;
  v_ends     boolean;
  v_start    timestamptz;
  v_duration interval;
  v_due      timestamptz;
  v_value    text;
  v_reason   text;
begin
  if p_exit_status is not null then
    if p_exit_status not between 0 and 255 then
      raise exception 'exit status % is not between 0 and 255', p_exit_status
        using errcode = '22023', hint = 'send the exit status of the job: 0 = success';
    end if;
    v_kind := case when p_exit_status = 0 then 'success' else 'fail' end;
  end if;
  if v_kind is null or v_kind not in ('success', 'fail', 'start', 'log') then
    raise exception 'unknown ping kind "%"', v_kind
      using errcode = '22023', hint = 'success, fail, start, log or an exit status 0-255';
  end if;
  select * into v_c from vigil.push_checks c where c.id = p_check_id for update;
  if not found then
    return;  -- deleted meanwhile: the caller answers "not found"
  end if;
  v_ends := v_kind in ('success', 'fail');

  -- A run's duration: from the newest start with the same run id (or both without one)
  -- that no end with that id has followed.
  if v_ends then
    select p.at into v_start
      from vigil.push_pings p
     where p.check_id = v_c.id and p.kind = 'start' and p.rid is not distinct from p_rid
       and p.at <= p_now
       and not exists (select from vigil.push_pings e
                        where e.check_id = v_c.id and e.kind in ('success', 'fail')
                          and e.rid is not distinct from p_rid and e.n > p.n)
     order by p.n desc
     limit 1;
    v_duration := p_now - v_start;
    v_due := coalesce(p_next_cron, p_now + v_c.period) + v_c.grace;
  end if;

  update vigil.push_checks c
     set n_pings = c.n_pings + 1,
         due_at = case when v_ends then v_due else c.due_at end,
         last_ping_at = case when v_ends then p_now else c.last_ping_at end,
         last_kind = case when v_kind = 'log' then c.last_kind else v_kind end,
         last_duration = coalesce(v_duration, c.last_duration),
         started_at = case when v_kind = 'start' then p_now
                           when v_ends and c.started_rid is not distinct from p_rid then null
                           else c.started_at end,
         started_rid = case when v_kind = 'start' then p_rid
                            when v_ends and c.started_rid is not distinct from p_rid then null
                            else c.started_rid end
   where c.id = v_c.id
  returning * into v_c;

  insert into vigil.push_pings (check_id, n, at, kind, exit_status, rid, duration, response_ms,
                                source, method, remote_addr, user_agent, body)
  values (v_c.id, v_c.n_pings, p_now, v_kind, p_exit_status, p_rid, v_duration, p_response_ms,
          coalesce(p_source, 'healthchecks'), p_method, p_remote_addr, p_user_agent, p_body);
  delete from vigil.push_pings p
   where p.check_id = v_c.id and p.n <= v_c.n_pings - v_c.keep_pings;

  if v_kind <> 'log' then
    v_value := case when p_exit_status is not null then format('%s (exit status %s)', v_kind,
                                                               p_exit_status)
                    else v_kind end;
    update vigil.metrics m
       set last_seen = p_now, value = v_value,
           deadline = least(v_c.due_at, v_c.started_at + v_c.grace)
     where m.id = v_c.metric_id;
    insert into vigil.metric_history (metric_id, at, value) values (v_c.metric_id, p_now, v_value);
    if v_kind = 'success' then
      perform vigil._transition(v_c.metric_id, 'ok', p_now, 'success ping');
    elsif v_kind = 'fail' then
      v_reason := case
        when p_source = 'uptime-kuma' then 'down' || coalesce(': ' || left(nullif(p_body, ''), 200), '')
        when p_exit_status is not null then format('failed (exit status %s)', p_exit_status)
        else 'failed' end;
      perform vigil._transition(v_c.metric_id, 'alert', p_now, v_reason);
    end if;
    perform vigil._rules_due_now('heartbeat', p_now);
  end if;

  return query select m.state, v_duration from vigil.metrics m where m.id = v_c.metric_id;
end
$$;
comment on function vigil.push_ping(bigint, text, integer, uuid, text, timestamptz, text,
                                    double precision, text, text, text, timestamptz) is
  'Records a ping of a push check: p_kind success, fail, start or log, or p_exit_status (0 = '
  'success, else fail). A success or failure sets the next deadline (p_next_cron, the next '
  'time of the check''s cron after p_now computed by the caller, else p_now + period, plus '
  'grace), ends the run with the same p_rid (its duration is returned and kept) and moves the '
  'check to ok or alert (transition, message); a start makes a run that must end within grace; '
  'a log is only kept. Returns the check''s state, or no row when the check is gone.';

create or replace function vigil._push_checks_schedule() returns trigger
language plpgsql
as $$
begin
  -- A DBA's new period or grace applies at once; a new cron or time zone from the next
  -- success or failure ping (the next cron time is computed outside SQL).
  if new.due_at is not distinct from old.due_at and new.last_ping_at is not null then
    if new.cron is null then
      new.due_at := new.last_ping_at + new.period + new.grace;
    elsif old.cron is not null then
      new.due_at := old.due_at - old.grace + new.grace;
    end if;
  end if;
  if new.tz is distinct from old.tz then
    perform vigil._push_check_tz(new.tz);
  end if;
  update vigil.metrics m
     set deadline = least(new.due_at, new.started_at + new.grace)
   where m.id = new.metric_id;
  return new;
end
$$;
comment on function vigil._push_checks_schedule() is
  'Trigger: an UPDATE of a push check''s period, grace, cron or tz moves its deadline (period '
  'and grace at once; cron and tz from the next ping).';

drop trigger if exists push_checks_schedule on vigil.push_checks;
create trigger push_checks_schedule before update of period, grace, cron, tz on vigil.push_checks
  for each row execute function vigil._push_checks_schedule();

create or replace function vigil.push_check_delete(p_name text) returns boolean
language sql
as $$
  delete from vigil.metrics m
   where m.id = (select c.metric_id from vigil.push_checks c where c.name = p_name)
  returning true
$$;
comment on function vigil.push_check_delete(text) is
  'Deletes a push check with its metric, pings, history and alert instances; true when it '
  'existed.';

create or replace function vigil.ping_key_set(p_key_hash bytea) returns void
language sql
as $$
  delete from vigil.ping_keys;
  insert into vigil.ping_keys (key_hash) values (p_key_hash);
$$;
comment on function vigil.ping_key_set(bytea) is
  'Makes the key with this SHA-256 the ping key of slug URLs; the previous key stops working.';

create or replace view vigil.push_check_overview as
select c.id, c.name,
       case when m.state = 'alert' then 'down'
            when c.started_at is not null then 'started'
            when c.last_ping_at is null then 'new'
            else 'up' end as status,
       c.period, c.grace, c.cron, c.tz, c.last_ping_at, c.last_kind, c.last_duration,
       c.started_at, m.deadline, c.n_pings, m.state_changed_at, c.created_at, c.metric_id
  from vigil.push_checks c
  join vigil.metrics m on m.id = c.metric_id;
comment on view vigil.push_check_overview is
  'Every push check with its status (new: never pinged, up, started: a run is open, down: '
  'failed or late) and schedule (vigil check list).';
select vigil._comment_columns('vigil.push_check_overview',
  'deadline', 'When the check alerts unless a ping arrives (null: new); not watched while '
              'down.');

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
