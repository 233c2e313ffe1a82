-- Alerts that were open before the alert-rule engine: when a database is upgraded to the
-- engine (revision 0004), metrics in alert, services down and stalled jobs become firing
-- instances of their built-in rules, so that their recovery is announced ("OK again")
-- like any other. Idempotent: an instance that exists is left alone, and a database
-- created with the engine has nothing to add.
-- Exposes: nothing (data only).

insert into vigil.alert_instances (rule_id, key, labels, state, since, value, value_text,
                                   reason, last_data_at, last_evaluated_at, last_notified_at,
                                   message, outbox_key)
select r.id, 'metric:' || m.id, jsonb_build_object('host', m.host, 'name', m.name, 'type', m.type),
       'firing', m.state_changed_at, vigil._to_float(vigil._parse_number(m.value)), m.value,
       'open before the alert-rule engine', m.last_seen, m.state_changed_at, m.state_changed_at,
       vigil.render_message('alert', m.host, m.name, m.value), 'metric:' || m.id
  from vigil.metrics m
  join vigil.alert_rules r on r.metric_type = m.type
 where m.state = 'alert'
on conflict (rule_id, key) do nothing;

insert into vigil.alert_instances (rule_id, key, labels, state, since, value, value_text,
                                   reason, last_data_at, last_evaluated_at, last_notified_at,
                                   message, outbox_key)
select r.id, 'service:' || s.id, vigil._service_labels(s), 'firing', s.state_changed_at, 0,
       s.state, coalesce(s.last_error, 'down'), s.last_checked_at, s.last_checked_at,
       s.state_changed_at,
       'Alert: ' || s.name || ' - down (' || coalesce(s.last_error, 'down') || ')',
       'service:' || s.id
  from vigil.services s
  join vigil.alert_rules r on r.name = 'uptime'
 where s.state = 'down'
on conflict (rule_id, key) do nothing;

insert into vigil.alert_instances (rule_id, key, labels, state, since, value_text, reason,
                                   last_data_at, last_evaluated_at, last_notified_at, message,
                                   outbox_key)
select r.id, 'job:' || h.job, jsonb_build_object('job', h.job), 'firing',
       coalesce(h.last_finished_at, now()), vigil._utc(h.last_finished_at),
       'no run finished for ' || h.stall_after, h.last_finished_at, now(), now(),
       'Alert: Vigil job ' || h.job || ' has not run since ' || vigil._utc(h.last_finished_at),
       'vigil'
  from vigil.job_heartbeats h
  join vigil.alert_rules r on r.name = 'vigil-jobs'
 where h.stalled
on conflict (rule_id, key) do nothing;
