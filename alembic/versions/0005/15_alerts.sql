-- Alert rules: one engine for every signal. Rules are rows; each thing a rule watches (a
-- heartbeat metric, a series label set, a service, a host's log lines, a job) is an
-- instance of it with its own state, normal -> pending -> firing -> normal; every change
-- is an alert event; every notification goes through vigil._alert_notify, which applies
-- silences, maintenance windows and dependencies and writes the outbox row in the
-- caller's transaction.
-- Exposes: tables vigil.alert_rules (tunable), alert_instances, alert_events, silences,
-- maintenance_windows; the view vigil.rules (the heartbeat types, kept for existing SQL);
-- vigil._compare(), _glob_like(), render_template(), maintenance_active(), _withheld(),
-- _alert_notify(), _instance_set(), instance_text(), _forget_alerts_on_delete(), silence_add(),
-- silence_expire().
--
-- Who decides. The built-in rules (builtin = true: ping, disk, uptime, vigil-jobs) are
-- judged where their signal arrives, as fast as before: heartbeat reports at ingest and
-- ping deadlines by vigil.detect (30_heartbeats), checks by vigil.record_check
-- (70_uptime), job stalls by vigil.check_stalls (20_jobs). They read their parameters
-- from their rows here and notify through vigil._alert_notify. Every other rule is
-- evaluated by vigil.evaluate_rules (80_rules) every eval_interval. Reminders (repeat
-- interval) are sent by vigil.evaluate_rules for every rule.

create table if not exists vigil.alert_rules (
  id                bigint generated always as identity,
  name              text not null,
  source            text not null,
  builtin           boolean not null default false,
  metric_type       text,
  match_host        text,
  match_name        text,
  match_type        text,
  match_labels      jsonb not null default '{}',
  agg               text not null default 'last',
  agg_window        interval not null default interval '5 minutes',
  op                text,
  threshold         double precision,
  recover_op        text,
  recover_threshold double precision,
  for_duration      interval not null default interval '0',
  keep_firing_for   interval not null default interval '0',
  no_data           text not null default 'keep',
  no_data_after     interval,
  severity          text not null default 'warning',
  labels            jsonb not null default '{}',
  repeat_interval   interval not null default interval '0',
  group_wait        interval not null default interval '2 seconds',
  alert_template    text,
  ok_template       text,
  depends_on        text,
  depends_on_labels text[] not null default '{host}',
  rule_group        text not null default 'default',
  eval_interval     interval not null default interval '10 seconds',
  enabled           boolean not null default true,
  next_eval_at      timestamptz not null default '-infinity',
  description       text,
  created_by        text,
  created_at        timestamptz not null default now(),
  updated_at        timestamptz not null default now(),
  constraint alert_rules_pkey primary key (id),
  constraint alert_rules_name_key unique (name),
  constraint alert_rules_metric_type_key unique (metric_type),
  constraint alert_rules_name_check check (name ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$'),
  constraint alert_rules_source_check
    check (source in ('heartbeat', 'series', 'uptime', 'log', 'job')),
  constraint alert_rules_agg_check
    check (agg in ('avg', 'min', 'max', 'last', 'count', 'sum', 'rate')),
  constraint alert_rules_uptime_agg_check
    check (source <> 'uptime' or agg in ('last', 'avg', 'min', 'max', 'count')),
  constraint alert_rules_log_agg_check check (source <> 'log' or agg = 'count'),
  constraint alert_rules_heartbeat_agg_check check (source <> 'heartbeat' or agg <> 'rate'),
  constraint alert_rules_window_check
    check (agg_window between interval '1 second' and interval '31 days'),
  constraint alert_rules_op_check check (op in ('>', '>=', '<', '<=', '==', '!=')),
  constraint alert_rules_recover_op_check check (recover_op in ('>', '>=', '<', '<=', '==', '!=')),
  constraint alert_rules_condition_check
    check (builtin or (op is not null and threshold is not null)),
  constraint alert_rules_recover_check check ((recover_op is null) = (recover_threshold is null)),
  constraint alert_rules_series_check check (source <> 'series' or match_name is not null),
  constraint alert_rules_durations_check
    check (for_duration >= interval '0' and keep_firing_for >= interval '0'
           and repeat_interval >= interval '0' and group_wait between interval '0'
           and interval '10 minutes' and coalesce(no_data_after, interval '1 second') > interval '0'),
  constraint alert_rules_no_data_check check (no_data in ('alert', 'ok', 'keep')),
  constraint alert_rules_severity_check check (severity in ('info', 'warning', 'critical')),
  constraint alert_rules_labels_check
    check (jsonb_typeof(labels) = 'object' and jsonb_typeof(match_labels) = 'object'),
  constraint alert_rules_eval_interval_check
    check (eval_interval between interval '1 second' and interval '1 day'),
  constraint alert_rules_metric_type_check
    check (metric_type is null or (builtin and source = 'heartbeat')),
  constraint alert_rules_depends_on_fkey foreign key (depends_on)
    references vigil.alert_rules (name) on update cascade on delete set null
);
comment on table vigil.alert_rules is
  'Alert rules, one row each; every column is tunable with UPDATE (new values apply from the '
  'next evaluation or report). builtin rows are the heartbeat, uptime and job rules that are '
  'judged where their signal arrives; they cannot be deleted, only tuned or disabled.';
select vigil._comment_columns('vigil.alert_rules',
  'source', 'What the rule watches: heartbeat (metrics sent to /metric), series (numeric series), '
            'uptime (HTTP checks), log (journal lines counted per host), job (Vigil''s own jobs).',
  'metric_type', 'Built-in heartbeat rules only: the metric type (ping, disk) whose reports this '
                 'rule judges at ingest. A sender may only report types that have such a row.',
  'match_host', 'heartbeat, log: host pattern (* matches anything); null = every host.',
  'match_name', 'heartbeat: metric name pattern; series: the series name (pattern allowed); '
                'uptime: service name pattern; log: systemd unit pattern. null = every name.',
  'match_type', 'heartbeat: metric type pattern.',
  'match_labels', 'series: labels the series must have (equality, {"host": "web-1"}); log: '
                  '{"contains": "text"} counts only lines containing the text, {"priority": 3} '
                  'only lines of priority 3 or more severe.',
  'agg', 'How the window becomes one value: avg|min|max|last|count|sum|rate (per second, counter '
         'resets handled). uptime: last = 1 up / 0 down, avg = share of ok checks, min/max = '
         'response time in ms, count = failed checks. log: count of lines.',
  'agg_window', 'The window the aggregate reads, back from now.',
  'op', 'Fire when value <op> threshold. Built-in deadline rule (ping): null, fires on no data.',
  'recover_op', 'Hysteresis: a firing instance recovers only when value <recover_op> '
                'recover_threshold (e.g. fire > 90, recover < 80). null = recover when the fire '
                'condition no longer holds.',
  'for_duration', 'The condition must hold this long (state pending) before the instance fires; '
                  '0 = at once.',
  'keep_firing_for', 'The recovery condition must hold this long before a firing instance goes '
                     'back to normal.',
  'no_data', 'When the source has sent nothing for no_data_after: alert (fire), ok (back to '
             'normal) or keep (state unchanged).',
  'no_data_after', 'Silence of the source that counts as no data; null = agg_window. Built-in '
                   'ping rule: the default deadline for pings without a value (a ping''s integer '
                   'value overrides it).',
  'repeat_interval', 'Reminders while an instance stays firing, every repeat_interval; 0 = never.',
  'group_wait', 'Notifications are held this long so that those due together go as one message; '
                '0 = each on its own at once.',
  'alert_template', 'Text of the firing message with {rule} {instance} {value} {host} {name} '
                    '{severity} {reason} {since}; null = the default text.',
  'ok_template', 'Text of the recovery message (same placeholders plus {duration}); null = the '
                 'default.',
  'depends_on', 'Name of a parent rule: while an instance of it with the same depends_on_labels '
                'is firing, this rule''s notifications are withheld (suppressed), e.g. every '
                'check of a host while its heartbeat is down.',
  'depends_on_labels', 'Labels that must be equal between this rule''s instance and the parent''s '
                       '(default host).',
  'labels', 'Labels of the rule, e.g. {"team": "db"}: silences and maintenance windows match them '
            'as they match the labels of the instance.',
  'rule_group', 'A name to tune rules together, e.g. update ... set eval_interval = '
                '''30 seconds'' where rule_group = ''slow''.',
  'eval_interval', 'How often vigil.evaluate_rules evaluates it.',
  'next_eval_at', 'When the rule is next due for evaluation.');

create index if not exists alert_rules_due_idx on vigil.alert_rules (next_eval_at)
  where enabled and not builtin;

create or replace function vigil._alert_rules_touch() returns trigger
language plpgsql
as $$
begin
  new.updated_at := now();
  -- A changed rule is evaluated at its next tick with the new values.
  if tg_op = 'UPDATE' and not new.builtin then
    new.next_eval_at := least(new.next_eval_at, now());
  end if;
  -- A disabled rule judges nothing: its instances are dropped (their history stays), so
  -- nothing shows as firing for a rule that no longer watches; enabled again, it starts
  -- afresh.
  if tg_op = 'UPDATE' and old.enabled and not new.enabled then
    delete from vigil.alert_instances where rule_id = new.id;
  end if;
  return new;
end
$$;
comment on function vigil._alert_rules_touch() is
  'Trigger: sets alert_rules.updated_at, makes a changed rule due at once and drops the '
  'instances of a rule being disabled.';

drop trigger if exists alert_rules_touch on vigil.alert_rules;
create trigger alert_rules_touch
  before update of name, source, match_host, match_name, match_type, match_labels, agg,
                   agg_window, op, threshold, recover_op, recover_threshold, for_duration,
                   keep_firing_for, no_data, no_data_after, severity, labels, repeat_interval,
                   group_wait, alert_template, ok_template, depends_on, depends_on_labels,
                   rule_group, eval_interval, enabled
  on vigil.alert_rules for each row execute function vigil._alert_rules_touch();

create or replace function vigil._alert_rules_keep_builtin() returns trigger
language plpgsql
as $$
begin
  if old.builtin then
    raise exception 'rule "%" is built in and cannot be deleted', old.name
      using errcode = '55000', hint = 'disable it instead: update vigil.alert_rules set enabled = false';
  end if;
  return old;
end
$$;
comment on function vigil._alert_rules_keep_builtin() is
  'Trigger: the built-in rules are tuned or disabled, never deleted.';

drop trigger if exists alert_rules_keep_builtin on vigil.alert_rules;
create trigger alert_rules_keep_builtin before delete on vigil.alert_rules
  for each row execute function vigil._alert_rules_keep_builtin();

-- The built-in rules: the heartbeat, uptime and job-stall behaviour as rows.
insert into vigil.alert_rules (name, source, builtin, metric_type, match_type, op, threshold,
                               no_data, no_data_after, group_wait, description)
values
  ('ping', 'heartbeat', true, 'ping', 'ping', null, null, 'alert', interval '5 minutes',
   interval '0', 'A ping metric alerts when no ping arrives before its deadline: the ping''s '
   || 'value in minutes, else no_data_after. A fresh ping ends the alert.'),
  ('disk', 'heartbeat', true, 'disk', 'disk', '>', 90, 'keep', null, interval '0',
   'A disk metric alerts when its value is above threshold or not a number.'),
  ('uptime', 'uptime', true, null, null, null, null, 'keep', null, interval '0',
   'A service alerts when retries + 1 checks in a row failed (vigil.services.retries).'),
  ('vigil-jobs', 'job', true, null, null, null, null, 'alert', null,
   interval '0', 'A Vigil job alerts when it has not finished a run for its stall_after '
   || '(vigil.job_heartbeats).')
on conflict (name) do nothing;

-- Before this engine the heartbeat types were the table vigil.rules: its tuned values move
-- into the built-in rows once, and it becomes the view below.
do $$
begin
  if exists (select from pg_class c join pg_namespace n on n.oid = c.relnamespace
              where n.nspname = 'vigil' and c.relname = 'rules' and c.relkind = 'r') then
    execute $m$
      insert into vigil.alert_rules (name, source, builtin, metric_type, match_type, op,
                                     threshold, no_data, no_data_after, group_wait)
      select r.type, 'heartbeat', true, r.type, r.type,
             case r.kind when 'threshold' then '>' end, r.threshold,
             case r.kind when 'deadline' then 'alert' else 'keep' end,
             make_interval(mins => r.default_deadline_minutes), interval '0'
        from vigil.rules r
      on conflict (name) do update
        set threshold = excluded.threshold, no_data_after = excluded.no_data_after
    $m$;
    drop table vigil.rules cascade;
  end if;
end $$;

create or replace view vigil.rules as
select r.metric_type as type,
       case when r.op is null then 'deadline' else 'threshold' end as kind,
       (extract(epoch from r.no_data_after) / 60)::integer as default_deadline_minutes,
       r.threshold
  from vigil.alert_rules r
 where r.metric_type is not null;
comment on view vigil.rules is
  'The heartbeat metric types and their built-in rules (a view of vigil.alert_rules, kept for '
  'existing SQL): UPDATE and INSERT work and change vigil.alert_rules.';

create or replace function vigil._rules_write() returns trigger
language plpgsql
as $$
begin
  if tg_op = 'INSERT' then
    if new.kind not in ('deadline', 'threshold') then
      raise exception 'kind must be deadline or threshold' using errcode = '23514';
    end if;
    insert into vigil.alert_rules (name, source, builtin, metric_type, match_type, op, threshold,
                                   no_data, no_data_after, group_wait)
    values (new.type, 'heartbeat', true, new.type, new.type,
            case new.kind when 'threshold' then '>' end, new.threshold,
            case new.kind when 'deadline' then 'alert' else 'keep' end,
            make_interval(mins => coalesce(new.default_deadline_minutes, 5)), interval '0');
    return new;
  end if;
  update vigil.alert_rules
     set threshold = new.threshold,
         no_data_after = make_interval(mins => new.default_deadline_minutes)
   where metric_type = old.type;
  return new;
end
$$;
comment on function vigil._rules_write() is
  'Trigger: INSERT and UPDATE on the view vigil.rules write vigil.alert_rules.';

drop trigger if exists rules_write on vigil.rules;
create trigger rules_write instead of insert or update on vigil.rules
  for each row execute function vigil._rules_write();

create table if not exists vigil.alert_instances (
  rule_id           bigint not null,
  key               text not null,
  labels            jsonb not null default '{}',
  state             text not null default 'normal',
  since             timestamptz not null,
  pending_since     timestamptz,
  clearing_since    timestamptz,
  value             double precision,
  value_text        text,
  reason            text,
  last_data_at      timestamptz,
  last_evaluated_at timestamptz,
  last_notified_at  timestamptz,
  message           text,
  outbox_key        text,
  constraint alert_instances_pkey primary key (rule_id, key),
  constraint alert_instances_rule_fkey foreign key (rule_id)
    references vigil.alert_rules (id) on delete cascade,
  constraint alert_instances_state_check check (state in ('normal', 'pending', 'firing'))
);
comment on table vigil.alert_instances is
  'State per (rule, instance): normal, pending (condition holds, waiting for for_duration) or '
  'firing. Written by the evaluator and, for the built-in rules, where their signal arrives.';
select vigil._comment_columns('vigil.alert_instances',
  'key', 'The instance within its rule: metric:<id>, service:<id>, series:<id>, host:<name>, '
         'job:<name>.',
  'labels', 'What the instance is, as labels (host, name, service, the series labels...): '
            'silences, maintenance windows and dependencies match on them.',
  'since', 'When the instance entered its state.',
  'clearing_since', 'Firing instances: when the recovery condition started to hold '
                    '(keep_firing_for).',
  'last_notified_at', 'When the last firing or reminder notification was due (sent or withheld): '
                      'reminders follow every repeat_interval after it.',
  'message', 'The text of the last firing notification (reminders repeat it).',
  'outbox_key', 'The unit of delivery order of the instance''s messages (outbox.instance_key).');
create index if not exists alert_instances_open_idx on vigil.alert_instances (rule_id, state)
  where state <> 'normal';

create table if not exists vigil.alert_events (
  id         bigint generated always as identity,
  rule_id    bigint not null,
  key        text not null,
  labels     jsonb not null default '{}',
  at         timestamptz not null,
  from_state text not null,
  to_state   text not null,
  kind       text not null default 'change',
  value      double precision,
  value_text text,
  reason     text,
  withheld   text,
  outbox_id  bigint,
  constraint alert_events_pkey primary key (id),
  constraint alert_events_rule_fkey foreign key (rule_id)
    references vigil.alert_rules (id) on delete cascade,
  constraint alert_events_kind_check check (kind in ('change', 'reminder'))
);
comment on table vigil.alert_events is
  'Alert history: every change of state of every instance and every reminder, with its value, '
  'why, and whether a message was written (outbox_id) or withheld (withheld says why).';
select vigil._comment_columns('vigil.alert_events',
  'withheld', 'Why no message was written: silenced, maintenance, suppressed by a parent, or '
              'pending (pending changes are not announced).');
create index if not exists alert_events_instance_idx on vigil.alert_events (rule_id, key, at desc);
create index if not exists alert_events_at_idx on vigil.alert_events (at desc);

create table if not exists vigil.silences (
  id           bigint generated always as identity,
  rule_pattern text,
  matchers     jsonb not null default '{}',
  starts_at    timestamptz not null default now(),
  ends_at      timestamptz not null,
  comment      text not null,
  author       text not null default current_user,
  created_at   timestamptz not null default now(),
  constraint silences_pkey primary key (id),
  constraint silences_range_check check (ends_at > starts_at),
  constraint silences_matchers_check check (jsonb_typeof(matchers) = 'object'),
  constraint silences_comment_check check (length(btrim(comment)) between 1 and 500)
);
comment on table vigil.silences is
  'Silences: while now() is in [starts_at, ends_at), notifications of matching instances are '
  'withheld (evaluation and history go on). A resolution after the silence ends is sent.';
select vigil._comment_columns('vigil.silences',
  'rule_pattern', 'Rule name pattern (* matches anything); null = every rule.',
  'matchers', 'Labels the instance must have, e.g. {"host": "web-1"}; {} = every instance of the '
              'rules.');
create index if not exists silences_ends_idx on vigil.silences (ends_at);

create table if not exists vigil.maintenance_windows (
  id           bigint generated always as identity,
  name         text not null,
  rule_pattern text,
  matchers     jsonb not null default '{}',
  days         smallint[],
  starts       time not null,
  ends         time not null,
  time_zone    text not null default 'UTC',
  valid_from   timestamptz,
  valid_until  timestamptz,
  comment      text,
  author       text not null default current_user,
  created_at   timestamptz not null default now(),
  constraint maintenance_windows_pkey primary key (id),
  constraint maintenance_windows_name_key unique (name),
  constraint maintenance_windows_days_check check (days <@ array[1, 2, 3, 4, 5, 6, 7]::smallint[]),
  constraint maintenance_windows_matchers_check check (jsonb_typeof(matchers) = 'object'),
  constraint maintenance_windows_range_check check (starts <> ends)
);
comment on table vigil.maintenance_windows is
  'Recurring maintenance windows: on the given weekdays, from starts to ends wall-clock time in '
  'time_zone (DST-correct: 02:00-04:00 Europe/Berlin is 02:00-04:00 local in summer and '
  'winter), notifications of matching instances are withheld.';
select vigil._comment_columns('vigil.maintenance_windows',
  'days', 'ISO weekdays the window starts on (1 = Monday .. 7 = Sunday); null = every day.',
  'ends', 'Wall-clock end; at or before starts means the next day (22:00-02:00).',
  'valid_from', 'The window applies from then (null = always).');

create or replace function vigil._maintenance_check() returns trigger
language plpgsql
as $$
begin
  if not exists (select from pg_timezone_names where name = new.time_zone) then
    raise exception 'unknown time zone "%"', new.time_zone
      using errcode = '22023', hint = 'use an IANA name such as Europe/Berlin or UTC';
  end if;
  return new;
end
$$;
comment on function vigil._maintenance_check() is
  'Trigger: a maintenance window''s time zone must be a known IANA name.';

drop trigger if exists maintenance_windows_check on vigil.maintenance_windows;
create trigger maintenance_windows_check before insert or update on vigil.maintenance_windows
  for each row execute function vigil._maintenance_check();

-- Helpers -------------------------------------------------------------------------------

create or replace function vigil._compare(p_value anycompatible, p_op text,
                                          p_threshold anycompatible)
returns boolean
language sql immutable
as $$
  select case p_op
    when '>' then p_value > p_threshold when '>=' then p_value >= p_threshold
    when '<' then p_value < p_threshold when '<=' then p_value <= p_threshold
    when '==' then p_value = p_threshold when '!=' then p_value <> p_threshold
  end
$$;
comment on function vigil._compare(anycompatible, text, anycompatible) is
  'value <op> threshold for the six operators of alert rules; null when either side is null.';

create or replace function vigil._to_float(p_value numeric) returns double precision
language sql immutable
as $$ select case when abs(p_value) < 1e300 then p_value::double precision end $$;
comment on function vigil._to_float(numeric) is
  'A numeric as double precision, null when it would not fit (values sent as text can be huge).';

create or replace function vigil.short_interval(p_interval interval) returns text
language sql immutable
as $$
  -- 90 seconds -> 1m30s, 2 hours -> 2h, 1 day 2 hours -> 1d2h (as the CLI takes them).
  with s as (select extract(epoch from p_interval)::numeric as s)
  select case when s.s = 0 then '0s' else
           concat(case when s.s >= 86400 then floor(s.s / 86400) || 'd' end,
                  case when mod(s.s, 86400) >= 3600 then floor(mod(s.s, 86400) / 3600) || 'h' end,
                  case when mod(s.s, 3600) >= 60 then floor(mod(s.s, 3600) / 60) || 'm' end,
                  case when mod(s.s, 60) > 0 then trim_scale(mod(s.s, 60)) || 's' end) end
    from s
$$;
comment on function vigil.short_interval(interval) is
  'A duration as the CLI writes it: 30s, 5m, 1h30m, 1d2h.';

create or replace function vigil._glob_like(p_pattern text) returns text
language sql immutable
as $$
  select replace(vigil._like_escape(p_pattern), '*', '%')
$$;
comment on function vigil._glob_like(text) is
  'A pattern with * (anything) as a LIKE pattern: name like vigil._glob_like(''web-*'').';

create or replace function vigil._matches(p_text text, p_pattern text) returns boolean
language sql immutable
as $$ select p_pattern is null or coalesce(p_text like vigil._glob_like(p_pattern), false) $$;
comment on function vigil._matches(text, text) is
  'True when p_text matches the * pattern, or the pattern is null (matches everything).';

create or replace function vigil.render_template(p_template text, p_vars jsonb) returns text
language plpgsql immutable
as $$
declare
  v_out text := p_template;
  v_key text;
  v_val text;
begin
  for v_key, v_val in select key, value from jsonb_each_text(p_vars) loop
    v_out := replace(v_out, '{' || v_key || '}', coalesce(v_val, ''));
  end loop;
  return v_out;
end
$$;
comment on function vigil.render_template(text, jsonb) is
  'Replaces each {key} in p_template with the value of key in p_vars.';

create or replace function vigil._format_value(p_value double precision) returns text
language sql immutable
as $$
  select case when p_value is null then null
              when p_value = trunc(p_value) and abs(p_value) < 1e15 then trunc(p_value)::bigint::text
              else round(p_value::numeric, 3)::text end
$$;
comment on function vigil._format_value(double precision) is
  'A value for people: integers as such, others rounded to 3 decimals.';

create or replace function vigil.instance_text(p_labels jsonb) returns text
language sql immutable
as $$
  -- A series as Prometheus writes it, cpu{host="web-1"} (its name is the label __name__);
  -- a heartbeat metric as its messages name it, web-1 - backup; a service or a job by name.
  select case
    when p_labels ? '__name__' or not (p_labels ?& array['host', 'name'] or p_labels ? 'service'
                                       or p_labels ? 'job') then
      coalesce(p_labels ->> '__name__', '')
      || case when exists (select from jsonb_object_keys(p_labels - '__name__'))
              then '{' || (select string_agg(format('%s="%s"', key, value), ',' order by key)
                             from jsonb_each_text(p_labels - '__name__')) || '}'
              else '' end
    when p_labels ? 'service' then p_labels ->> 'service'
    when p_labels ? 'job' then p_labels ->> 'job'
    else (p_labels ->> 'host') || ' - ' || (p_labels ->> 'name')
  end
$$;
comment on function vigil.instance_text(jsonb) is
  'An instance for people: cpu{host="web-1"} for a series (name in the label __name__), '
  'web-1 - backup for a heartbeat metric, the name of a service or job, else {a="1",b="2"}.';

create or replace function vigil.maintenance_active(p_window vigil.maintenance_windows,
                                                    p_now timestamptz)
returns boolean
language sql stable
as $$
  -- The window that started today or yesterday (local date; it may run past midnight),
  -- each end converted from wall-clock time in its zone: DST-correct by construction. A
  -- start in the hour that repeats when clocks go back is its first occurrence
  -- (PostgreSQL reads an ambiguous local time as the later one); a start in the hour that
  -- is skipped when clocks go forward is the moment the clocks jump.
  select (p_window.valid_from is null or p_now >= p_window.valid_from)
     and (p_window.valid_until is null or p_now < p_window.valid_until)
     and exists (
       select from generate_series(0, 1) k
        cross join lateral (select (p_now at time zone p_window.time_zone)::date - k as d) dd
        cross join lateral (
          select dd.d + p_window.starts as local_start,
                 (dd.d + p_window.starts) at time zone p_window.time_zone as s,
                 (dd.d + case when p_window.ends > p_window.starts then 0 else 1 end
                       + p_window.ends) at time zone p_window.time_zone as e) w
        cross join lateral (
          select case when (w.s - interval '1 hour') at time zone p_window.time_zone
                           = w.local_start
                      then w.s - interval '1 hour' else w.s end as s) first
        where (p_window.days is null or extract(isodow from dd.d)::smallint = any (p_window.days))
          and p_now >= first.s and p_now < w.e)
$$;
comment on function vigil.maintenance_active(vigil.maintenance_windows, timestamptz) is
  'True when the maintenance window is open at p_now.';

create or replace function vigil._withheld(p_rule vigil.alert_rules, p_labels jsonb,
                                           p_now timestamptz)
returns text
language sql stable
as $$
  select coalesce(
    (select format('silenced (silence %s by %s until %s: %s)', s.id, s.author,
                   vigil._utc(s.ends_at), s.comment)
       from vigil.silences s
      where s.starts_at <= p_now and s.ends_at > p_now
        and vigil._matches(p_rule.name, s.rule_pattern) and p_rule.labels || p_labels @> s.matchers
      order by s.id limit 1),
    (select format('maintenance window "%s"', w.name)
       from vigil.maintenance_windows w
      where vigil._matches(p_rule.name, w.rule_pattern) and p_rule.labels || p_labels @> w.matchers
        and vigil.maintenance_active(w, p_now)
      order by w.id limit 1),
    (select format('suppressed: %s is firing for %s', p.name, vigil.instance_text(i.labels))
       from vigil.alert_rules p
       join vigil.alert_instances i on i.rule_id = p.id and i.state = 'firing'
      where p.name = p_rule.depends_on and p.enabled
        and not exists (select from unnest(p_rule.depends_on_labels) l
                         where (i.labels ->> l) is distinct from (p_labels ->> l)
                            or (p_labels ->> l) is null)
      order by i.since limit 1))
$$;
comment on function vigil._withheld(vigil.alert_rules, jsonb, timestamptz) is
  'Why a notification of an instance of p_rule with p_labels is withheld at p_now: an active '
  'silence, an open maintenance window (both match the rule''s labels and the instance''s), '
  'or a firing parent (depends_on); null = send it.';

create or replace function vigil._alert_notify(p_rule vigil.alert_rules, p_key text,
                                               p_labels jsonb, p_from text, p_to text,
                                               p_kind text, p_value double precision,
                                               p_value_text text, p_reason text, p_text text,
                                               p_now timestamptz, p_outbox_key text,
                                               p_transition_id bigint default null,
                                               p_service_event_id bigint default null)
returns bigint
language plpgsql
as $$
declare
  v_withheld text;
  v_outbox   bigint;
  v_event    bigint;
begin
  -- Announced: firing (from any state), back to normal from firing, reminders. A pending
  -- instance and its return to normal are history only.
  v_withheld := case
    when p_kind = 'change' and (p_to = 'pending' or (p_to = 'normal' and p_from <> 'firing'))
      then 'pending changes are not announced'
    else vigil._withheld(p_rule, p_labels, p_now) end;
  if v_withheld is null then
    insert into vigil.outbox (text, instance_key, transition_id, service_event_id, group_key,
                              next_attempt_at)
    values (p_text, p_outbox_key, p_transition_id, p_service_event_id,
            case when p_rule.group_wait > interval '0' then 'alerts' end,
            now() + p_rule.group_wait)
    returning id into v_outbox;
    perform pg_notify('vigil_outbox', '');
  end if;
  insert into vigil.alert_events (rule_id, key, labels, at, from_state, to_state, kind, value,
                                  value_text, reason, withheld, outbox_id)
  values (p_rule.id, p_key, p_labels, p_now, p_from, p_to, p_kind, p_value, p_value_text,
          p_reason, v_withheld, v_outbox)
  returning id into v_event;
  return v_event;
end
$$;
comment on function vigil._alert_notify(vigil.alert_rules, text, jsonb, text, text, text,
                                        double precision, text, text, text, timestamptz, text,
                                        bigint, bigint) is
  'Records an alert event (a change of state or a reminder) and, unless it is withheld '
  '(vigil._withheld) or a pending change, writes its message to the outbox with p_outbox_key '
  'as the unit of delivery order, held for the rule''s group_wait. Returns the event id.';

create or replace function vigil._instance_set(p_rule vigil.alert_rules, p_key text,
                                               p_labels jsonb, p_to text, p_value double precision,
                                               p_value_text text, p_reason text,
                                               p_now timestamptz, p_text text,
                                               p_outbox_key text,
                                               p_transition_id bigint default null,
                                               p_service_event_id bigint default null)
returns boolean
language plpgsql
as $$
declare
  v_from text;
begin
  -- The built-in rules decide their changes themselves (ingest, detect, record_check,
  -- check_stalls) and record them here, in the same transaction: one history, one
  -- notification path, reminders and silences for every rule.
  if not p_rule.enabled then
    return false;  -- a disabled built-in rule: the feature keeps its state, nobody is told
  end if;
  select state into v_from from vigil.alert_instances
   where rule_id = p_rule.id and key = p_key for update;
  v_from := coalesce(v_from, 'normal');
  insert into vigil.alert_instances as i (rule_id, key, labels, state, since, value, value_text,
                                          reason, last_data_at, last_evaluated_at,
                                          last_notified_at, message, outbox_key)
  values (p_rule.id, p_key, p_labels, p_to, p_now, p_value, p_value_text, p_reason, p_now,
          p_now, case when p_to = 'firing' then p_now end,
          case when p_to = 'firing' then p_text end, p_outbox_key)
  on conflict (rule_id, key) do update
    set labels = excluded.labels, state = excluded.state,
        since = case when i.state = excluded.state then i.since else excluded.since end,
        value = excluded.value, value_text = excluded.value_text, reason = excluded.reason,
        last_data_at = excluded.last_data_at, last_evaluated_at = excluded.last_evaluated_at,
        last_notified_at = case when i.state <> excluded.state and excluded.state = 'firing'
                                then excluded.last_notified_at else i.last_notified_at end,
        message = case when i.state <> excluded.state and excluded.state = 'firing'
                       then excluded.message else i.message end,
        outbox_key = excluded.outbox_key, pending_since = null, clearing_since = null;
  if v_from = p_to then
    return false;
  end if;
  perform vigil._alert_notify(p_rule, p_key, p_labels, v_from, p_to, 'change', p_value,
                              p_value_text, p_reason, p_text, p_now, p_outbox_key,
                              p_transition_id, p_service_event_id);
  return true;
end
$$;
comment on function vigil._instance_set(vigil.alert_rules, text, jsonb, text, double precision,
                                        text, text, timestamptz, text, text, bigint, bigint) is
  'Built-in rules: records that an instance is now in p_to (normal or firing) and, when that '
  'is a change, its event and message (vigil._alert_notify).';

create or replace function vigil._rule_text(p_rule vigil.alert_rules, p_to text,
                                            p_default text, p_vars jsonb)
returns text
language sql immutable
as $$
  select coalesce(vigil.render_template(case p_to when 'firing' then p_rule.alert_template
                                                  when 'normal' then p_rule.ok_template end,
                                        p_vars || jsonb_build_object('rule', p_rule.name,
                                                                     'severity', p_rule.severity)),
                  p_default)
$$;
comment on function vigil._rule_text(vigil.alert_rules, text, text, jsonb) is
  'The message of a change to p_to: the rule''s alert_template or ok_template filled from '
  'p_vars (plus rule and severity), or p_default when the rule has none.';

create or replace function vigil._rules_due_now(p_source text, p_now timestamptz)
returns void
language sql
as $$
  -- Event-driven evaluation: a report or check makes the rules over its source due at once
  -- (the next scheduler tick evaluates them, not the end of their eval_interval). SKIP
  -- LOCKED: a rule being evaluated right now is not waited for (ingest never blocks on the
  -- evaluator); only rules not yet due are written, so this costs one write per rule per
  -- evaluation, however many reports arrive.
  update vigil.alert_rules set next_eval_at = p_now
   where id in (select r.id from vigil.alert_rules r
                 where r.source = p_source and r.enabled and not r.builtin
                   and r.next_eval_at > p_now
                   for update skip locked)
$$;
comment on function vigil._rules_due_now(text, timestamptz) is
  'Makes the enabled rules over p_source (heartbeat, uptime) due at p_now: called where such '
  'a signal arrives, so they are judged at the next tick.';

create or replace function vigil._forget_alert_instances() returns trigger
language plpgsql
as $$
declare
  v_keys text := tg_argv[0] || ':%';
begin
  -- Instances are keyed <prefix>:<id> (tg_argv[0]: metric, service) with no foreign key:
  -- a deleted (or truncated) source row takes the instances of the rules over its source
  -- (tg_argv[1]: heartbeat, uptime) and their history along.
  if tg_op <> 'TRUNCATE' then
    v_keys := tg_argv[0] || ':' || old.id;  -- no wildcard: LIKE is equality
  end if;
  delete from vigil.alert_events
   where rule_id in (select id from vigil.alert_rules where source = tg_argv[1])
     and key like v_keys;
  delete from vigil.alert_instances
   where rule_id in (select id from vigil.alert_rules where source = tg_argv[1])
     and key like v_keys;
  return null;
end
$$;
comment on function vigil._forget_alert_instances() is
  'Trigger (after delete or truncate of a source table, arguments: key prefix, rule source): '
  'removes the alert instances and events of the deleted rows.';

create or replace function vigil._forget_alerts_on_delete(p_table regclass, p_key_prefix text,
                                                          p_source text)
returns void
language plpgsql
as $$
declare
  v_trigger text := (select c.relname from pg_class c where c.oid = p_table) || '_forget_alerts';
  v_call    text := format('vigil._forget_alert_instances(%L, %L)', p_key_prefix, p_source);
begin
  -- A truncate fires no row trigger: it gets a statement trigger of its own.
  execute format('drop trigger if exists %I on %s', v_trigger, p_table);
  execute format('create trigger %I after delete on %s for each row execute function %s',
                 v_trigger, p_table, v_call);
  execute format('drop trigger if exists %I on %s', v_trigger || '_truncate', p_table);
  execute format('create trigger %I after truncate on %s for each statement execute function %s',
                 v_trigger || '_truncate', p_table, v_call);
end
$$;
comment on function vigil._forget_alerts_on_delete(regclass, text, text) is
  'Creates (again) the triggers <table>_forget_alerts and <table>_forget_alerts_truncate that '
  'remove, with vigil._forget_alert_instances, the alert instances of p_table''s deleted rows '
  '(keys p_key_prefix:<id>, rules over p_source).';

-- Silences and maintenance windows --------------------------------------------------------

create or replace function vigil.silence_add(p_rule_pattern text, p_matchers jsonb,
                                             p_for interval, p_comment text,
                                             p_author text default current_user,
                                             p_starts_at timestamptz default now())
returns bigint
language plpgsql
as $$
declare
  v_id bigint;
begin
  if p_for is null or p_for <= interval '0' then
    raise exception 'a silence must last longer than 0 (got %)', coalesce(p_for::text, 'nothing')
      using errcode = '22023', hint = 'give a duration such as 2h';
  end if;
  if p_rule_pattern is not null and not exists (
       select from vigil.alert_rules where name like vigil._glob_like(p_rule_pattern)) then
    raise exception 'no rule matches "%"', p_rule_pattern
      using errcode = '22023', hint = 'see select name from vigil.alert_rules';
  end if;
  insert into vigil.silences (rule_pattern, matchers, starts_at, ends_at, comment, author)
  values (p_rule_pattern, coalesce(p_matchers, '{}'), p_starts_at, p_starts_at + p_for,
          p_comment, coalesce(p_author, current_user))
  returning id into v_id;
  return v_id;
end
$$;
comment on function vigil.silence_add(text, jsonb, interval, text, text, timestamptz) is
  'Adds a silence of the rules matching p_rule_pattern (null = all) and instances with the '
  'labels p_matchers, from p_starts_at for p_for; returns its id.';

create or replace function vigil.silence_expire(p_id bigint, p_now timestamptz default now())
returns boolean
language sql
as $$
  -- An upcoming silence is ended before it starts: its start moves to just before now.
  with ended as (
    update vigil.silences
       set starts_at = least(starts_at, p_now - interval '1 microsecond'), ends_at = p_now
     where id = p_id and ends_at > p_now
    returning id
  )
  select exists (select from ended)
$$;
comment on function vigil.silence_expire(bigint, timestamptz) is
  'Ends a silence now (kept as history; an upcoming one gets a start just before now); true '
  'when it was active or upcoming, false when there is no such silence or it had ended.';
