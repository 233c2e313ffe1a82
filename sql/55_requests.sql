-- Web access logs: request records, dedupe, retention, compression and search.
--
-- One row per request a web server logged (Apache/nginx common, combined, nginx JSON;
-- parsed by vigil/accesslog.py, stored by api/requests/store.py). Dedupe: (at, key) is
-- unique; key is 64 bits of a SHA-256 over where the line came from (the sender's file id
-- and offset, when it says) and the raw line, so a batch sent again stores nothing twice
-- while identical requests in the same second at different places of a file are all kept.
--
-- TimescaleDB mode: vigil.requests is a hypertable (1-day chunks), compressed after 2 days
-- (segmentby host, orderby at desc) and dropped after 14 days by policies.
-- Portable mode: vigil.requests is partitioned by UTC day; the job requests_maintenance
-- creates upcoming partitions and drops expired ones (config.retention, 14 days).
--
-- Exposes: table vigil.requests, type vigil.request_counts; vigil.requests_stage(),
-- requests_ingest_staged(), requests_ingest(), requests_search(), requests_bounds(),
-- requests_retention(), requests_ensure_partition(), requests_maintenance().

-- ---------------------------------------------------------------------------------------
-- The table

do $$
declare
  v_columns constant text :=
    '(at            timestamptz not null,
      key           bigint not null,
      host          text,
      vhost         text,
      ip            inet not null,
      method        text,
      path          text,
      query         text,
      protocol      text,
      status        smallint not null,
      bytes         bigint,
      referrer      text,
      user_agent    text,
      remote_user   text,
      request       text,
      request_time  double precision,
      upstream_time double precision,
      request_id    text,
      trace_id      text,
      constraint requests_at_key_key unique (at, key),
      constraint requests_status_check check (status between 100 and 999))';
begin
  if to_regclass('vigil.requests') is null then
    if vigil.has_timescale() then
      execute 'create table vigil.requests ' || v_columns;
      perform create_hypertable('vigil.requests', 'at', chunk_time_interval => interval '1 day');
    else
      execute 'create table vigil.requests ' || v_columns || ' partition by range (at)';
    end if;
  end if;
end $$;

comment on table vigil.requests is
  'Web access log records: one row per request a web server logged (docs/requests.md). '
  'Partitioned by day (portable) or a hypertable (TimescaleDB); kept 14 days by default.';
select vigil._comment_columns('vigil.requests',
  'at', 'When the request was logged (the log line''s time, UTC).',
  'key', 'Dedupe key: the first 64 bits of the SHA-256 of the sender''s file id and offset '
         '(when given) and the raw line. With at, unique: a line sent again is not stored '
         'twice.',
  'host', 'The machine that logged the request (the sender''s host name).',
  'vhost', 'The virtual host (server name or Host header), when the log has it.',
  'ip', 'The client address (%h, $remote_addr).',
  'method', 'The request method; null when the request line did not split (see request).',
  'path', 'The request target before ?, as logged (not percent-decoded).',
  'query', 'The query string after ? (without it); null when there was no ?.',
  'protocol', 'HTTP/1.1, HTTP/2.0, ...',
  'status', 'The response status.',
  'bytes', 'Response body bytes (%b, $body_bytes_sent); null for -.',
  'referrer', 'The Referer header; null for -.',
  'user_agent', 'The User-Agent header; null for -.',
  'remote_user', 'The authenticated user (%u, $remote_user); null for -.',
  'request', 'The request line as logged, only when it is not METHOD target [HTTP/x] '
             '(e.g. - for a timeout, or the bytes of a TLS handshake sent to a plain port).',
  'request_time', 'Seconds the server spent on the request ($request_time), when logged.',
  'upstream_time', 'Seconds the upstreams took ($upstream_response_time, summed over the '
                   'upstreams tried), when logged.',
  'request_id', 'The request id ($request_id, X-Request-ID), when logged.',
  'trace_id', 'The W3C trace id (32 lowercase hex digits, from traceparent), when logged.');

create index if not exists requests_host_at_idx on vigil.requests (host, at);
create index if not exists requests_status_at_idx on vigil.requests (status, at);
create index if not exists requests_ip_at_idx on vigil.requests (ip, at);
create index if not exists requests_request_id_idx on vigil.requests (request_id)
  where request_id is not null;
