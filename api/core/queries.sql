-- The API's own queries (loaded by api/core/__init__.py).

-- name: health
-- GET /health: the database mode and why, the detector's heartbeat age in seconds (null
-- before its first run), undelivered messages and dead letters.
select mode, mode_reason, detector_age_seconds, outbox_backlog, dead_letters
  from vigil.system_status;
