-- Alerts, rules and silences: the operator pages (loaded by api/alerts/__init__.py). The
-- engine is sql/15_alerts.sql and sql/80_rules.sql; these queries only read its views and
-- write its tables.

-- name: alerts_open
-- The alerts page: firing, then pending instances (critical first, newest first), with the
-- reason their notifications are withheld now and whether their rule is enabled (a disabled
-- rule's instances keep their last state); optional rule and state filters.
select a.rule, a.source, a.severity, a.key, a.instance, a.instance_text, a.state, a.since,
       a.value, a.value_text, a.reason, a.withheld, a.silenced, a.suppressed,
       a.last_evaluated_at, r.enabled
  from vigil.alerts a
  join vigil.alert_rules r on r.id = a.rule_id
 where a.state <> 'normal'
   and (%(rule)s::text is null or a.rule = %(rule)s::text)
   and (%(state)s::text is null or a.state = %(state)s::text)
 order by a.state <> 'firing',
          case a.severity when 'critical' then 0 when 'warning' then 1 else 2 end,
          a.since desc, a.rule, a.key;

-- name: alerts_normal
-- The alerts page: instances in state normal, the most recently changed first (recently
-- resolved ones on top), at most the given number; optional rule and state filters.
select a.rule, a.source, a.severity, a.key, a.instance, a.instance_text, a.state, a.since,
       a.value, a.value_text, a.reason, a.withheld, a.silenced, a.suppressed,
       a.last_evaluated_at, r.enabled
  from vigil.alerts a
  join vigil.alert_rules r on r.id = a.rule_id
 where a.state = 'normal'
   and (%(rule)s::text is null or a.rule = %(rule)s::text)
   and (%(state)s::text is null or a.state = %(state)s::text)
 order by a.since desc, a.rule, a.key
 limit %(limit)s;

-- name: alerts_history
-- The alerts page: the newest alert events (changes and reminders) with what became of their
-- messages, at most the given number; optional rule filter and state (the state changed to).
select id, at, rule, key, instance, instance_text, kind, from_state, to_state, value,
       value_text, reason, withheld, message_status, message
  from vigil.alert_history
 where (%(rule)s::text is null or rule = %(rule)s::text)
   and (%(state)s::text is null or to_state = %(state)s::text)
 order by at desc, id desc
 limit %(limit)s;

-- name: alert_rule_names
-- Every rule name, for the filters, the depends-on choice and the silence form.
select name from vigil.alert_rules order by name;

-- name: rules_list
-- The rules page: every rule with its condition columns and how many of its instances are
-- firing and pending now; built-in rules first, then by name.
select r.name, r.source, r.builtin, r.enabled, r.severity, r.description, r.match_host,
       r.match_name, r.match_type, r.match_labels, r.agg, r.agg_window, r.op, r.threshold,
       r.recover_op, r.recover_threshold, r.for_duration, r.keep_firing_for, r.no_data,
       r.no_data_after, r.repeat_interval, r.depends_on,
       coalesce(c.firing, 0) as firing, coalesce(c.pending, 0) as pending
  from vigil.alert_rules r
  left join lateral (
    select count(*) filter (where i.state = 'firing') as firing,
           count(*) filter (where i.state = 'pending') as pending
      from vigil.alert_instances i
     where i.rule_id = r.id and i.state <> 'normal'
  ) c on true
 order by not r.builtin, r.name;

-- name: rule_get
-- The rule form: every column an operator edits, of the rule with that name.
select name, description, source, builtin, metric_type, match_host, match_name, match_type,
       match_labels, agg, agg_window, op, threshold, recover_op, recover_threshold,
       for_duration, keep_firing_for, no_data, no_data_after, severity, labels,
       repeat_interval, group_wait, alert_template, ok_template, depends_on, depends_on_labels,
       rule_group, eval_interval, enabled
  from vigil.alert_rules
 where name = %s;

-- name: rule_insert
-- The rule form: a new rule (never built in); returns its name.
insert into vigil.alert_rules (
  name, description, source, match_host, match_name, match_type, match_labels, agg,
  agg_window, op, threshold, recover_op, recover_threshold, for_duration, keep_firing_for,
  no_data, no_data_after, severity, labels, repeat_interval, group_wait, alert_template,
  ok_template, depends_on, depends_on_labels, rule_group, eval_interval, enabled, created_by)
values (
  %(name)s, %(description)s, %(source)s, %(match_host)s, %(match_name)s, %(match_type)s,
  %(match_labels)s, %(agg)s, %(agg_window)s, %(op)s, %(threshold)s, %(recover_op)s,
  %(recover_threshold)s, %(for_duration)s, %(keep_firing_for)s, %(no_data)s,
  %(no_data_after)s, %(severity)s, %(labels)s, %(repeat_interval)s, %(group_wait)s,
  %(alert_template)s, %(ok_template)s, %(depends_on)s, %(depends_on_labels)s, %(rule_group)s,
  %(eval_interval)s, %(enabled)s, %(author)s)
returning name;

-- name: rule_update
-- The rule form: the new values of the rule named original (for a built-in rule the page
-- passes its name, source and matchers unchanged); returns its (new) name.
update vigil.alert_rules
   set name = %(name)s, description = %(description)s, source = %(source)s,
       match_host = %(match_host)s, match_name = %(match_name)s, match_type = %(match_type)s,
       match_labels = %(match_labels)s, agg = %(agg)s, agg_window = %(agg_window)s,
       op = %(op)s, threshold = %(threshold)s, recover_op = %(recover_op)s,
       recover_threshold = %(recover_threshold)s, for_duration = %(for_duration)s,
       keep_firing_for = %(keep_firing_for)s, no_data = %(no_data)s,
       no_data_after = %(no_data_after)s, severity = %(severity)s, labels = %(labels)s,
       repeat_interval = %(repeat_interval)s, group_wait = %(group_wait)s,
       alert_template = %(alert_template)s, ok_template = %(ok_template)s,
       depends_on = %(depends_on)s, depends_on_labels = %(depends_on_labels)s,
       rule_group = %(rule_group)s, eval_interval = %(eval_interval)s, enabled = %(enabled)s
 where name = %(original)s
returning name;

-- name: rule_preview
-- The rule form's preview: what vigil.rule_test says of every instance of the rule now
-- (nothing is written or sent), with the instance as people read it.
select t.instance, vigil.instance_text(t.instance), t.value, t.last_at, t.state, t.would_be,
       t.reason
  from vigil.rule_test(%s, now()) t;

-- name: rule_set_enabled
-- Enables (true) or disables (false) the rule with that name; returns its name.
update vigil.alert_rules set enabled = %s where name = %s returning name;

-- name: rule_delete
-- Deletes the rule with that name unless it is built in (its instances and history go with
-- it); returns its name.
delete from vigil.alert_rules where name = %s and not builtin returning name;

-- name: silences_current
-- The silences page: active and upcoming silences, by start, with the number of alert
-- instances they match now.
select s.id, s.rule_pattern, s.matchers, s.starts_at, s.ends_at, s.comment, s.author,
       s.created_at, s.starts_at <= now() as active,
       (select count(*) from vigil.alert_instances i
          join vigil.alert_rules r on r.id = i.rule_id
         where vigil._matches(r.name, s.rule_pattern) and i.labels @> s.matchers) as matching
  from vigil.silences s
 where s.ends_at > now()
 order by s.starts_at, s.id;

-- name: silences_expired
-- The silences page: the silences that have ended, the most recent first, at most the given
-- number.
select s.id, s.rule_pattern, s.matchers, s.starts_at, s.ends_at, s.comment, s.author,
       s.created_at
  from vigil.silences s
 where s.ends_at <= now()
 order by s.ends_at desc, s.id desc
 limit %s;

-- name: silence_add
-- The silence form: rule pattern (null = every rule), label matchers, a duration or else an
-- end time, comment, author (the operator); returns the new silence's id.
select vigil.silence_add(%(rule)s, %(matchers)s,
                         coalesce(%(for)s::interval, %(until)s::timestamptz - now()),
                         %(comment)s, %(author)s);

-- name: silence_expire
-- Ends an active or upcoming silence now; true when there was one.
select coalesce(vigil.silence_expire(%s), false);
