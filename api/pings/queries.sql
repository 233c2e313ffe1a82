-- Push checks: what the ping routes and `vigil check` run (sql/30_heartbeats.sql).

-- name: push_check_find
-- The check whose secret has this SHA-256: id, name, cron, tz.
select id, name, cron, tz from vigil.push_check_find(%s);

-- name: push_check_by_slug
-- The check of a slug URL (ping key hash, slug, create?): id, name, cron, tz, created.
select id, name, cron, tz, created from vigil.push_check_by_slug(%s, %s, %s);

-- name: push_ping
-- Records one ping; returns the check's state and the run's duration (no row: check gone).
select state, duration
  from vigil.push_ping(%(check_id)s, %(kind)s, %(exit_status)s, %(rid)s, %(body)s,
                       %(next_cron)s, %(source)s, %(response_ms)s, %(method)s,
                       %(remote_addr)s, %(user_agent)s);

-- name: push_check_add
-- Creates a check (name, secret hash, period, grace, cron, tz); returns its id.
select vigil.push_check_add(%s, %s, %s, %s, %s, %s);

-- name: push_check_delete
-- Deletes a check with its metric and pings; true when it existed.
select coalesce(vigil.push_check_delete(%s), false);

-- name: push_check_list
-- Every check for `vigil check list`, by name.
select name, status, period, grace, cron, tz, last_ping_at, last_kind, last_duration,
       started_at, deadline, n_pings
  from vigil.push_check_overview
 order by name;

-- name: ping_key_set
-- Makes the key with this SHA-256 the ping key of slug URLs (the old one stops working).
select vigil.ping_key_set(%s);
