-- The queries of `vigil rules|alerts|silence|maintenance` (loaded by
-- vigil/cli/alerting/__init__.py). The engine itself is SQL: sql/15_alerts.sql, 80_rules.sql.

-- name: rule_list
-- Every rule (name null) or the rule of that name, with its numbers of firing and pending
-- instances, built-in rules first (next_eval_at: null until first evaluated; it starts as
-- -infinity).
select r.id, r.name, r.source, r.builtin, r.metric_type, r.match_host, r.match_name,
       r.match_type, r.match_labels, r.agg, r.agg_window, r.op, r.threshold, r.recover_op,
       r.recover_threshold, r.for_duration, r.keep_firing_for, r.no_data, r.no_data_after,
       r.severity, r.labels, r.repeat_interval, r.group_wait, r.alert_template,
       r.ok_template, r.depends_on, r.depends_on_labels, r.rule_group, r.eval_interval,
       r.enabled, r.description, r.created_by, r.created_at, r.updated_at,
       case when isfinite(r.next_eval_at) then r.next_eval_at end as next_eval_at,
       (select count(*) from vigil.alert_instances i
         where i.rule_id = r.id and i.state = 'firing') as firing,
       (select count(*) from vigil.alert_instances i
         where i.rule_id = r.id and i.state = 'pending') as pending
  from vigil.alert_rules r
 where %(name)s::text is null or r.name = %(name)s
 order by r.builtin desc, r.name;

-- name: rule_exists
-- Whether a rule of that name exists (depends_on names one).
select exists (select from vigil.alert_rules where name = %s);

-- name: rule_lock
-- One rule by name, locked until the end of the transaction (add and edit write it next):
-- its tunable columns, as rule_write sets them.
select name, builtin, source, match_host, match_name, match_type, match_labels, agg,
       agg_window, op, threshold, recover_op, recover_threshold, for_duration,
       keep_firing_for, no_data, no_data_after, severity, repeat_interval, group_wait,
       alert_template, ok_template, depends_on, depends_on_labels, rule_group,
       eval_interval, enabled, description
  from vigil.alert_rules where name = %s for update;

-- name: rule_insert
-- `vigil rules add`, first step: the row with what the constraints tie together (source,
-- series name, aggregate, condition); every other column takes its default and rule_write
-- then sets the options given, in the same transaction.
insert into vigil.alert_rules (name, source, match_name, agg, op, threshold, created_by)
values (%(name)s, %(source)s, %(match_name)s, %(agg)s, %(op)s, %(threshold)s,
        coalesce(%(created_by)s::text, current_user));

-- name: rule_write
-- `vigil rules add|edit`: every tunable column of one rule (the row read by rule_lock with
-- the options given applied); updated_at and next_eval_at follow by trigger.
update vigil.alert_rules
   set source = %(source)s, match_host = %(match_host)s, match_name = %(match_name)s,
       match_type = %(match_type)s, match_labels = %(match_labels)s, agg = %(agg)s,
       agg_window = %(agg_window)s, op = %(op)s, threshold = %(threshold)s,
       recover_op = %(recover_op)s, recover_threshold = %(recover_threshold)s,
       for_duration = %(for_duration)s, keep_firing_for = %(keep_firing_for)s,
       no_data = %(no_data)s, no_data_after = %(no_data_after)s, severity = %(severity)s,
       repeat_interval = %(repeat_interval)s, group_wait = %(group_wait)s,
       alert_template = %(alert_template)s, ok_template = %(ok_template)s,
       depends_on = %(depends_on)s, depends_on_labels = %(depends_on_labels)s,
       rule_group = %(rule_group)s, eval_interval = %(eval_interval)s, enabled = %(enabled)s,
       description = %(description)s
 where name = %(name)s;

-- name: rule_set_enabled
-- `vigil rules enable|disable`; one row when the rule exists.
update vigil.alert_rules set enabled = %(enabled)s where name = %(name)s returning name;

