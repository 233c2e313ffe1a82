-- Evaluation of the alert rules that are not built in (15_alerts): what each source
-- observes now, the state machine per instance, reminders, the evaluation job, and the
-- views of the alerts and their history.
-- Exposes: vigil.rule_observations(), _rule_judge(), _rule_next(), evaluate_rule(),
-- evaluate_rules(), rule_test(), prune_alert_events(); the views vigil.alerts and
-- alert_history; the jobs evaluate_rules and prune_alert_events (portable) or
-- evaluate_rules_job and prune_alert_events_job (TimescaleDB).
--
-- Cost. Nothing scans a whole table per tick: a series is read through its (series_id, at)
-- index over the rule's window only (last: one index probe), a heartbeat metric from its
-- current row (windowed: metric_history (metric_id, at)), a service from its row (windowed:
-- checks (service_id, at)), log counts from journal (host, at) over the window. Rules are
-- due by their own eval_interval (alert_rules_due_idx), reminders by the firing instances
-- only (alert_instances_open_idx).

create or replace function vigil._series_rate(p_series_id bigint, p_from timestamptz,
                                              p_to timestamptz)
returns table (value double precision, last_at timestamptz, n bigint)
language sql stable
as $$
  -- Per second over the points in (p_from, p_to], in order; a drop is a counter reset, so
  -- the increase after it is the new value itself (as Prometheus' rate()).
  with w as (
    select p.at, p.value, p.value - lag(p.value) over (order by p.at) as delta
      from vigil.series_points(p_series_id, p_from, p_to + interval '1 microsecond') p
     where p.at > p_from
  )
  select case when count(*) >= 2 and max(w.at) > min(w.at) then
           sum(case when w.delta >= 0 then w.delta else w.value end)
             filter (where w.delta is not null)
           / extract(epoch from max(w.at) - min(w.at)) end,
         max(w.at), count(*)
    from w
$$;
comment on function vigil._series_rate(bigint, timestamptz, timestamptz) is
  'The per-second rate of one series over (p_from, p_to] (counter resets handled), its last '
  'point time and number of points: an index range scan of the window only.';

create or replace function vigil.rule_observations(p_rule vigil.alert_rules, p_now timestamptz)
returns table (key text, labels jsonb, value double precision, value_text text,
               last_at timestamptz)
language plpgsql stable
as $$
declare
  v_from  timestamptz := p_now - p_rule.agg_window;
  v_exact boolean := strpos(coalesce(p_rule.match_name, '*'), '*') = 0;
  v_m0    timestamptz;     -- the whole minutes of the window: [v_m0, v_m1) from the rollup
  v_m1    timestamptz;
  v_e0    timestamptz;     -- the end of the window's partial first minute
  v_stale tstzmultirange;  -- TimescaleDB mode: none (minutes are read from raw points)
begin
  -- value null: nothing to judge (no point in the window, last included; not a number);
  -- last_at says when the source last sent anything (no-data detection).
  if p_rule.source = 'series' then
    -- Windowed aggregates read the minute rollup for the whole minutes of the window and
    -- raw points only at its edges (the partial first minute; from the rollup's watermark,
    -- at most a minute or two, to now), like vigil.series_averages; buckets that received
    -- points since their rollup was computed (a backfill) are read raw, so the value equals
    -- a direct aggregate over the raw points. Each part is an index range scan per series.
    -- last: one index probe; rate needs the points in order: the window, raw.
    v_m0 := date_trunc('minute', v_from, 'UTC') + interval '1 minute';
    v_e0 := v_m0;
    if vigil.has_timescale() then
      -- Whole minutes from the raw points (vigil._series_minutes): never stale.
      v_m1 := greatest(date_trunc('minute', p_now, 'UTC'), v_m0);
      v_stale := '{}';
    else
      -- Before the packed boundary there is no minute rollup: that part is read raw (its
      -- points count like the rollup's, without a time of their own).
      select greatest(v_m0, k.until) into v_m0 from vigil.points_packed_until k;
      select greatest(least(date_trunc('minute', p_now, 'UTC'), w.materialized_until), v_m0)
        into v_m1 from vigil.series_watermarks w where w.tier = 'minute';
      v_m1 := coalesce(v_m1, v_m0);
    end if;
    return query
    with s as (
      select x.id, x.name, x.labels from vigil.series x
       where (case when v_exact then x.name = p_rule.match_name
                   else x.name like vigil._glob_like(p_rule.match_name) end)
         and x.labels @> p_rule.match_labels
    ), st as (
      -- Stale minutes per series: portable mode's invalidation log, or TimescaleDB's.
      select i.series_id,
             range_agg(tstzrange(date_trunc('minute', i.lo, 'UTC'),
                                 date_trunc('minute', i.hi, 'UTC') + interval '1 minute')) as r
        from vigil.points_invalidations i
       where v_stale is null and i.series_id in (select id from s)
         and i.hi >= v_m0 and i.lo < v_m1
       group by i.series_id
      union all
      select s.id, v_stale from s where v_stale is not null and not isempty(v_stale)
    ), parts as (
      select s.id as series_id, r.n, r.total, r.min_value, r.max_value, null::timestamptz as at
        from s cross join lateral vigil._series_minutes(s.id, v_m0, v_m1) r
        left join st on st.series_id = s.id
       where not coalesce(st.r @> r.bucket, false)
      union all
      select s.id, 1, p.value, p.value, p.value, case when p.at < v_e0 then p.at end
        from s cross join lateral vigil.series_points(s.id, v_from, v_m0) p
       where p.at > v_from and p.at <= p_now
      union all
      select p.series_id, 1, p.value, p.value, p.value, p.at
        from s join vigil.points p on p.series_id = s.id
       where p.at >= v_m1 and p.at <= p_now
      union all
      select p.series_id, 1, p.value, p.value, p.value, p.at
        from st join vigil.points p on p.series_id = st.series_id
       where p.at >= v_m0 and p.at < v_m1 and st.r @> date_trunc('minute', p.at, 'UTC')
    ), a as (
      select x.series_id,
             case p_rule.agg
               when 'avg' then sum(x.total) / nullif(sum(x.n), 0) when 'min' then min(x.min_value)
               when 'max' then max(x.max_value) when 'sum' then sum(x.total)
               when 'count' then sum(x.n)::double precision end as value,
             max(x.at) as last_at, sum(x.n) as n
        from parts x
       where p_rule.agg not in ('last', 'rate')
       group by x.series_id
    )
    select 'series:' || s.id, s.labels || jsonb_build_object('__name__', s.name),
           case when p_rule.agg = 'rate' then r.value
                when p_rule.agg = 'count' then coalesce(a.value, 0)
                when p_rule.agg <> 'last' then a.value
                when l.at > v_from then l.value end,
           null::text, coalesce(a.last_at, r.last_at, l.at)
      from s
      left join a on a.series_id = s.id
      left join lateral (select * from vigil._series_rate(s.id, v_from, p_now)
                          where p_rule.agg = 'rate') r on true
      -- The newest point: the value of 'last', else only when the edges of the window had
      -- none (when did the series last send anything?); the condition gates the probe.
      left join lateral (select p.value, p.at from vigil._series_last(s.id, p_now) p
                          where p_rule.agg = 'last' or (a.last_at is null and r.last_at is null))
                l on true;
  elsif p_rule.source = 'heartbeat' then
    return query
    select 'metric:' || m.id, jsonb_build_object('host', m.host, 'name', m.name, 'type', m.type),
           case when p_rule.agg <> 'last' then h.value
                when m.last_seen > v_from then vigil._to_float(vigil._parse_number(m.value)) end,
           m.value, m.last_seen
      from vigil.metrics m
      left join lateral (
        select case p_rule.agg when 'avg' then avg(x.v) when 'min' then min(x.v)
                               when 'max' then max(x.v) when 'sum' then sum(x.v)
                               when 'count' then count(*)::double precision end as value
          from (select vigil._to_float(vigil._parse_number(mh.value)) as v
                  from vigil.metric_history mh
                 where mh.metric_id = m.id and mh.at > v_from and mh.at <= p_now) x
      ) h on p_rule.agg <> 'last'
     where vigil._matches(m.host, p_rule.match_host) and vigil._matches(m.name, p_rule.match_name)
       and vigil._matches(m.type, p_rule.match_type);
  elsif p_rule.source = 'uptime' then
    return query
    select 'service:' || s.id, vigil._service_labels(s),
           case when p_rule.agg <> 'last' then c.value
                when s.last_checked_at > v_from then
                  case s.state when 'up' then 1.0 when 'down' then 0.0 end end,
           s.state, s.last_checked_at
      from vigil.services s
      left join lateral (
        select case p_rule.agg when 'avg' then avg(k.ok::int)::double precision
                               when 'min' then min(k.response_ms)
                               when 'max' then max(k.response_ms)
                               when 'count' then (count(*) filter (where not k.ok))::double precision
               end as value
          from vigil.checks k
         where k.service_id = s.id and k.at > v_from and k.at <= p_now
      ) c on p_rule.agg <> 'last'
     where s.enabled and vigil._matches(s.name, p_rule.match_name);
  elsif p_rule.source = 'log' then
    return query
    select 'host:' || coalesce(j.host, ''), jsonb_build_object('host', j.host),
           count(*)::double precision, null::text, max(j.at)
      from vigil.journal j
     where j.at > v_from and j.at <= p_now
       and vigil._matches(j.host, p_rule.match_host) and vigil._matches(j.unit, p_rule.match_name)
       and (p_rule.match_labels ->> 'contains' is null
            or j.message like '%' || vigil._like_escape(p_rule.match_labels ->> 'contains') || '%')
       and (p_rule.match_labels ->> 'priority' is null
            or j.priority <= (p_rule.match_labels ->> 'priority')::smallint)
     group by j.host;
  end if;
end
$$;
comment on function vigil.rule_observations(vigil.alert_rules, timestamptz) is
  'What a rule''s source shows at p_now, one row per instance: key, labels, the aggregated '
  'value over the window (null: nothing to judge) and when the source last sent data.';

create or replace function vigil._rule_judge(p_rule vigil.alert_rules, p_value double precision,
                                             p_last_at timestamptz, p_now timestamptz)
returns table (breach boolean, recovered boolean, reason text)
language sql stable
as $$
  -- A value is judged by the condition and the recovery condition (hysteresis); no value
  -- and a silent source by the no-data behaviour; no value from a source that is not
  -- silent (not a number, nothing in the window yet) keeps the state.
  select case when p_value is not null then x.fire
              when x.stale and p_rule.no_data <> 'keep' then p_rule.no_data = 'alert'
              else false end,
         case when p_value is not null then
                case when p_rule.recover_op is null then not x.fire
                     else vigil._compare(p_value, p_rule.recover_op, p_rule.recover_threshold) end
              when x.stale and p_rule.no_data <> 'keep' then p_rule.no_data = 'ok'
              else false end,
         case when p_value is not null then
                format('%s of %s: %s', p_rule.agg, vigil.short_interval(p_rule.agg_window),
                       vigil._format_value(p_value))
                || case when x.fire then format(' %s %s', p_rule.op, p_rule.threshold)
                        when p_rule.recover_op is null
                          then format(', not %s %s', p_rule.op, p_rule.threshold)
                        when vigil._compare(p_value, p_rule.recover_op, p_rule.recover_threshold)
                          then format(' %s %s (recovery)', p_rule.recover_op, p_rule.recover_threshold)
                        else format(', not %s %s, not yet %s %s (recovery)', p_rule.op,
                                    p_rule.threshold, p_rule.recover_op, p_rule.recover_threshold)
                   end
              when x.stale and p_rule.no_data <> 'keep' then
                'no data since ' || coalesce(vigil._utc(p_last_at), 'ever')
              when x.stale then 'no data (state kept)'
              else 'no value (state kept)' end
    from (select vigil._compare(p_value, p_rule.op, p_rule.threshold) as fire,
                 p_last_at is null
                   or p_last_at <= p_now - coalesce(p_rule.no_data_after, p_rule.agg_window) as stale) x
$$;
comment on function vigil._rule_judge(vigil.alert_rules, double precision, timestamptz, timestamptz) is
  'Judges one observation: whether the condition holds (breach), whether the recovery '
  'condition holds, and why, in words.';

create or replace function vigil._rule_next(p_rule vigil.alert_rules, p_state text,
                                            p_breach boolean, p_recovered boolean,
                                            p_pending_since timestamptz,
                                            p_clearing_since timestamptz, p_now timestamptz)
returns table (state text, pending_since timestamptz, clearing_since timestamptz)
language sql immutable
as $$
  -- normal -> pending (the condition holds; firing at once when for_duration is 0)
  -- pending -> firing (held for for_duration) | normal (no longer holds)
  -- firing -> normal (the recovery condition held for keep_firing_for)
  select n.s,
         case when n.s = 'pending' then coalesce(case when p_state = 'pending'
                                                      then p_pending_since end, p_now) end,
         case when n.s = 'firing' and p_recovered then coalesce(p_clearing_since, p_now) end
    from (select case
            when p_state = 'normal' and p_breach then
              case when p_rule.for_duration = interval '0' then 'firing' else 'pending' end
            when p_state = 'pending' and not p_breach then 'normal'
            when p_state = 'pending' and p_now - p_pending_since >= p_rule.for_duration then 'firing'
            when p_state = 'firing' and p_recovered
                 and p_now - coalesce(p_clearing_since, p_now) >= p_rule.keep_firing_for then 'normal'
            else p_state end as s) n
$$;
comment on function vigil._rule_next(vigil.alert_rules, text, boolean, boolean, timestamptz,
                                     timestamptz, timestamptz) is
  'The state machine of an instance: its next state, pending_since and clearing_since from '
  'its state and a judged observation.';

create or replace function vigil.evaluate_rule(p_rule vigil.alert_rules, p_now timestamptz)
returns integer
language plpgsql
as $$
declare
  v_keys   text[];
  v_froms  text[];
  v_sinces timestamptz[];
  v_i      vigil.alert_instances;
  v_value  text;
  v_text   text;
begin
  -- Set-based: every instance is judged and written in one statement (the common case,
  -- nothing changes, costs one upsert); only the changes are announced one by one.
  -- Instances the source no longer shows: a count is 0, anything else is over (normal);
  -- one that stays unseen and normal for a day is forgotten (its history stays).
  with obs as (
    select * from vigil.rule_observations(p_rule, p_now)
  ), cur as (
    select coalesce(o.key, i.key) as key, coalesce(o.labels, i.labels) as labels,
           case when o.key is null and p_rule.agg = 'count' then 0::double precision
                else o.value end as value,
           o.value_text,
           case when o.key is not null then o.last_at
                when p_rule.agg = 'count' then p_now else i.last_data_at end as last_at,
           coalesce(i.state, 'normal') as old_state, i.since, i.pending_since, i.clearing_since,
           i.key is null as is_new,
           o.key is null and p_rule.agg <> 'count' as gone,
           coalesce(o.key is null and i.state = 'normal'
                    and i.last_data_at < p_now - interval '1 day', false) as forgotten
      from obs o
      full join (select * from vigil.alert_instances where rule_id = p_rule.id) i
        on i.key = o.key
  ), stepped as (
    -- An instance the source no longer shows at all (its series, metric or service is gone
    -- or the rule's matchers changed) is over: back to normal at once, as Prometheus
    -- resolves an alert whose series went away. A silent source still shown is no data.
    select c.*,
           case when c.gone then 'no longer matched by the rule' else j.reason end as reason,
           case when c.gone then 'normal' else n.state end as new_state,
           case when not c.gone then n.pending_since end as new_pending,
           case when not c.gone then n.clearing_since end as new_clearing
      from cur c
     cross join lateral vigil._rule_judge(p_rule, c.value, c.last_at, p_now) j
     cross join lateral vigil._rule_next(p_rule, c.old_state, j.breach, j.recovered,
                                         c.pending_since, c.clearing_since, p_now) n
     where not c.forgotten
  ), ins as (
    -- New instances; then the existing ones, updated in place (cheaper than an upsert).
    insert into vigil.alert_instances (rule_id, key, labels, state, since, pending_since,
                                       clearing_since, value, value_text, reason,
                                       last_data_at, last_evaluated_at, outbox_key)
    select p_rule.id, s.key, s.labels, s.new_state, p_now, s.new_pending, s.new_clearing,
           s.value, s.value_text, s.reason, s.last_at, p_now, 'rule:' || p_rule.id || ':' || s.key
      from stepped s
     where s.is_new
  ), upd as (
    update vigil.alert_instances i
       set labels = s.labels, state = s.new_state,
           since = case when i.state <> s.new_state then p_now else i.since end,
           pending_since = s.new_pending, clearing_since = s.new_clearing,
           value = s.value, value_text = s.value_text, reason = s.reason,
           last_data_at = coalesce(s.last_at, i.last_data_at), last_evaluated_at = p_now
      from stepped s
     where not s.is_new and i.rule_id = p_rule.id and i.key = s.key
  ), gone as (
    delete from vigil.alert_instances i
     using cur c where c.forgotten and i.rule_id = p_rule.id and i.key = c.key
  )
  select array_agg(s.key order by s.key), array_agg(s.old_state order by s.key),
         array_agg(s.since order by s.key)
    into v_keys, v_froms, v_sinces
    from stepped s
   where s.new_state <> s.old_state;

  for n in 1 .. coalesce(cardinality(v_keys), 0) loop
    select * into v_i from vigil.alert_instances where rule_id = p_rule.id and key = v_keys[n];
    v_value := coalesce(vigil._format_value(v_i.value), 'no data');
    v_text := vigil._rule_text(
      p_rule, v_i.state,
      case v_i.state when 'firing' then 'Alert: ' else 'OK again: ' end || p_rule.name || ' - '
        || vigil.instance_text(v_i.labels) || ' Value: ' || v_value,
      jsonb_build_object('instance', vigil.instance_text(v_i.labels), 'value', v_value,
                         'host', coalesce(v_i.labels ->> 'host', ''),
                         'name', coalesce(v_i.labels ->> '__name__', v_i.labels ->> 'name',
                                          v_i.labels ->> 'service', ''),
                         'reason', v_i.reason, 'since', vigil._utc(coalesce(v_sinces[n], p_now)),
                         'duration', vigil._duration(p_now - coalesce(v_sinces[n], p_now))));
    if v_i.state = 'firing' then
      -- Rule action (block_for, 77_blocklist): block the instance's address; the message says so.
      v_text := concat_ws(E'\n', v_text,
                          vigil._rule_block(p_rule, v_i.key, v_i.labels, v_i.value, p_now));
      update vigil.alert_instances set message = v_text, last_notified_at = p_now
       where rule_id = p_rule.id and key = v_i.key;
    end if;
    perform vigil._alert_notify(p_rule, v_i.key, v_i.labels, v_froms[n], v_i.state, 'change',
                                v_i.value, v_i.value_text, v_i.reason, v_text, p_now,
                                v_i.outbox_key);
  end loop;
  return coalesce(cardinality(v_keys), 0);
end
$$;
comment on function vigil.evaluate_rule(vigil.alert_rules, timestamptz) is
  'Evaluates one rule at p_now: every instance its source shows and every known instance it '
  'no longer shows goes one step through the state machine (vigil._rule_judge, '
  'vigil._rule_next), in one statement; each change of state is recorded and announced '
  '(vigil._alert_notify). Returns the number of changes.';

create or replace function vigil._remind(p_now timestamptz) returns integer
language plpgsql
as $$
declare
  v_due record;
  v_r   vigil.alert_rules;
  v_i   vigil.alert_instances;
  v_n   integer := 0;
begin
  for v_due in
    select i.rule_id, i.key from vigil.alert_instances i
      join vigil.alert_rules r on r.id = i.rule_id
     where i.state = 'firing' and r.enabled and r.repeat_interval > interval '0'
       and i.last_notified_at + r.repeat_interval <= p_now
     order by i.last_notified_at
       for update of i skip locked
  loop
    select * into v_r from vigil.alert_rules where id = v_due.rule_id;
    select * into v_i from vigil.alert_instances where rule_id = v_due.rule_id and key = v_due.key;
    update vigil.alert_instances set last_notified_at = p_now
     where rule_id = v_i.rule_id and key = v_i.key;
    perform vigil._alert_notify(
      v_r, v_i.key, v_i.labels, 'firing', 'firing', 'reminder', v_i.value, v_i.value_text,
      'still firing since ' || vigil._utc(v_i.since),
      'Reminder: ' || coalesce(v_i.message, v_r.name || ' - ' || vigil.instance_text(v_i.labels))
        || ' (firing since ' || vigil._utc(v_i.since) || ')',
      p_now, coalesce(v_i.outbox_key, 'rule:' || v_r.id || ':' || v_i.key));
    v_n := v_n + 1;
  end loop;
  return v_n;
end
$$;
comment on function vigil._remind(timestamptz) is
  'Reminders: every firing instance of a rule with a repeat_interval whose last notification '
  'is that old gets one (withheld while silenced, in maintenance or suppressed).';

create or replace function vigil.evaluate_rules(p_now timestamptz default now())
returns integer
language plpgsql
as $$
declare
  v_rule vigil.alert_rules;
  v_n    integer := 0;
begin
  -- SKIP LOCKED: concurrent evaluators share the due rules; each rule (and so each
  -- transition) is evaluated by one of them, then is not due again before eval_interval.
  for v_rule in
    select * from vigil.alert_rules
     where enabled and not builtin and next_eval_at <= p_now
     order by next_eval_at, id
       for update skip locked
  loop
    v_n := v_n + vigil.evaluate_rule(v_rule, p_now);
    update vigil.alert_rules set next_eval_at = p_now + eval_interval where id = v_rule.id;
  end loop;
  v_n := v_n + vigil._remind(p_now);
  perform vigil._heartbeat('evaluate_rules', v_n);
  return v_n;
end
$$;
comment on function vigil.evaluate_rules(timestamptz) is
  'Evaluates every enabled rule that is due (next_eval_at) and sends the due reminders. '
  'Scheduled every second (portable: the notifier; TimescaleDB: a job); each rule is due '
  'every eval_interval. Returns the number of changes and reminders.';

create or replace procedure vigil.evaluate_rules_job(job_id integer, config jsonb)
language plpgsql
as $$
begin
  perform vigil.evaluate_rules(now());
end
$$;
comment on procedure vigil.evaluate_rules_job(integer, jsonb) is
  'TimescaleDB job wrapper around vigil.evaluate_rules(now()).';

create or replace function vigil._job_evaluate_rules(p_now timestamptz, p_config jsonb)
returns integer
language sql
as $$ select vigil.evaluate_rules(p_now) $$;
comment on function vigil._job_evaluate_rules(timestamptz, jsonb) is
  'Portable job entry for vigil.evaluate_rules.';

create or replace function vigil.rule_test(p_name text, p_now timestamptz default now())
returns table (instance jsonb, value double precision, last_at timestamptz, state text,
               would_be text, reason text)
language plpgsql
as $$
declare
  v_rule   vigil.alert_rules;
  v_before jsonb;
  v_after  jsonb;
begin
  select * into v_rule from vigil.alert_rules r where r.name = p_name;
  if not found then
    raise exception 'no rule named "%"', p_name
      using errcode = '22023', hint = 'see select name from vigil.alert_rules';
  end if;
  if v_rule.builtin then
    raise exception 'rule "%" is built in: it is judged where its signal arrives', p_name
      using errcode = '22023', hint = 'its instances are in the view vigil.alerts';
  end if;
  select coalesce(jsonb_object_agg(i.key, i.state), '{}') into v_before
    from vigil.alert_instances i where i.rule_id = v_rule.id;
  -- The real evaluation, rolled back: nothing is written, nobody is notified.
  begin
    perform vigil.evaluate_rule(v_rule, p_now);
    select jsonb_agg(jsonb_build_object('key', i.key, 'labels', i.labels, 'value', i.value,
                                        'last_at', i.last_data_at, 'state', i.state,
                                        'reason', i.reason) order by i.key)
      into v_after
      from vigil.alert_instances i where i.rule_id = v_rule.id;
    raise exception using errcode = 'P0004', message = 'rule_test rollback';
  exception when sqlstate 'P0004' then
    null;
  end;
  return query
  select e -> 'labels', (e ->> 'value')::double precision, (e ->> 'last_at')::timestamptz,
         coalesce(v_before ->> (e ->> 'key'), 'normal'), e ->> 'state', e ->> 'reason'
    from jsonb_array_elements(coalesce(v_after, '[]')) e;
end
$$;
comment on function vigil.rule_test(text, timestamptz) is
  'Evaluates a rule at p_now without writing or notifying anything: per instance its labels, '
  'value, when its source last sent data, its state now and the state an evaluation now '
  'would give it, with the reason.';

-- Views ----------------------------------------------------------------------------------

create or replace view vigil.alerts as
select r.name as rule, r.id as rule_id, r.source, r.severity, i.key, i.labels as instance,
       vigil.instance_text(i.labels) as instance_text, i.state, i.since, i.value, i.value_text,
       i.reason, i.last_evaluated_at, i.last_data_at, i.pending_since,
       w.withheld, coalesce(w.withheld like 'silenced%' or w.withheld like 'maintenance%', false)
         as silenced,
       coalesce(w.withheld like 'suppressed%', false) as suppressed
  from vigil.alert_instances i
  join vigil.alert_rules r on r.id = i.rule_id
 cross join lateral (select vigil._withheld(r, i.labels, now()) as withheld) w;
comment on view vigil.alerts is
  'Every alert instance with its state (normal, pending, firing), since when, its value, and '
  'whether its notifications are withheld now (silenced: a silence or maintenance window; '
  'suppressed: a firing parent rule). Order by state <> ''firing'', state <> ''pending''.';

create or replace view vigil.alert_history as
select e.id, e.at, r.name as rule, e.key, e.labels as instance,
       vigil.instance_text(e.labels) as instance_text, e.kind, e.from_state, e.to_state,
       e.value, e.value_text, e.reason, e.withheld, e.outbox_id, o.status as message_status,
       o.text as message
  from vigil.alert_events e
  join vigil.alert_rules r on r.id = e.rule_id
  left join vigil.outbox o on o.id = e.outbox_id;
comment on view vigil.alert_history is
  'Every change of every alert instance and every reminder: when, value, why, and what '
  'became of its message (sent, pending, withheld and why).';

-- Jobs -----------------------------------------------------------------------------------

select vigil._register_job('evaluate_rules', 'vigil._job_evaluate_rules', interval '1 second',
                           p_timescale_job => 'vigil.evaluate_rules_job',
                           p_timescale_every => interval '2 seconds');

create or replace function vigil.prune_alert_events(p_now timestamptz, p_config jsonb)
returns integer
language sql
as $$
  select vigil._delete_expired('vigil.alert_events', 'at', p_now,
                               coalesce((p_config ->> 'retention')::interval, '180 days'))
$$;
comment on function vigil.prune_alert_events(timestamptz, jsonb) is
  'Retention of the alert history: deletes alert events older than config.retention (default '
  '180 days); the instances and their current state stay.';

create or replace procedure vigil.prune_alert_events_job(job_id integer, config jsonb)
language plpgsql
as $$
begin
  perform vigil.prune_alert_events(now(), coalesce(config, '{}'));
end
$$;
comment on procedure vigil.prune_alert_events_job(integer, jsonb) is
  'TimescaleDB job wrapper around vigil.prune_alert_events(now(), config).';

select vigil._register_job('prune_alert_events', 'vigil.prune_alert_events', interval '1 hour',
                           '{"retention": "180 days"}',
                           p_timescale_job => 'vigil.prune_alert_events_job',
                           p_timescale_every => interval '1 hour');
