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

-- name: requests_search_route
-- The same with a route (vigil.request_route) and/or an exact user agent (sql/56_routes.sql).
select at, key, host, vhost, ip, method, path, query, protocol, status, bytes, referrer,
       user_agent, remote_user, request, request_time, upstream_time, request_id, trace_id
  from vigil.requests_search_route(
    p_route => %(route)s, p_user_agent => %(agent)s,
    p_from => %(from)s, p_to => %(to)s, p_host => %(host)s,
    p_status_min => %(status_min)s, p_status_max => %(status_max)s,
    p_method => %(method)s, p_path => %(path)s, p_ip => %(ip)s::cidr,
    p_after_at => %(after_at)s, p_after_key => %(after_key)s, p_limit => %(limit)s);

-- The Requests overview (api/requests/overview.py): one query per panel over the records of
-- [from, to) (the (at) index; host: the logging host or the virtual host; null = any).

-- name: overview_traffic
-- Requests, 5xx and 4xx per time bucket (date_bin on whole UTC steps), oldest first.
select date_bin(%(step)s::interval, at, timestamptz '2000-01-01 00:00:00+00') as bucket,
       count(*) as requests,
       count(*) filter (where status >= 500) as s5xx,
       count(*) filter (where status between 400 and 499) as s4xx
  from vigil.requests
 where at >= %(from)s and at < %(to)s
   and (%(host)s::text is null or host = %(host)s or vhost = %(host)s)
 group by 1
 order by 1;

-- name: overview_statuses
-- Requests and bytes per status.
select status, count(*) as requests, coalesce(sum(bytes), 0) as bytes
  from vigil.requests
 where at >= %(from)s and at < %(to)s
   and (%(host)s::text is null or host = %(host)s or vhost = %(host)s)
 group by status
 order by status;

-- name: overview_routes
-- The busiest routes: requests, 5xx, 4xx, bytes, latency percentiles (of the records that
-- logged a request time) and the slowest record with a trace or request id. Aggregated per
-- path first (a hash aggregate), the route computed once per distinct path (the regexes cost
-- a few µs), then summed per route; the percentiles sort only the timed records of the top
-- routes, and are skipped (no second scan) when none is timed. Records whose request line did
-- not split (no path) are the null route.
with by_path as (
  select path,
         count(*) as n,
         count(*) filter (where status >= 500) as s5xx,
         count(*) filter (where status between 400 and 499) as s4xx,
         coalesce(sum(bytes), 0) as bytes,
         count(request_time) as timed,
         -- the slowest traced record: its time as a sortable text, then its id
         max(to_char(coalesce(request_time, 0), 'FM0000000000.000000')
             || coalesce(trace_id, request_id))
           filter (where coalesce(trace_id, request_id) is not null) as slowest
    from vigil.requests
   where at >= %(from)s and at < %(to)s
     and (%(host)s::text is null or host = %(host)s or vhost = %(host)s)
   group by path
), routed as materialized (
  select vigil.request_route(path) as route, by_path.* from by_path
), top as materialized (
  select route, sum(n)::bigint as requests, sum(s5xx)::bigint as s5xx,
         sum(s4xx)::bigint as s4xx, sum(bytes)::bigint as bytes, sum(timed)::bigint as timed,
         substr(max(slowest), 18) as slowest_id
    from routed
   group by route
   order by sum(n) desc, route
   limit %(limit)s
), latency as (
  select rt.route,
         percentile_cont(array[0.5, 0.95, 0.99]) within group (order by q.request_time) as p
    from vigil.requests q
    join routed rt on rt.path = q.path
   where q.at >= %(from)s and q.at < %(to)s
     and (%(host)s::text is null or q.host = %(host)s or q.vhost = %(host)s)
     and q.request_time is not null
     and rt.route in (select route from top where timed > 0)
     and exists (select from top where timed > 0)
   group by rt.route
)
select t.route, t.requests, t.s5xx, t.s4xx, t.bytes, t.timed, l.p as latency, t.slowest_id
  from top t
  left join latency l on l.route = t.route
 order by t.requests desc, t.route;

-- name: overview_ips
-- The busiest client addresses: requests, 5xx, 4xx, bytes.
select ip, count(*) as requests,
       count(*) filter (where status >= 500) as s5xx,
       count(*) filter (where status between 400 and 499) as s4xx,
       coalesce(sum(bytes), 0) as bytes
  from vigil.requests
 where at >= %(from)s and at < %(to)s
   and (%(host)s::text is null or host = %(host)s or vhost = %(host)s)
 group by ip
 order by count(*) desc, ip
 limit %(limit)s;

-- name: overview_agents
-- The commonest user agents (null: none sent): requests, 5xx, 4xx.
select user_agent, count(*) as requests,
       count(*) filter (where status >= 500) as s5xx,
       count(*) filter (where status between 400 and 499) as s4xx
  from vigil.requests
 where at >= %(from)s and at < %(to)s
   and (%(host)s::text is null or host = %(host)s or vhost = %(host)s)
 group by user_agent
 order by count(*) desc, user_agent
 limit %(limit)s;
