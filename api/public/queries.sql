-- Public status pages and badges (loaded by api/public/__init__.py); the CLI's queries are
-- in vigil/cli/public.py's own file next to it.

-- name: badge_read
-- A badge: label, state, uptime 24 h / 7 d / 30 d; no row for an unknown key.
select label, state, uptime_24h, uptime_7d, uptime_30d from vigil.badge_read(%s);

-- name: status_page_read
-- A status page's items in order: title, position, label, detail, state, uptime
-- 24 h / 7 d / 30 d / 90 d; no row for an unknown slug.
select title, item, label, detail, state, uptime_24h, uptime_7d, uptime_30d, uptime_90d
  from vigil.status_page_read(%s);

-- name: status_page_days
-- A status page's 90 daily uptime bars per item, oldest first.
select item, day, uptime from vigil.status_page_days(%s, 90);

-- name: status_page_incidents
-- A status page's incidents of the last 90 days, newest first.
select item, label, started, ended, state, detail,
       extract(epoch from coalesce(ended, now()) - started)
  from vigil.status_page_incidents(%s, 90);
