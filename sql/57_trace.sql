-- Find by request or trace id: every request record (vigil.requests) and journal line
-- (vigil.journal_lines) that carries an id, oldest first. Request records are found through
-- their partial indexes on request_id and trace_id (sql/55_requests.sql); journal lines
-- through an opt-in GIN expression index on the ids a line carries (vigil._journal_ids;
-- vigil.trace_journal_index(true) creates it), which PostgreSQL keeps up to date at ingest,
-- on every partition or chunk, and drops with them (retention). Opt-in because computing the
-- ids at insert costs most of the journal's ingest speed today. See docs/trace.md.

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
  '(vigil._trace_norm). The expression of the index journal_lines_ids_idx.';

create or replace function vigil.trace_journal_index(p_on boolean) returns boolean
language plpgsql
as $$
begin
  if p_on then
    create index if not exists journal_lines_ids_idx on vigil.journal_lines
      using gin (vigil._journal_ids(fields, message))
      where vigil._journal_ids(fields, message) is not null;
  else
    drop index if exists vigil.journal_lines_ids_idx;
  end if;
  return p_on;
end
$$;
comment on function vigil.trace_journal_index(boolean) is
  'Creates (true) or drops (false) journal_lines_ids_idx, the index that makes trace lookups '
  'of journal lines fast at scale. Off by default: with it, journal ingest is about 8 times '
  'slower today (the ids of every line are computed at insert). Without it, vigil.trace still '
  'finds journal lines, by computing the ids of every line it reads.';

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
  -- a few calls) may walk the time order and compute the ids of every line instead.
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
                                     'container', s.container, 'fields', l.fields),
                  l.id
             from vigil.journal_lines l
             join vigil.journal_sets s on s.id = l.set_id
            where vigil._journal_ids(l.fields, l.message) @> array[$2]
              and vigil._journal_ids(l.fields, l.message) is not null
            order by l.at, l.id limit $3)) u
   order by u.at, u.kind desc, u.tie
   limit $3
  $q$ using p_id, v_id, p_limit;
end
$$;
comment on function vigil.trace(text, integer) is
  'Every request record whose request_id or trace_id is p_id, and every journal line that '
  'carries p_id (vigil._journal_ids), oldest first (at most p_limit, 1 to 10000). kind: '
  '''request'' or ''journal''; service: the virtual host of a request, the unit (else the '
  'container) of a journal line; message: "METHOD path?query status" for a request, the '
  'MESSAGE of a journal line; detail: the other fields. A 32-hex id matches in any case.';
