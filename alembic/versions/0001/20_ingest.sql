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

create or replace function vigil.ingest_metric(p_host text, p_name text, p_type text,
                                               p_value text, p_at timestamptz,
                                               p_now timestamptz default now())
returns text
language plpgsql
as $$
declare
  v_rule     vigil.rules;
  v_deadline timestamptz;
  v_want     text;
  v_reason   text;
  v_id       bigint;
  v_state    text;
begin
  select * into v_rule from vigil.rules where type = p_type;
  if not found then
    raise exception 'unknown metric type "%"', p_type
      using errcode = '22023',
            hint = 'type must be one of: '
                   || (select string_agg(type, ', ' order by type) from vigil.rules);
  end if;

  if v_rule.kind = 'deadline' then
    v_deadline := p_at + make_interval(
      mins => coalesce(vigil._parse_int(p_value), v_rule.default_deadline_minutes));
    v_want := case when v_deadline <= p_now then 'alert' else 'ok' end;
    v_reason := case v_want when 'ok' then 'fresh ping' else 'ping older than its deadline' end;
  else
    v_want := case when coalesce(vigil._parse_number(p_value) > v_rule.threshold::numeric, true)
                   then 'alert' else 'ok' end;
    v_reason := case v_want when 'ok' then 'value at or below threshold'
                            else 'value above threshold or not a number' end;
  end if;

  insert into vigil.metrics as m (host, name, type, value, last_seen, deadline)
  values (p_host, p_name, p_type, p_value, p_at, v_deadline)
  on conflict (host, name) do update
    set type = excluded.type, value = excluded.value,
        last_seen = excluded.last_seen, deadline = excluded.deadline
  returning m.id, m.state into v_id, v_state;

  insert into vigil.metric_history (metric_id, at, value) values (v_id, p_at, p_value);

  if v_state <> v_want then
    perform vigil._transition(v_id, v_want, p_now, v_reason);
  end if;
  return v_want;
end
$$;
comment on function vigil.ingest_metric(text, text, text, text, timestamptz, timestamptz) is
  'Stores one report of a ping or disk metric (upsert of the current row plus history) and '
  'makes the resulting state change, if any. Returns the state. Raises 22023 for an unknown type.';

create or replace function vigil.ingest_metrics(p_hosts text[], p_names text[], p_types text[],
                                                p_values text[], p_ats timestamptz[],
                                                p_now timestamptz default now())
returns table (ord integer, state text, error text)
language plpgsql
as $$
declare
  v_r record;
begin
  -- Reports are applied in (host, name) order so that concurrent batches lock metric rows
  -- in one global order (no deadlocks); reports of one metric keep their arrival order.
  for v_r in
    select i.ord::integer as ord, i.host, i.name, i.type, i.value, i.at,
           exists (select from vigil.rules r where r.type = i.type) as known
      from unnest(p_hosts, p_names, p_types, p_values, p_ats)
           with ordinality as i (host, name, type, value, at, ord)
     order by i.host, i.name, i.ord
  loop
    ord := v_r.ord;
    if v_r.known then
      state := vigil.ingest_metric(v_r.host, v_r.name, v_r.type, v_r.value,
                                   coalesce(v_r.at, p_now), p_now);
      error := null;
    else
      state := null;
      error := format('unknown metric type "%s" (type must be one of: %s)', v_r.type,
                      (select string_agg(r.type, ', ' order by r.type) from vigil.rules r));
    end if;
    return next;
  end loop;
end
$$;
comment on function vigil.ingest_metrics(text[], text[], text[], text[], timestamptz[], timestamptz) is
  'Batch form of vigil.ingest_metric (the API groups concurrent requests into one call): '
  'one row per report with its resulting state, or the reason it was rejected. A null '
  'timestamp means p_now.';
