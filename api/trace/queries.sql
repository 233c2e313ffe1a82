-- Find by request or trace id (loaded by api/trace/__init__.py); the SQL is sql/57_trace.sql.

-- name: trace
-- Request records and journal lines carrying an id, oldest first.
select kind, at, host, service, message, detail from vigil.trace(%(id)s, %(limit)s);
