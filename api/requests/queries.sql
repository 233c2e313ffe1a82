-- Request records: storage and reads (loaded by api/requests/__init__.py). The COPY takes
-- binary rows in the column order of api/requests/store.py's COLUMNS.

-- name: requests_bounds
-- Which request times ingest stores, and the retention as text.
select oldest, newest, retention::text from vigil.requests_bounds();

-- name: requests_stage
-- Creates this session's staging table pg_temp.requests_stage (emptied at commit).
select vigil.requests_stage();

-- name: requests_stage_copy
-- Binary COPY of a batch into the staging table (after requests_stage).
copy pg_temp.requests_stage (at, key, host, vhost, ip, method, path, query, protocol, status,
                             bytes, referrer, user_agent, remote_user, request, request_time,
                             upstream_time, request_id, trace_id)
  from stdin (format binary);

-- name: requests_ingest_staged
-- Stores the staged records (dedupe, partitions, retention); the counts of each outcome.
select accepted, duplicated, expired, future from vigil.requests_ingest_staged();

-- name: requests_ingest_json
-- Where the server has no COPY FROM STDIN: the records as a JSON array.
select accepted, duplicated, expired, future from vigil.requests_ingest(%s::jsonb);

-- name: requests_search
-- One page, newest first, with filters and the keyset cursor (after at/key).
select at, key, host, vhost, ip, method, path, query, protocol, status, bytes, referrer,
       user_agent, remote_user, request, request_time, upstream_time, request_id, trace_id
  from vigil.requests_search(
    p_from => %(from)s, p_to => %(to)s, p_host => %(host)s,
    p_status_min => %(status_min)s, p_status_max => %(status_max)s,
    p_method => %(method)s, p_path => %(path)s, p_ip => %(ip)s::cidr,
    p_after_at => %(after_at)s, p_after_key => %(after_key)s, p_limit => %(limit)s);
