-- The queries of the vigil library and the `vigil` command (loaded by vigil/__init__.py).
-- Sender tokens and services are shared with the pages (api/auth, api/uptime).

-- name: mode
-- The active database mode (portable | timescaledb) and why.
select mode, reason from vigil.mode;

-- name: database_exists
-- Whether the embedded cluster has a database of that name.
select 1 from pg_database where datname = %s;

-- name: token_create
-- Stores a new sender token by its hash (name, SHA-256); 23505 when the name is active.
select vigil.token_create(%s, %s);

-- name: token_revoke
-- Revokes the active token of that name; true when there was one.
select vigil.token_revoke(%s);

-- name: token_list
-- Tokens without their hashes: active first, by name, newest first; a limit (null: all).
select id, name, created_at, last_used_at, revoked_at
  from vigil.tokens order by revoked_at is not null, name, id desc limit %s;

-- name: token_active
-- Whether the active token of that name has that hash (the kept quickstart token); no
-- last-used mark, unlike vigil.token_check.
select exists (select from vigil.api_tokens
                where name = %s and token_hash = %s and revoked_at is null);

-- name: user_add
-- Allows an email to sign in; true when it was new.
select vigil.user_add(%s);

-- name: user_remove
-- Removes an operator and ends their sessions; true when they existed.
select vigil.user_remove(%s);

-- name: user_first
-- The oldest operator, whom `vigil run` prints a login link for.
select email from vigil.users order by created_at, email limit 1;

-- name: user_list
-- Operators with when they were added, their last login and their open sessions.
select u.email, u.created_at, u.last_login_at, count(s.id_hash)
  from vigil.users u left join vigil.sessions s
    on s.email = u.email and s.expires_at > now()
 group by u.email order by u.email;

-- name: login_link_create
-- A one-time login link (email, SHA-256 of the token, lifetime); 42501 when not allowed.
select vigil.login_link_create(%s, %s, %s);

-- name: service_add
-- `vigil service add`: name, URL, interval, timeout, internal addresses allowed, expected
-- status, required body text, retries; returns the new id.
select vigil.service_add(%s, %s, %s, %s, %s, %s, %s, %s);

-- name: service_remove
-- Removes the service of that name with its checks and events; true when it existed.
select vigil.service_remove(%s);

-- name: service_list
-- `vigil service list`: state, uptime, average response time, interval, URL, last error.
select s.id, s.name, s.state, s.uptime_percent, s.average_response_time_ms,
       extract(epoch from s.check_interval), s.enabled, v.url, v.allow_internal,
       v.last_error from vigil.service_status s join vigil.services v using (id)
 order by s.name;

-- name: maintenance_jobs
-- The maintenance jobs of the active mode: name, TimescaleDB job id, every, enabled, due now.
select job, job_id, schedule_interval, enabled, due from vigil.maintenance_jobs();

-- name: run_maintenance_job
-- Portable mode: runs one maintenance job now; null on success, else its error.
select vigil.run_maintenance_job(%s);
