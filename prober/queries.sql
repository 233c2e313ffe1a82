-- The prober (loaded by prober/__init__.py).

-- name: claim_checks
-- Claims due services for this prober (how many, as of when: null for the database's now()).
select id, url, timeout_seconds, allow_internal, body_contains, name
  from vigil.claim_checks(%s, coalesce(%s::timestamptz, now()));

-- name: record_check
-- Stores one check (service id, time, status, response ms, error, body matched); returns
-- the service's resulting state.
select vigil.record_check(%s, %s, %s, %s, %s, %s);
