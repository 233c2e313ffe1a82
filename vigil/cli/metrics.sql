-- The queries of `vigil metrics` (loaded by vigil/cli/metrics.py). The log metrics themselves
-- are SQL: sql/62_log_metrics.sql (table vigil.log_metrics and its functions).

-- name: metric_list
-- `vigil metrics list`: every log metric, by id; its columns, in order, are the fields of
-- `--json` (next_refresh_at: null for "at once", -infinity in the table).
select m.id, m.source, m.stat, m.field, m.value_regex, m.props, m.period, m.refresh_rate,
       m.filters, m.description, m.is_default, m.created_by, m.created_at, m.refreshed_at,
       case when isfinite(m.next_refresh_at) then m.next_refresh_at end as next_refresh_at,
       m.last_duration, m.last_error
  from vigil.log_metrics m
 order by m.id;

-- name: metric_one
-- One log metric by id, with the columns of metric_list (create prints it).
select m.id, m.source, m.stat, m.field, m.value_regex, m.props, m.period, m.refresh_rate,
       m.filters, m.description, m.is_default, m.created_by, m.created_at, m.refreshed_at,
       case when isfinite(m.next_refresh_at) then m.next_refresh_at end as next_refresh_at,
       m.last_duration, m.last_error
  from vigil.log_metrics m
 where m.id = %s;

-- name: metric_exists
-- Whether a log metric of that id exists.
select exists (select from vigil.log_metrics where id = %s);

-- name: metric_create
-- `vigil metrics create -id ...`: the new metric (the database checks every value and
-- refuses with 22023); returns its id.
select id
  from vigil.log_metric_create(%(id)s, %(source)s, %(stat)s, %(field)s, %(props)s::text[],
                               %(period)s::interval, %(refresh_rate)s::interval,
                               %(filters)s::jsonb, %(value_regex)s, %(description)s,
                               coalesce(%(created_by)s::text, current_user));

-- name: metric_defaults
-- `vigil metrics create --default`: the default metrics (and the totaltraffic rule) not
-- created yet; the ids newly created.
select id from vigil.log_metrics_create_defaults(coalesce(%s::text, current_user)) as id;

-- name: metric_latest
-- `vigil metrics get ID`: the newest observations, newest first (time, group values, value).
select at, groups, value from vigil.log_metric_latest(%s, %s);

-- name: metric_meta
-- `vigil metrics meta ID`: the definition, the SQL it runs and how its refreshes go (jsonb).
select vigil.log_metric_meta(%s);

-- name: metric_delete
-- `vigil metrics delete ID`: the metric and its series; true when it existed.
select vigil.log_metric_delete(%s);

-- name: metric_refresh
-- `vigil metrics refresh ID`: refreshes it now; the number of buckets written.
select vigil.log_metric_refresh(%s);

-- name: metric_rules
-- The alert rules that watch a metric's series (meta shows them).
select name from vigil.alert_rules where source = 'series' and match_name = %s order by name;
