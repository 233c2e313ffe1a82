-- Uptime: the services page and the go-service-healthcheck routes (loaded by
-- api/uptime/__init__.py). Removing a service: vigil/queries.sql (shared with the CLI).

-- name: services_page
-- The services page: state, uptime over 24 h / 7 d / 30 d, interval, and the response
-- times and outcomes of the last checks (oldest first, at most the given number).
select s.id, s.name, s.url, s.state, s.enabled, s.last_error, s.average_response_time_ms,
       vigil.service_uptime(s.id, interval '24 hours'),
       vigil.service_uptime(s.id, interval '7 days'),
       vigil.service_uptime(s.id, interval '30 days'),
       extract(epoch from s.check_interval), v.allow_internal, s.last_checked_at,
       s.state_changed_at, c.ms, c.ok
  from vigil.service_status s
  join vigil.services v using (id)
  left join lateral (
    select array_agg(response_ms order by at) as ms, array_agg(ok order by at) as ok
      from (select at, response_ms, ok from vigil.checks
             where service_id = s.id order by at desc limit %s) last
  ) c on true
 order by s.name;

-- name: services_page_events
-- The services page: the newest events of every service, at most the given number each.
select service_id, event, date_started, date_ended, reason
  from (select e.*, row_number() over (partition by service_id order by id desc) as n
          from vigil.service_events e) x
 where n <= %s
 order by service_id, id desc;

-- name: service_add
-- The services page's form: name, URL, interval, timeout, internal addresses allowed,
-- expected status, body substring, retries; returns the new id.
select vigil.service_add(%s, %s, %s, %s, %s, %s, %s, %s);

-- name: v1_services
-- GET /v1/services: every service with its counters and latest event, times as unix
-- seconds (go-service-healthcheck's format).
select s.id, s.name, s.url, extract(epoch from s.created_at)::bigint,
       extract(epoch from s.updated_at)::bigint,
       s.tick_count, s.up_count, s.down_count, s.average_response_time_ms, s.uptime_percent,
       s.state, e.id, e.event, extract(epoch from e.date_started)::bigint,
       extract(epoch from e.date_ended)::bigint, extract(epoch from e.created_at)::bigint,
       extract(epoch from e.updated_at)::bigint
  from vigil.service_status s
  left join lateral (select * from vigil.service_events x where x.service_id = s.id
                      order by x.id desc limit 1) e on true
 order by s.id;

-- name: v1_service_exists
-- GET /v1/services/{id}/events: whether the service exists (404 otherwise).
select 1 from vigil.services where id = %s;

-- name: v1_service_events
-- GET /v1/services/{id}/events: events newest first, before an id (null: from the newest),
-- a page size; times as unix seconds.
select e.id, e.event, extract(epoch from e.date_started)::bigint,
       extract(epoch from e.date_ended)::bigint, extract(epoch from e.created_at)::bigint,
       extract(epoch from e.updated_at)::bigint
  from vigil.service_events e
 where e.service_id = %s and (%s::bigint is null or e.id < %s::bigint)
 order by e.id desc
 limit %s;

-- name: service_get
-- A service's settings by id or name (the service page, edit in the page and the CLI):
-- id, name, URL, interval and timeout in seconds, internal allowed, expected status, body
-- substring, retries, enabled (false: paused), state, since, last check, last error.
select id, name, url, extract(epoch from check_interval)::float8,
       extract(epoch from timeout)::float8, allow_internal, expected_status, body_contains,
       retries, enabled, state, state_changed_at, last_checked_at, last_error
  from vigil.services
 where id = %(id)s or name = %(name)s
 order by id = %(id)s desc
 limit 1;

-- name: service_uptimes
-- The service page: uptime percent over 24 h, 7 d, 30 d and 90 d (null: nothing known).
select vigil.service_uptime(%(id)s, interval '24 hours'),
       vigil.service_uptime(%(id)s, interval '7 days'),
       vigil.service_uptime(%(id)s, interval '30 days'),
       vigil.service_uptime(%(id)s, interval '90 days');

-- name: service_checks
-- The service page's chart: the checks of the last given interval, oldest first, as unix
-- seconds, response milliseconds (null: no response) and ok; at most the given number
-- (the newest ones).
select extract(epoch from at)::float8, response_ms, ok
  from (select at, response_ms, ok from vigil.checks
         where service_id = %s and at > now() - %s::interval
         order by at desc limit %s) c
 order by at;

-- name: service_incidents
-- The service page: the downtimes of the last 90 days, newest first (date_ended null:
-- ongoing), at most the given number.
select date_started, date_ended, reason,
       extract(epoch from coalesce(date_ended, now()) - date_started)::float8
  from vigil.service_events
 where service_id = %s and event = 'downtime'
   and coalesce(date_ended, now()) > now() - interval '90 days'
 order by id desc
 limit %s;

-- name: service_edit
-- Edit in the page and `vigil service edit`: id, name, URL, interval, timeout, internal
-- allowed, expected status, body substring, retries; true when the service exists.
select vigil.service_edit(%s, %s, %s, %s, %s, %s, %s, %s, %s);

-- name: service_pause
-- Pause (true) or resume (false) the service of that name; true when it exists.
select vigil.service_pause(%s, %s);
