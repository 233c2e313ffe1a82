-- Find by request or trace id: every request record (vigil.requests) and journal line
-- (vigil.journal_lines) that carries an id, oldest first. Request records are found through
-- their partial indexes on request_id and trace_id (sql/55_requests.sql); journal lines
-- through their ids column, filled once at ingest (the API extracts the ids while it parses
-- the line, api/journal/ids.py; vigil.journal_ingest computes them with vigil._journal_ids),
-- and its partial GIN index journal_lines_ids_idx, which PostgreSQL keeps on every partition
-- or chunk and drops with them (retention). See docs/trace.md.

-- Lines stored before this column existed have no ids until vigil.trace_journal_backfill.
alter table vigil.journal_lines add column if not exists ids text[];
select vigil._comment_columns('vigil.journal_lines',
  'ids', 'The request and trace ids the line carries (vigil._journal_ids), null when none: '
         'filled at ingest, searched by vigil.trace through journal_lines_ids_idx.');

create or replace function vigil._trace_norm(p_id text) returns text
language sql immutable parallel safe
as $$
  select case when p_id ~ '^[0-9A-Fa-f]{32}$' then lower(p_id) else p_id end
$$;
comment on function vigil._trace_norm(text) is
  'An id as indexed: a 32-hex-digit trace id in lowercase, any other id as it is.';

create or replace function vigil._journal_ids(p_fields jsonb, p_message text) returns text[]
language sql immutable parallel safe
as $$
  select nullif(array(
    select distinct vigil._trace_norm(x)
      from (select case when jsonb_typeof(p_fields -> k) = 'string' then p_fields ->> k end
              from unnest(array['TRACE_ID', 'REQUEST_ID', 'trace_id', 'request_id']) k
            union all
            select (regexp_match(p_fields ->> k,
                                 '^\s*[0-9a-fA-F]{2}-([0-9a-fA-F]{32})-[0-9a-fA-F]{16}-'))[1]
              from unnest(array['traceparent', 'TRACEPARENT']) k
             where jsonb_typeof(p_fields -> k) = 'string'
            union all
            select m[1]
              from regexp_matches(left(p_message, 8192),
                                  '(?:^|[^0-9A-Za-z])([0-9a-fA-F]{32})(?![0-9A-Za-z])', 'g') m
           ) ids(x)
     where x is not null and length(x) between 1 and 200), '{}')
$$;
comment on function vigil._journal_ids(jsonb, text) is
  'The request and trace ids a journal line carries (null when none): the string fields '
  'TRACE_ID, REQUEST_ID, trace_id and request_id (1 to 200 characters), the trace id of a '
  'W3C traceparent field, and every 32-hex-digit word in the first 8 KiB of the message '
  '(e.g. trace_id=4bf92f3577b34da6a3ce929d0e0e4736). Trace ids in lowercase '
  '(vigil._trace_norm). What vigil.journal_lines.ids holds; the API computes the same in '
  'Python (api/journal/ids.py) while parsing.';

create or replace function vigil.trace_journal_index(p_on boolean) returns boolean
language plpgsql
as $$
begin
  if p_on then
    if to_regclass('vigil.journal_lines_ids_idx') is null then
      -- dynamic: TimescaleDB (2.23) fails on a cached "create index if not exists" here
      -- fastupdate off: a lookup would otherwise scan each partition's list of pending
      -- entries (up to 4 MB each); ids are mostly new, so the list saves ingest little.
      execute 'create index journal_lines_ids_idx on vigil.journal_lines using gin (ids)'
              ' with (fastupdate = off) where ids is not null';
    end if;
  else
    drop index if exists vigil.journal_lines_ids_idx;
  end if;
  return p_on;
end
$$;
comment on function vigil.trace_journal_index(boolean) is
  'Creates (true) or drops (false) journal_lines_ids_idx, the partial GIN index on the ids '
  'of journal lines that makes trace lookups of journal lines fast. On by default (a '
  'migration creates it again); it costs ingest little, since the ids are extracted once '
  'before the insert and lines without ids are not in it.';