-- name: rule_delete
-- `vigil rules delete`: the rule with its instances and history (a built-in rule raises
-- 42501); one row when it existed.
delete from vigil.alert_rules where name = %(name)s returning name;

-- name: rule_test
-- `vigil rules test`: the rule evaluated now, rolled back (nothing written, nobody told).
select instance, vigil.instance_text(instance) as instance_text, value, last_at, state,
       would_be, reason
  from vigil.rule_test(%s, now());

-- name: alert_list
-- `vigil alerts`, `vigil rules show` and `vigil alerts observe`: instances (of one rule, or
-- null: all) that are firing or pending, plus - with recent - those that changed in the
-- last day, or - with all - every one; firing first, then pending, newest change first. Its
-- columns, in order, are the fields of `--json`.
select a.rule, a.instance, a.instance_text, a.state, a.since, a.value, a.value_text,
       a.silenced, a.suppressed, a.withheld, a.reason, a.severity, a.source, a.key,
       a.last_evaluated_at, a.last_data_at
  from vigil.alerts a
 where (%(rule)s::text is null or a.rule = %(rule)s)
   and (%(all)s or a.state <> 'normal' or (%(recent)s and a.since > now() - interval '1 day'))
 order by a.state <> 'firing', a.state <> 'pending', a.since desc, a.rule, a.key;

-- name: alert_history
-- `vigil alerts history`: the newest changes and reminders (of one rule, or null: all); its
-- columns, in order, are the fields of `--json`.
select h.id, h.at, h.rule, h.instance, h.instance_text, h.kind, h.from_state, h.to_state,
       h.value, h.value_text, h.reason, h.withheld, h.outbox_id, h.message_status, h.message
  from vigil.alert_history h
 where %(rule)s::text is null or h.rule = %(rule)s
 order by h.at desc, h.id desc
 limit %(limit)s;

-- name: silence_add
-- `vigil silence add`: rule pattern (null: all), label matchers, duration, comment, author
-- (null: the database user), start (null: now); returns the id.
select vigil.silence_add(%s, %s, %s, %s, %s, coalesce(%s::timestamptz, now()));

-- name: silence_list
-- `vigil silence list`: active and upcoming silences (all: expired ones too) with their
-- state now: active first, then upcoming, then expired; by start. Its columns, in order,
-- are the fields of `--json`.
select s.id,
       case when s.starts_at > now() then 'upcoming'
            when s.ends_at > now() then 'active' else 'expired' end as state,
       s.rule_pattern as rule, s.matchers as labels, s.starts_at, s.ends_at, s.comment,
       s.author, s.created_at
  from vigil.silences s
 where %(all)s or s.ends_at > now()
 order by s.ends_at <= now(), s.starts_at > now(), s.starts_at, s.id;

-- name: silence_expire
-- `vigil silence expire`: ends the silence now; true when it was active or upcoming.
select vigil.silence_expire(%(id)s, now());

-- name: maintenance_add
-- `vigil maintenance add`: name, rule pattern, label matchers, ISO weekdays (null: every
-- day), start and end (wall clock), time zone, comment, author (null: the database user).
insert into vigil.maintenance_windows (name, rule_pattern, matchers, days, starts, ends,
                                       time_zone, comment, author)
values (%s, %s, %s, %s, %s, %s, %s, %s, coalesce(%s::text, current_user))
returning id;

-- name: maintenance_list
-- `vigil maintenance list`: every window, and whether it is open now.
select w.id, w.name, w.rule_pattern, w.matchers, w.days, w.starts, w.ends, w.time_zone,
       w.valid_from, w.valid_until, w.comment, w.author, w.created_at,
       vigil.maintenance_active(w, now()) as open_now
  from vigil.maintenance_windows w
 order by w.name;

-- name: maintenance_delete
-- `vigil maintenance delete`; one row when the window existed.
delete from vigil.maintenance_windows where name = %(name)s returning id;
