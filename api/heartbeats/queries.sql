-- Heartbeat and disk metrics: ingest and the dashboard (loaded by api/heartbeats/__init__.py).

-- name: ingest_metrics
-- POST /metric, a batch of reports as parallel arrays (host, name, type, value, time);
-- per report (1-based ord) its resulting state or why it was refused.
select ord, state, error
  from vigil.ingest_metrics(%s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[]);

-- name: dashboard_metrics
-- The dashboard: every metric, alerts first, filtered by host, type and state (null: all).
select id, host, name, type, value, last_seen, deadline, state, state_changed_at, kind,
       limit_text, alerting
  from vigil.metric_overview
 where (%(host)s::text is null or host = %(host)s)
   and (%(type)s::text is null or type = %(type)s)
   and (%(state)s::text is null or state = %(state)s)
 order by alerting desc, host, name
 limit 2000;

-- name: dashboard_choices
-- The values the dashboard's filters offer: known hosts and metric types.
select array(select distinct host from vigil.metrics order by 1) as hosts,
       array(select type from vigil.rules order by 1) as types;

-- name: system_panel
-- The dashboard's system panel: mode, detector heartbeat, outbox backlog and dead letters.
select mode, mode_reason, detector_finished_at, detector_age_seconds as detector_age,
       detector_stalled, extract(epoch from detector_stall_after)::float8 as stall_after,
       outbox_backlog as backlog, dead_letters as dead, undelivered_unconfigured as unconfigured
  from vigil.system_status;

-- name: metric
-- One metric's page, by id.
select id, host, name, type, value, last_seen, deadline, state, state_changed_at, kind,
       limit_text, alerting
  from vigil.metric_overview where id = %s;

-- name: metric_transitions
-- A metric's state changes with their message and its delivery, newest first.
select at, from_state, to_state, value, reason, message, message_status, delivery, attempts
  from vigil.metric_transitions where metric_id = %s order by at desc, id desc limit 500;

-- name: metric_delete
-- Deletes a metric with its history; true when it existed.
select vigil.metric_delete(%s);

-- name: metric_schedule
-- What a metric's reports are judged by on its page: the rule's default ping interval and,
-- for a push check, its period and grace (cron checks: no fixed interval).
select r.op is null as deadline_rule,
       extract(epoch from r.no_data_after)::float8 as default_allowed,
       extract(epoch from c.period + c.grace)::float8 as check_allowed,
       c.cron is not null as cron, c.id is not null as push_check
  from vigil.metrics m
  join vigil.alert_rules r on r.metric_type = m.type
  left join vigil.push_checks c on c.metric_id = m.id
 where m.id = %s;

-- name: metric_reports
-- A page of a metric's reports, newest first, before a time (keyset; null: the newest).
-- One row more than shown: the report before the oldest shown gives its gap.
select at, value
  from vigil.metric_history
 where metric_id = %(id)s and (%(before)s::timestamptz is null or at < %(before)s)
 order by at desc
 limit %(limit)s;

-- name: metric_values
-- A metric's reports since a time for its chart, newest first (capped; the page says so).
select at, value
  from vigil.metric_history
 where metric_id = %(id)s and at >= %(since)s
 order by at desc
 limit %(limit)s;