-- The index of earlier versions was on the expression vigil._journal_ids(fields, message),
-- which computed the ids of every line at insert, twice: replaced by the index on ids.
do $$
begin
  if exists (select from pg_indexes
              where schemaname = 'vigil' and indexname = 'journal_lines_ids_idx'
                and strpos(indexdef, '_journal_ids(') > 0) then
    drop index vigil.journal_lines_ids_idx;
  end if;
  perform vigil.trace_journal_index(true);
end $$;

create or replace function vigil.trace_journal_backfill(p_from timestamptz, p_to timestamptz)
returns bigint
language plpgsql
as $$
declare
  v_n bigint;
begin
  if p_from is null or p_to is null or p_from >= p_to then
    raise exception 'a time range p_from < p_to is needed' using errcode = '22023';
  end if;
  update vigil.journal_lines l set ids = vigil._journal_ids(l.fields, l.message)
   where l.at >= p_from and l.at < p_to and l.ids is null
     and vigil._journal_ids(l.fields, l.message) is not null;
  get diagnostics v_n = row_count;
  return v_n;
end
$$;
comment on function vigil.trace_journal_backfill(timestamptz, timestamptz) is
  'Fills the ids of journal lines in [p_from, p_to) that have none (lines stored before the '
  'ids column existed, or inserted by hand without it), so vigil.trace finds them; returns '
  'the number of lines updated. A one-off after upgrading: run it a day at a time.';

create or replace function vigil.trace(p_id text, p_limit integer default 1000)
returns table (kind text, at timestamptz, host text, service text, message text,
               detail jsonb)
language plpgsql stable
as $$
declare
  v_id constant text := vigil._trace_norm(p_id);
begin
  if p_id is null or length(p_id) not between 1 and 200 then
    raise exception 'an id is 1 to 200 characters' using errcode = '22023';
  end if;
  if p_limit is null or p_limit not between 1 and 10000 then
    raise exception 'limit must be between 1 and 10000' using errcode = '22023';
  end if;
  -- Dynamic SQL: planned for this id every time. A generic plan (what PL/pgSQL uses after
  -- a few calls) may walk the time order of every line instead of probing the indexes.
  return query execute $q$
  select u.kind, u.at, u.host, u.service, u.message, u.detail
    from ((select 'request'::text as kind, r.at, r.host, r.vhost as service,
                  concat_ws(' ', r.method, r.path || coalesce('?' || r.query, ''),
                            r.status::text) as message,
                  jsonb_build_object(
                    'ip', host(r.ip), 'vhost', r.vhost, 'method', r.method, 'path', r.path,
                    'query', r.query, 'protocol', r.protocol, 'status', r.status,
                    'bytes', r.bytes, 'referrer', r.referrer, 'user_agent', r.user_agent,
                    'request_time', r.request_time, 'upstream_time', r.upstream_time,
                    'request_id', r.request_id, 'trace_id', r.trace_id) as detail,
                  r.key::bigint as tie
             from vigil.requests r
            where r.request_id = $1 or r.request_id = $2 or r.trace_id = $2
            order by r.at, r.key limit $3)
          union all
          (select 'journal', l.at, l.host, coalesce(s.unit, s.container), l.message,
                  jsonb_build_object('priority', l.priority, 'unit', s.unit,
                                     'container', s.container,
                                     'fields', coalesce(l.fields, '{}')
                                               || case when l.pid is not null
                                                       then jsonb_build_object('_PID',
                                                                               l.pid::text)
                                                       else '{}' end),
                  l.id
             from vigil.journal_lines l
             join vigil.journal_sets s on s.id = l.set_id
            where l.ids @> array[$2]
            order by l.at, l.id limit $3)) u
   order by u.at, u.kind desc, u.tie
   limit $3
  $q$ using p_id, v_id, p_limit;
end
$$;
comment on function vigil.trace(text, integer) is
  'Every request record whose request_id or trace_id is p_id, and every journal line that '
  'carries p_id (vigil.journal_lines.ids), oldest first (at most p_limit, 1 to 10000). kind: '
  '''request'' or ''journal''; service: the virtual host of a request, the unit (else the '
  'container) of a journal line; message: "METHOD path?query status" for a request, the '
  'MESSAGE of a journal line; detail: the other fields. A 32-hex id matches in any case.';