create index if not exists requests_trace_id_idx on vigil.requests (trace_id)
  where trace_id is not null;
do $$
begin
  -- A hypertable has its (at desc) index already; a partitioned table gets one.
  if not vigil.has_timescale() then
    create index if not exists requests_at_idx on vigil.requests (at);
  end if;
end $$;

-- ---------------------------------------------------------------------------------------
-- Portable mode partitions and retention

create or replace function vigil.requests_ensure_partition(p_day date) returns boolean
language sql
as $$ select vigil._day_partition_ensure('requests', 'requests_p', 'requests_maintenance',
                                        p_day) $$;
comment on function vigil.requests_ensure_partition(date) is
  'Portable mode: creates the partition of vigil.requests for one UTC day unless it exists. '
  'Returns true when it created one. No-op in TimescaleDB mode.';

create or replace function vigil.requests_retention() returns interval
language sql stable
as $$ select vigil._retention('requests', 'requests_maintenance') $$;
comment on function vigil.requests_retention() is
  'How long request records are kept: the retention policy (TimescaleDB) or the '
  'requests_maintenance job config (portable); 14 days by default. Ingest rejects older '
  'records. Tune: update vigil.portable_jobs set config = config || ''{"retention": '
  '"30 days"}'' where job = ''requests_maintenance'' (portable), or remove_retention_policy '
  '+ add_retention_policy on vigil.requests (TimescaleDB).';

create or replace function vigil.requests_maintenance(p_now timestamptz, p_config jsonb)
returns integer
language plpgsql
as $$
declare
  v_retention interval := coalesce((p_config ->> 'retention')::interval, interval '14 days');
  v_ahead     integer  := coalesce((p_config ->> 'days_ahead')::integer, 3);
  v_part      record;
  v_n         integer;
begin
  if vigil.has_timescale() then
    return 0;
  end if;
  v_n := vigil._day_partitions_ensure('requests', 'requests_p', 'requests_maintenance', p_now,
                                      v_retention, v_ahead);
  for v_part in
    select c.relname, (substr(c.relname, 11))::date as day
      from pg_inherits i
      join pg_class c on c.oid = i.inhrelid
     where i.inhparent = 'vigil.requests'::regclass and c.relname ~ '^requests_p[0-9]{8}$'
  loop
    if (v_part.day + 1)::timestamp at time zone 'UTC' <= p_now - v_retention then
      -- Every record of this day is past the retention.
      execute format('drop table vigil.%I', v_part.relname);
      v_n := v_n + 1;
    end if;
  end loop;
  return v_n;
end
$$;
comment on function vigil.requests_maintenance(timestamptz, jsonb) is
  'Portable mode job: creates the partitions of vigil.requests for the retention window and '
  'config.days_ahead (3) days ahead, and drops partitions entirely older than '
  'config.retention (14 days). Returns the number of partitions created or dropped.';

select vigil._register_job('requests_maintenance', 'vigil.requests_maintenance',
                           interval '10 minutes', '{"retention": "14 days", "days_ahead": 3}');

-- Today's partitions exist right after migrating.
select vigil.requests_maintenance(now(), '{}');

-- ---------------------------------------------------------------------------------------
-- TimescaleDB mode: compression and retention policies

do $$
begin
  if vigil.has_timescale() then
    if not exists (select from timescaledb_information.compression_settings
                    where hypertable_schema = 'vigil' and hypertable_name = 'requests') then
      alter table vigil.requests set (timescaledb.compress,
                                      timescaledb.compress_segmentby = 'host',
                                      timescaledb.compress_orderby = 'at desc, key');
    end if;
    perform add_compression_policy('vigil.requests', interval '2 days', if_not_exists => true);
    perform add_retention_policy('vigil.requests', interval '14 days', if_not_exists => true);
  end if;
end $$;

-- ---------------------------------------------------------------------------------------
-- Ingest

create or replace function vigil.requests_bounds(
  p_now timestamptz default now(),
  out oldest timestamptz,
  out newest timestamptz,
  out retention interval)
language sql stable
as $$
  select p_now - r, p_now + interval '1 day', r from vigil.requests_retention() r
$$;
comment on function vigil.requests_bounds(timestamptz) is
  'Which request times ingest stores: from now - retention (older ones are expired) to '
  'now + 1 day (later ones are from a wrong clock).';

