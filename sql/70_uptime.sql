-- Active HTTP checks (uptime): services, every check, up/down events, and the decisions.
-- The prober (prober/service.py) only claims due services, performs the GET and calls
-- vigil.record_check(); whether a check is ok, when a service is down (after retries),
-- the events and the outbox messages are decided here.
-- Exposes: tables vigil.services (configurable), checks, service_events; vigil.service_add(),
-- service_edit(), service_pause(), service_remove(), claim_checks(), record_check(), check_lag(), service_uptime(),
-- _service_labels() (the labels of a service's alert instances); the view
-- vigil.service_status; the job prune_checks (portable) or a retention policy (TimescaleDB).

create table if not exists vigil.services (
  id                   bigint generated always as identity,
  name                 text not null,
  url                  text not null,
  check_interval       interval not null default interval '15 seconds',
  timeout              interval not null default interval '15 seconds',
  expected_status      integer,
  body_contains        text,
  enabled              boolean not null default true,
  allow_internal       boolean not null default false,
  retries              integer not null default 2,
  retry_interval       interval not null default interval '5 seconds',
  state                text not null default 'unknown',
  state_changed_at     timestamptz not null default now(),
  consecutive_failures integer not null default 0,
  failing_since        timestamptz,
  last_checked_at      timestamptz,
  last_error           text,
  next_check_at        timestamptz not null default now(),
  tick_count           bigint not null default 0,
  up_count             bigint not null default 0,
  down_count           bigint not null default 0,
  response_ms_sum      double precision not null default 0,
  response_count       bigint not null default 0,
  created_at           timestamptz not null default now(),
  updated_at           timestamptz not null default now(),
  constraint services_pkey primary key (id),
  constraint services_name_key unique (name),
  constraint services_name_check check (length(name) between 1 and 100),
  constraint services_url_check check (url ~ '^https?://[^/?#\s]+' and length(url) <= 2048),
  constraint services_interval_check
    check (check_interval between interval '1 second' and interval '1 day'),
  constraint services_timeout_check
    check (timeout between interval '100 milliseconds' and interval '60 seconds'),
  constraint services_expected_status_check check (expected_status between 100 and 599),
  constraint services_retries_check check (retries between 0 and 10),
  constraint services_retry_interval_check check (retry_interval >= interval '1 second'),
  constraint services_state_check check (state in ('unknown', 'up', 'down'))
);
comment on table vigil.services is
  'HTTP services the prober GETs every check_interval. Config columns can be updated with '
  'SQL; state and the counters are written only by vigil.record_check().';
select vigil._comment_columns('vigil.services',
  'url', 'http:// or https:// URL that is fetched with GET.',
  'check_interval', 'Time between two checks of an up service.',
  'timeout', 'Whole check (connect, redirects, response) must finish within this time, else it '
             'fails.',
  'expected_status', 'Status the final response must have; null = any status below 400.',
  'body_contains', 'Substring the response body (first MiB) must contain; null = not checked.',
  'allow_internal', 'Allow loopback, private and link-local addresses for the service''s own host '
                    'only (not for hosts reached by redirect); cloud metadata addresses are '
                    'never allowed.',
  'retries', 'Failed checks retried before the service is declared down: down after '
             'retries + 1 consecutive failures.',
  'retry_interval', 'Delay before re-checking a failing service that is not yet down (if shorter '
                    'than check_interval).',
  'state', 'unknown (never checked), up or down.',
  'consecutive_failures', 'Failed checks in a row so far.',
  'failing_since', 'Time of the first failed check of the current streak: when a downtime starts.',
  'next_check_at', 'When the service is due; a claim moves it past the timeout (the lease of a '
                   'prober).',
  'tick_count', 'Checks recorded since the service was added.',
  'up_count', 'Checks that were ok.',
  'down_count', 'Checks that failed.',
  'response_ms_sum', 'Sum of recorded response times; average = response_ms_sum / response_count.',
  'response_count', 'Checks that recorded a response time.',
  'updated_at', 'Last change of the configuration columns.');

create index if not exists services_due_idx on vigil.services (next_check_at) where enabled;

create table if not exists vigil.checks (
  service_id  bigint not null,
  at          timestamptz not null,
  ok          boolean not null,
  status_code integer,
  response_ms double precision,
  error       text,
  constraint checks_service_fkey foreign key (service_id)
    references vigil.services (id) on delete cascade
);
comment on table vigil.checks is
  'Every check of every service. A hypertable in TimescaleDB mode; pruned by retention '
  '(30 days by default) in both modes.';
select vigil._comment_columns('vigil.checks',
  'at', 'When the check started.',
  'status_code', 'Final HTTP status (after redirects); null on error.',
  'response_ms', 'Milliseconds until the final response arrived; null when there was no response.',
  'error', 'Why the check failed (null when ok).');
create index if not exists checks_service_at_idx on vigil.checks (service_id, at desc);
create index if not exists checks_at_idx on vigil.checks (at);

create table if not exists vigil.service_events (
  id           bigint generated always as identity,
  service_id   bigint not null,
  event        text not null,
  date_started timestamptz not null,
  date_ended   timestamptz,
  reason       text,
  created_at   timestamptz not null default now(),
  updated_at   timestamptz not null default now(),
  constraint service_events_pkey primary key (id),
  constraint service_events_service_fkey foreign key (service_id)
    references vigil.services (id) on delete cascade,
  constraint service_events_event_check check (event in ('uptime', 'downtime')),
  constraint service_events_range_check check (date_ended is null or date_ended >= date_started)
);
comment on table vigil.service_events is
  'Uptime and downtime periods of a service. A flip closes the current event (date_ended) '
  'and opens a new one; date_ended is null while the event is current.';
select vigil._comment_columns('vigil.service_events',
  'reason', 'Downtime: why the check that declared it failed.');
create unique index if not exists service_events_current_key
  on vigil.service_events (service_id) where date_ended is null;
create index if not exists service_events_service_idx on vigil.service_events (service_id, id desc);

-- The outbox (10_outbox) is created before the service events its messages announce.
do $$
begin
  if not exists (select from pg_constraint where conname = 'outbox_service_event_fkey') then
    alter table vigil.outbox add constraint outbox_service_event_fkey
      foreign key (service_event_id) references vigil.service_events (id) on delete set null;
  end if;
end $$;

-- Configuration changes bump updated_at; record_check() does not touch these columns.
create or replace function vigil._services_touch() returns trigger
language plpgsql
as $$
begin
  new.updated_at := now();
  return new;
end
$$;
comment on function vigil._services_touch() is
  'Trigger: sets services.updated_at when a configuration column is updated.';

drop trigger if exists services_touch on vigil.services;
create trigger services_touch
  before update of name, url, check_interval, timeout, expected_status, body_contains, enabled,
                   allow_internal, retries, retry_interval
  on vigil.services for each row execute function vigil._services_touch();

create or replace function vigil._service_validate(p_url text, p_interval interval,
                                                   p_timeout interval,
                                                   p_expected_status integer,
                                                   p_retries integer)
returns void
language plpgsql
as $$
begin
  if p_url is null or p_url !~ '^https?://[^/?#\s]+' then
    raise exception 'service URL % is not an http(s) URL', p_url
      using errcode = '22023', hint = 'give a URL like https://example.com/health';
  end if;
  if p_interval < interval '1 second' or p_interval > interval '1 day' then
    raise exception 'interval % is out of range', p_interval
      using errcode = '22023', hint = 'use 1 second to 1 day';
  end if;
  if p_timeout < interval '100 milliseconds' or p_timeout > interval '60 seconds' then
    raise exception 'timeout % is out of range', p_timeout
      using errcode = '22023', hint = 'use 0.1 to 60 seconds';
  end if;
  if p_expected_status is not null and p_expected_status not between 100 and 599 then
    raise exception 'expected status % is not an HTTP status', p_expected_status
      using errcode = '22023', hint = 'use 100 to 599, or none for any status below 400';
  end if;
  if p_retries is null or p_retries not between 0 and 10 then
    raise exception 'retries % is out of range', p_retries
      using errcode = '22023', hint = 'use 0 to 10';
  end if;
end
$$;
comment on function vigil._service_validate(text, interval, interval, integer, integer) is
  'Raises 22023 with a hint when a service setting is invalid (service_add, service_edit).';

create or replace function vigil.service_add(p_name text, p_url text,
                                             p_interval interval default interval '15 seconds',
                                             p_timeout interval default interval '15 seconds',
                                             p_allow_internal boolean default false,
                                             p_expected_status integer default null,
                                             p_body_contains text default null,
                                             p_retries integer default 2)
returns bigint
language plpgsql
as $$
declare
  v_id bigint;
begin
  perform vigil._service_validate(p_url, p_interval, p_timeout, p_expected_status, p_retries);
  insert into vigil.services (name, url, check_interval, timeout, allow_internal,
                              expected_status, body_contains, retries)
  values (p_name, p_url, p_interval, p_timeout, p_allow_internal, p_expected_status,
          nullif(p_body_contains, ''), p_retries)
  returning id into v_id;
  return v_id;
exception when unique_violation then
  raise exception 'a service named "%" exists already', p_name
    using errcode = '23505', hint = 'remove it first or choose another name';
end
$$;
comment on function vigil.service_add(text, text, interval, interval, boolean, integer, text,
                                      integer) is
  'Adds a service to check (due at once); returns its id. Change it with service_edit().';

create or replace function vigil.service_edit(p_id bigint, p_name text, p_url text,
                                              p_interval interval, p_timeout interval,
                                              p_allow_internal boolean,
                                              p_expected_status integer,
                                              p_body_contains text, p_retries integer)
returns boolean
language plpgsql
as $$
begin
  perform vigil._service_validate(p_url, p_interval, p_timeout, p_expected_status, p_retries);
  update vigil.services
     set name = p_name, url = p_url, check_interval = p_interval, timeout = p_timeout,
         allow_internal = p_allow_internal, expected_status = p_expected_status,
         body_contains = nullif(p_body_contains, ''), retries = p_retries,
         next_check_at = least(next_check_at, now())
   where id = p_id;
  return found;
exception when unique_violation then
  raise exception 'a service named "%" exists already', p_name
    using errcode = '23505', hint = 'choose another name';
end
$$;
comment on function vigil.service_edit(bigint, text, text, interval, interval, boolean, integer,
                                       text, integer) is
  'Replaces every setting of service p_id (an empty p_body_contains: not checked) and makes it '
  'due at once; false when there is no such service. State, counters and history are kept.';

create or replace function vigil.service_pause(p_name text, p_paused boolean) returns boolean
language plpgsql
as $$
declare
  v_s vigil.services;
begin
  select * into v_s from vigil.services where name = p_name for update;
  if not found then
    return false;
  end if;
  if p_paused and v_s.enabled then
    -- Paused time counts neither as uptime nor as downtime: the current event ends here,
    -- and the first check after resume opens the next one.
    update vigil.service_events set date_ended = greatest(now(), date_started), updated_at = now()
     where service_id = v_s.id and date_ended is null;
    update vigil.services
       set enabled = false, state = 'unknown', state_changed_at = now(),
           consecutive_failures = 0, failing_since = null
     where id = v_s.id;
    -- Not alerted while paused: a firing alert of the service returns to normal without a
    -- message (no reminders, no "OK again"); the history records why.
    with ended as (
      update vigil.alert_instances i
         set state = 'normal', since = now(), reason = 'service paused', value_text = 'paused',
             last_evaluated_at = now(), pending_since = null, clearing_since = null
        from vigil.alert_rules r
       where r.name = 'uptime' and r.builtin and i.rule_id = r.id
         and i.key = 'service:' || v_s.id and i.state = 'firing'
      returning i.rule_id, i.key, i.labels, i.value
    )
    insert into vigil.alert_events (rule_id, key, labels, at, from_state, to_state, kind, value,
                                    value_text, reason, withheld)
    select rule_id, key, labels, now(), 'firing', 'normal', 'change', value, 'paused',
           'service paused', 'service paused'
      from ended;
  elsif not p_paused and not v_s.enabled then
    update vigil.services set enabled = true, next_check_at = now() where id = v_s.id;
  end if;
  return true;
end
$$;
comment on function vigil.service_pause(text, boolean) is
  'Pauses (p_paused) or resumes the service of that name; true when it exists. A paused '
  'service is not claimed by probers, so neither checked nor alerted; pausing ends its '
  'current event, resets its state to unknown and returns a firing alert to normal without '
  'a message (withheld: service paused); resuming makes it due at once.';

create or replace function vigil.service_remove(p_name text) returns boolean
language sql
as $$
  delete from vigil.services where name = p_name returning true
$$;
comment on function vigil.service_remove(text) is
  'Removes the service of that name with its checks, events and alert instances (trigger '
  'services_forget_alerts); true when it existed.';

select vigil._forget_alerts_on_delete('vigil.services', 'service', 'uptime');

create or replace function vigil.claim_checks(p_limit integer, p_now timestamptz default now())
returns table (id bigint, url text, timeout_seconds double precision,
               allow_internal boolean, body_contains text, name text)
language sql
as $$
  -- The claim moves next_check_at past the check's timeout (plus a margin): a prober that
  -- dies mid-check leaves the service due again for another one. SKIP LOCKED: several
  -- probers never claim the same service.
  update vigil.services s
     set next_check_at = p_now + s.timeout + interval '30 seconds'
   where s.id in (select d.id from vigil.services d
                   where d.enabled and d.next_check_at <= p_now
                   order by d.next_check_at
                   limit p_limit
                     for update skip locked)
  returning s.id, s.url, extract(epoch from s.timeout)::double precision, s.allow_internal,
            s.body_contains, s.name
$$;
comment on function vigil.claim_checks(integer, timestamptz) is
  'Claims up to p_limit due enabled services for one prober (FOR UPDATE SKIP LOCKED) and '
  'leases them until their timeout has passed; vigil.record_check() schedules the next check.';

create or replace function vigil.check_lag(p_now timestamptz default now()) returns interval
language sql stable
as $$
  select coalesce(p_now - min(next_check_at), interval '0')
    from vigil.services where enabled and next_check_at <= p_now
$$;
comment on function vigil.check_lag(timestamptz) is
  'How long the most overdue enabled service has been waiting for its check (0 = on time).';

create or replace function vigil._service_labels(p_service vigil.services) returns jsonb
language sql immutable
as $$
  select jsonb_build_object('service', p_service.name,
                            'host', substring(p_service.url
                                              from '^https?://(?:[^@/?#]*@)?(\[[^]]*\]|[^:/?#]+)'))
$$;
comment on function vigil._service_labels(vigil.services) is
  'The labels of a service''s alert instances: its name and the host of its URL (what '
  'silences and dependencies match, e.g. the heartbeats of that host).';

create or replace function vigil._check_failure(p_service vigil.services, p_status_code integer,
                                                p_error text, p_body_matched boolean)
returns text
language sql immutable
as $$
  select case
    when p_error is not null then p_error
    when p_status_code is null then 'no response'
    when p_service.expected_status is not null and p_status_code <> p_service.expected_status
      then 'HTTP ' || p_status_code || ', expected ' || p_service.expected_status
    when p_service.expected_status is null and p_status_code >= 400
      then 'HTTP ' || p_status_code
    when p_service.body_contains is not null and not coalesce(p_body_matched, false)
      then 'body does not contain "' || p_service.body_contains || '"'
  end
$$;
comment on function vigil._check_failure(vigil.services, integer, text, boolean) is
  'Why a check failed, or null when it is ok: no error, the expected status (default: below '
  '400), and the body substring when configured.';

create or replace function vigil._duration(p_interval interval) returns text
language sql immutable
as $$
  with s as (select greatest(floor(extract(epoch from p_interval)), 0)::bigint as s)
  select case
    when s >= 86400 then s / 86400 || 'd ' || s % 86400 / 3600 || 'h'
    when s >= 3600 then s / 3600 || 'h ' || s % 3600 / 60 || 'm'
    when s >= 60 then s / 60 || 'm ' || s % 60 || 's'
    else s || 's'
  end from s
$$;
comment on function vigil._duration(interval) is 'Short human duration: 12s, 3m 12s, 2h 5m, 1d 3h.';

create or replace function vigil.record_check(p_service_id bigint, p_at timestamptz,
                                              p_status_code integer,
                                              p_response_ms double precision, p_error text,
                                              p_body_matched boolean default null)
returns text
language plpgsql
as $$
declare
  v_s        vigil.services;
  v_reason   text;
  v_ok       boolean;
  v_failures integer;
  v_since    timestamptz;
  v_new      text;
  v_started  timestamptz;
  v_event    bigint;
  v_rule     vigil.alert_rules;
begin
  select * into v_s from vigil.services where id = p_service_id for update;
  if not found then
    return null;  -- removed while it was being checked
  end if;
  v_reason := vigil._check_failure(v_s, p_status_code, p_error, p_body_matched);
  v_ok := v_reason is null;
  insert into vigil.checks (service_id, at, ok, status_code, response_ms, error)
  values (p_service_id, p_at, v_ok, p_status_code, p_response_ms, v_reason);

  v_failures := case when v_ok then 0 else v_s.consecutive_failures + 1 end;
  v_since := case when v_ok then null else coalesce(v_s.failing_since, p_at) end;
  -- The retry rule: down only after retries + 1 consecutive failures.
  v_new := case when v_ok then 'up'
                when v_failures > v_s.retries then 'down'
                else v_s.state end;

  update vigil.services
     set tick_count = tick_count + 1,
         up_count = up_count + v_ok::int,
         down_count = down_count + (not v_ok)::int,
         response_ms_sum = response_ms_sum + coalesce(p_response_ms, 0),
         response_count = response_count + (p_response_ms is not null)::int,
         consecutive_failures = v_failures,
         failing_since = v_since,
         last_checked_at = p_at,
         last_error = v_reason,
         state = v_new,
         state_changed_at = case when v_new <> v_s.state then p_at else state_changed_at end,
         next_check_at = p_at + case when not v_ok and v_new <> 'down'
                                     then least(v_s.retry_interval, v_s.check_interval)
                                     else v_s.check_interval end
   where id = p_service_id;

  perform vigil._rules_due_now('uptime', p_at);
  if v_new = v_s.state then
    return v_new;
  end if;

  -- A flip: close the current event, open the new one, announce it through the outbox.
  v_started := case when v_new = 'down' then v_since else p_at end;
  update vigil.service_events
     set date_ended = greatest(v_started, date_started), updated_at = now()
   where service_id = p_service_id and date_ended is null;
  insert into vigil.service_events (service_id, event, date_started, reason)
  values (p_service_id, case v_new when 'up' then 'uptime' else 'downtime' end, v_started,
          case when v_new = 'down' then v_reason end)
  returning id into v_event;
  -- The built-in rule uptime (15_alerts): the flip is a change of the service's instance,
  -- announced unless silenced, in maintenance or suppressed; ordered per service.
  select * into v_rule from vigil.alert_rules where name = 'uptime';
  perform vigil._instance_set(
    v_rule, 'service:' || p_service_id, vigil._service_labels(v_s),
    case v_new when 'down' then 'firing' else 'normal' end,
    case v_new when 'down' then 0 else 1 end, v_new, coalesce(v_reason, 'check ok'), p_at,
    vigil._rule_text(
      v_rule, case v_new when 'down' then 'firing' else 'normal' end,
      case when v_new = 'down' then 'Alert: ' || v_s.name || ' - down (' || v_reason || ')'
           else 'OK again: ' || v_s.name || ' (down for '
                || vigil._duration(p_at - coalesce(v_s.failing_since, v_s.state_changed_at)) || ')'
      end,
      jsonb_build_object('name', v_s.name, 'instance', v_s.name, 'reason', v_reason,
                         'value', v_new, 'host', v_s.url,
                         'duration', vigil._duration(p_at - coalesce(v_s.failing_since,
                                                                     v_s.state_changed_at)))),
    'service:' || p_service_id, null, v_event);
  return v_new;
end
$$;
comment on function vigil.record_check(bigint, timestamptz, integer, double precision, text,
                                       boolean) is
  'Stores one check (p_error: transport error or SSRF refusal; p_body_matched: whether the '
  'body contained body_contains), applies the retry rule, flips the state, closes and opens '
  'service events, writes the outbox message and schedules the next check. Returns the state.';

create or replace function vigil.service_uptime(p_service_id bigint, p_window interval,
                                                p_now timestamptz default now())
returns double precision
language sql stable
as $$
  -- Time-weighted: the share of the known time in the window (covered by events) that
  -- was uptime; null when no event overlaps the window.
  with e as (
    select event,
           extract(epoch from least(coalesce(date_ended, p_now), p_now)
                              - greatest(date_started, p_now - p_window)) as secs
      from vigil.service_events
     where service_id = p_service_id
       and date_started < p_now
       and coalesce(date_ended, p_now) > p_now - p_window
  )
  select case when sum(secs) > 0
              then 100 * coalesce(sum(secs) filter (where event = 'uptime'), 0) / sum(secs) end
    from e
$$;
comment on function vigil.service_uptime(bigint, interval, timestamptz) is
  'Uptime percent of a service over the last p_window (time-weighted from its events), or '
  'null when nothing is known about that window.';

create or replace view vigil.service_status as
select s.id, s.name, s.url, s.enabled, s.state, s.state_changed_at, s.last_checked_at,
       s.last_error, s.tick_count, s.up_count, s.down_count,
       case when s.tick_count > 0 then 100.0 * s.up_count / s.tick_count else 0 end
         as uptime_percent,
       case when s.response_count > 0 then s.response_ms_sum / s.response_count else 0 end
         as average_response_time_ms,
       s.check_interval, s.timeout, s.retries, s.next_check_at, s.created_at, s.updated_at
  from vigil.services s;
comment on view vigil.service_status is
  'Every service with its state and all-time counters (uptime percent, mean response time).';

create or replace function vigil.prune_checks(p_now timestamptz, p_config jsonb)
returns integer
language sql
as $$
  select vigil._delete_expired('vigil.checks', 'at', p_now,
                               coalesce((p_config ->> 'retention')::interval, '30 days'))
$$;
comment on function vigil.prune_checks(timestamptz, jsonb) is
  'Portable mode retention: deletes checks older than config.retention (default 30 days).';

select vigil._register_job('prune_checks', 'vigil.prune_checks', interval '1 hour',
                           '{"retention": "30 days"}');

-- TimescaleDB mode: hypertable and retention policy (instead of prune_checks).
do $$
begin
  if vigil.has_timescale() then
    perform create_hypertable('vigil.checks', 'at', chunk_time_interval => interval '1 day',
                              if_not_exists => true, migrate_data => true);
    perform add_retention_policy('vigil.checks', interval '30 days', if_not_exists => true);
  end if;
end $$;