create or replace function vigil.requests_stage() returns void
language plpgsql
as $$
begin
  create temp table if not exists requests_stage
    (like vigil.requests including defaults) on commit delete rows;
end
$$;
comment on function vigil.requests_stage() is
  'Creates this session''s temp table pg_temp.requests_stage (the columns of vigil.requests, '
  'emptied at commit) that a batch is COPYed into before vigil.requests_ingest_staged().';

do $$
begin
  if to_regtype('vigil.request_counts') is null then
    create type vigil.request_counts as (
      accepted   integer,
      duplicated integer,
      expired    integer,
      future     integer
    );
  end if;
end $$;
comment on type vigil.request_counts is
  'What ingest did with a batch of request records: stored (accepted), already stored or '
  'repeated in the batch (duplicated), older than the retention (expired), more than 1 day '
  'ahead (future).';

create or replace function vigil.requests_ingest_staged(p_now timestamptz default now())
returns vigil.request_counts
language plpgsql
as $$
declare
  v_oldest   timestamptz;
  v_newest   timestamptz;
  v_total    integer;
  v_expired  integer;
  v_future   integer;
  v_accepted integer;
begin
  select b.oldest, b.newest into v_oldest, v_newest from vigil.requests_bounds(p_now) b;
  select w.total, w.expired, w.future into v_total, v_expired, v_future
    from vigil._stage_window('requests_stage', 'requests', 'requests_p', 'requests_maintenance',
                             v_oldest, v_newest) w;
  insert into vigil.requests
  select * from pg_temp.requests_stage
   where at between v_oldest and v_newest
  on conflict do nothing;
  get diagnostics v_accepted = row_count;
  if v_accepted > 0 then
    -- Log metrics of this source count the stored rows' time ranges again (62_log_metrics).
    perform vigil._log_metrics_touch('requests', v_oldest, v_newest);
  end if;
  truncate pg_temp.requests_stage;
  return (v_accepted, v_total - v_expired - v_future - v_accepted, v_expired, v_future);
end
$$;
comment on function vigil.requests_ingest_staged(timestamptz) is
  'Stores the records in pg_temp.requests_stage (see vigil.requests_stage) and empties it. '
  'Records older than the retention (expired) or more than 1 day ahead (future) are not '
  'stored; one already stored under its (at, key), or repeated in the batch, counts as '
  'duplicated.';

create or replace function vigil.requests_ingest(p_rows jsonb, p_now timestamptz default now())
returns vigil.request_counts
language plpgsql
as $$
begin
  perform vigil.requests_stage();
  insert into pg_temp.requests_stage
  select * from jsonb_populate_recordset(null::vigil.requests, p_rows);
  return vigil.requests_ingest_staged(p_now);
end
$$;
comment on function vigil.requests_ingest(jsonb, timestamptz) is
  'Stores a batch of request records given as a JSON array of objects with the columns of '
  'vigil.requests; same rules and counts as vigil.requests_ingest_staged. For clients that '
  'cannot COPY.';

-- ---------------------------------------------------------------------------------------
-- Search

create or replace function vigil.requests_search(
  p_from       timestamptz default null,
  p_to         timestamptz default null,
  p_host       text default null,
  p_status_min integer default null,
  p_status_max integer default null,
  p_method     text default null,
  p_path       text default null,
  p_ip         cidr default null,
  p_after_at   timestamptz default null,
  p_after_key  bigint default null,
  p_limit      integer default 100)
returns setof vigil.requests
language plpgsql stable
as $$
begin
  -- One implementation of the filters: vigil.requests_search_route (sql/56_routes.sql)
  -- without its route and user agent filters.
  return query select * from vigil.requests_search_route(null, null, p_from, p_to, p_host,
    p_status_min, p_status_max, p_method, p_path, p_ip, p_after_at, p_after_key, p_limit);
end
$$;
comment on function vigil.requests_search(timestamptz, timestamptz, text, integer, integer,
                                          text, text, cidr, timestamptz, bigint, integer) is
  'One page of request records, newest first. Filters (null = any): time range [from, to), '
  'host (the logging host or the virtual host), status range, method, path prefix, client '
  'address within a network (an address is a /32 or /128). Keyset paging: records strictly '
  'after (p_after_at, p_after_key) in that order.';
