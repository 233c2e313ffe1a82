-- Log-derived metrics: journal lines and request records counted, summed or ranked per period
-- and group, written as ordinary numeric series (docs/dba.md, "Log metrics").
--
-- A metric is a row of vigil.log_metrics: a source (journal lines or request records), filters,
-- a statistic over a field, group-by properties (props), a period and a refresh rate. Its
-- values are the series named after its id, one series per group (labels = the props' values
-- as strings), one point per period bucket at the bucket's start: the charts page, /v1/metrics
-- reads and alert rules (source series, match_name = the id) read them unchanged.
--
-- One incremental engine in both modes, on purpose not continuous aggregates: a continuous
-- aggregate cannot be refreshed inside a transaction or a function
-- (refresh_continuous_aggregate), so its values could not land in vigil.points in the same
-- transaction as the refresh; a cagg per metric would also be DDL per metric and a second
-- storage with its own read path. Instead:
-- - Ingest marks what changed: vigil.journal_ingest_staged and vigil.requests_ingest_staged
--   call vigil._log_metrics_touch, which writes, for each metric of that source, the time
--   range of the stored batch per hour of `at` into vigil.log_metric_dirty (one statement;
--   nothing when the source has no metric). Writers that bypass them (the journal API's
--   direct COPY) call vigil.log_metrics_touch(source, lows, highs) in their transaction.
-- - A refresh of one metric (its row locked FOR UPDATE SKIP LOCKED) consumes its dirty rows
--   (DELETE ... RETURNING: a row of a transaction not yet committed is not visible, stays and
--   is consumed by a later refresh, so commits in any order are counted), widens them to whole
--   buckets and recomputes those buckets from the raw rows with the metric's query
--   (vigil._log_metric_query, built with format() %L/%I from the row, never concatenated
--   text); then replaces the metric's points in those buckets (delete + insert into
--   vigil.points). So late lines are counted, a re-sent batch (dedupe stores nothing) changes
--   nothing, and each value equals a GROUP BY over the raw rows.
-- - Read paths stay exact. TimescaleDB: the delete and insert on the hypertable (compressed
--   chunks included) are logged by TimescaleDB as invalidations, which the continuous
--   aggregates' readers already honour (vigil._series_dirty). Portable: the insert trigger logs
--   the new points in vigil.points_invalidations and the refresh logs the deleted ones too, so
--   the rollups recompute those buckets; a bucket of a day already packed
--   (vigil.points_packed) has its packed row taken apart first: its other points go back to
--   vigil.points (read from there until the next pack_series_points packs them again), so no
--   read (series_points, _series_last, series_averages, points_all) sees a stale or a second
--   value. The refresh holds points_packed_until FOR SHARE meanwhile (the pack job takes it
--   FOR UPDATE). A packed day whose raw points expired (prune_series, 90 days) keeps its sums.
-- - Creating a metric marks the time range of the stored rows of its source dirty (after the
--   batches being stored have committed: an advisory lock, see vigil._log_metrics_redo): its
--   first refresh computes the history. Changing its definition with UPDATE deletes its
--   series and does the same.
--
-- Exposes: tables vigil.log_metrics, vigil.log_metric_dirty; vigil.log_metric_create(),
-- log_metric_delete(), log_metrics_create_defaults(), log_metric_latest(), log_metric_meta(),
-- log_metric_refresh(), log_metrics_touch(), _log_metrics_touch(), _log_metric_query(); the
-- job refresh_log_metrics (portable) or refresh_log_metrics_job (TimescaleDB), every 5 s.

create table if not exists vigil.log_metrics (
  id              text not null,
  source          text not null,
  stat            text not null,
  field           text,
  value_regex     text,
  props           text[] not null default '{}',
  period          interval not null default interval '1 minute',
  refresh_rate    interval not null default interval '1 minute',
  filters         jsonb not null default '{}',
  description     text,
  is_default      boolean not null default false,
  created_at      timestamptz not null default now(),
  created_by      text,
  refreshed_at    timestamptz,
  next_refresh_at timestamptz not null default '-infinity',
  last_error      text,
  last_duration   interval,
  last_buckets    integer,
  constraint log_metrics_pkey primary key (id),
  constraint log_metrics_id_check check (id ~ '^[a-z][a-z0-9_]{0,62}$'),
  constraint log_metrics_source_check check (source in ('journal', 'requests')),
  constraint log_metrics_stat_check
    check (stat in ('count', 'count_distinct', 'sum', 'avg', 'min', 'max', 'p50', 'p95', 'p99')),
  constraint log_metrics_field_check check ((stat = 'count') = (field is null)),
  constraint log_metrics_period_check
    check (period between interval '1 second' and interval '1 day'
           and date_part('month', period) = 0 and date_part('year', period) = 0),
  constraint log_metrics_refresh_rate_check
    check (refresh_rate between interval '1 second' and interval '1 day'),
  constraint log_metrics_filters_check check (jsonb_typeof(filters) = 'object')
);
comment on table vigil.log_metrics is
  'Log-derived metrics (docs/dba.md, "Log metrics"): each row counts, sums or ranks journal '
  'lines or request records per period and group into the series named after its id. '
  'Create with vigil.log_metric_create(); columns refreshed_at .. last_buckets are written by '
  'the refresh; UPDATE of the definition recomputes the whole history.';
select vigil._comment_columns('vigil.log_metrics',
  'id', 'The metric''s name and the name of its series (^[a-z][a-z0-9_]{0,62}$).',
  'source', 'journal (vigil.journal_lines with their vigil.journal_sets) or requests '
            '(vigil.requests).',
  'stat', 'count, count_distinct (of field), sum, avg, min, max, p50, p95, p99 (of the numeric '
          'field; percentile_cont). Rows whose field is null (or not a number) are left out.',
  'field', 'null for count. requests: request_time, upstream_time, bytes, status, error (1 when '
           'status >= 500, else 0); journal: priority, captured (the number value_regex '
           'captures). count_distinct: any prop name.',
  'value_regex', 'journal: a regex on the message; its first capture group (or the whole match '
                 'without a group) is the field captured; only matching lines count.',
  'props', 'Group-by properties, one series per distinct combination, labels = their values as '
           'text (a null value is left out of the labels); ''{}'' = one series without labels.',
  'period', 'Bucket width (1 second .. 1 day), buckets aligned with date_bin(period, at, '
            '2000-01-01 UTC); each point is at its bucket''s start.',
  'refresh_rate', 'How often the job refreshes it (next_refresh_at = refresh time + this).',
  'filters', 'Which rows count, JSON object: host, unit, container, identifier, vhost (glob '
             'patterns, * = any), priority (lines with priority <= N), contains (substring of '
             'the message; requests: of the path), regex (POSIX regex, same), fields '
             '({KEY: VALUE}: journal field equals), status (''5xx'', an integer, or an array of '
             'both), method, path_prefix, ip (address or network: client within it).',
  'is_default', 'Created by vigil.log_metrics_create_defaults().',
  'refreshed_at', 'When it was last refreshed.',
  'next_refresh_at', 'When the job refreshes it next (set to -infinity to refresh at once).',
  'last_error', 'The error of the last refresh, null when it succeeded.',
  'last_duration', 'How long the last successful refresh took.',
  'last_buckets', 'Points written by the last successful refresh.');

create table if not exists vigil.log_metric_dirty (
  metric_id text not null,
  lo        timestamptz not null,
  hi        timestamptz not null,
  noted_at  timestamptz not null default now()
);
comment on table vigil.log_metric_dirty is
  'Time ranges of stored journal lines or request records that a log metric has not counted '
  'yet, one row per metric, batch and hour of the rows (written at ingest by '
  'vigil._log_metrics_touch, consumed by the metric''s refresh). No foreign key on purpose: '
  'ingest must not lock metric rows.';
select vigil._comment_columns('vigil.log_metric_dirty',
  'lo', 'The earliest row time of the range (included).',
  'hi', 'The latest row time of the range (included).',
  'noted_at', 'When ingest wrote it (the refresh lag is now - the oldest).');
create index if not exists log_metric_dirty_metric_idx on vigil.log_metric_dirty (metric_id);

-- ---------------------------------------------------------------------------------------
-- Dirty ranges, written at ingest

create or replace function vigil._log_metrics_touch(p_source text, p_oldest timestamptz,
                                                    p_newest timestamptz)
returns void
language plpgsql
as $$
begin
  -- Held to the commit: a metric being created waits for this batch (see
  -- vigil._log_metrics_redo), or this batch waits for it and then sees it.
  perform pg_advisory_xact_lock_shared(hashtext('vigil.log_metrics'));
  -- Next to nothing without a metric of this source: one probe of a tiny table.
  if not exists (select from vigil.log_metrics where source = p_source) then
    return;
  end if;
  if p_source = 'journal' then
    insert into vigil.log_metric_dirty (metric_id, lo, hi)
    select m.id, h.lo, h.hi
      from (select min(at) as lo, max(at) as hi from pg_temp.journal_stage
             where at between p_oldest and p_newest
             group by date_bin('1 hour', at, '2000-01-01 00:00+00')) h
     cross join vigil.log_metrics m
     where m.source = 'journal';
  else
    insert into vigil.log_metric_dirty (metric_id, lo, hi)
    select m.id, h.lo, h.hi
      from (select min(at) as lo, max(at) as hi from pg_temp.requests_stage
             where at between p_oldest and p_newest
             group by date_bin('1 hour', at, '2000-01-01 00:00+00')) h
     cross join vigil.log_metrics m
     where m.source = 'requests';
  end if;
end
$$;
comment on function vigil._log_metrics_touch(text, timestamptz, timestamptz) is
  'Called by vigil.journal_ingest_staged / requests_ingest_staged (p_source journal or '
  'requests) after they stored rows from their staging table: marks the staged rows'' time '
  'ranges within [p_oldest, p_newest], one per hour, dirty for every metric of that source. '
  'Returns at once when the source has no metric.';

drop function if exists vigil.log_metrics_touch(text, timestamptz, timestamptz);
create or replace function vigil.log_metrics_touch(p_source text, p_lo timestamptz[],
                                                   p_hi timestamptz[])
returns integer
language plpgsql
as $$
declare
  v_n integer;
begin
  if p_source is null or p_source not in ('journal', 'requests') then
    raise exception 'source must be journal or requests, not %', p_source
      using errcode = '22023';
  end if;
  if cardinality(p_lo) is distinct from cardinality(p_hi) then
    raise exception 'log_metrics_touch: % lower but % upper bounds',
      cardinality(p_lo), cardinality(p_hi) using errcode = '22023';
  end if;
  perform pg_advisory_xact_lock_shared(hashtext('vigil.log_metrics'));  -- as _log_metrics_touch
  if not exists (select from vigil.log_metrics where source = p_source) then
    return 0;
  end if;
  insert into vigil.log_metric_dirty (metric_id, lo, hi)
  select m.id, r.lo, r.hi
    from unnest(p_lo, p_hi) as r (lo, hi)
   cross join vigil.log_metrics m
   where m.source = p_source and r.lo <= r.hi;
  get diagnostics v_n = row_count;
  return v_n;
end
$$;
comment on function vigil.log_metrics_touch(text, timestamptz[], timestamptz[]) is
  'For writers that store journal lines or request records without the staged ingest '
  'functions (the journal API''s direct COPY): marks the ranges [p_lo[i], p_hi[i]] (row times, '
  'both included; e.g. one per hour of the batch) dirty for every log metric of p_source. '
  'Call it in the transaction that stores the rows. Returns the dirty rows written (0 at '
  'once when the source has no metric).';

-- ---------------------------------------------------------------------------------------
-- The query of a metric

create or replace function vigil._log_metric_number(p_text text) returns double precision
language sql immutable parallel safe
as $$
  select case when p_text ~ '^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]{1,3})?\s*$'
              then p_text::double precision end
$$;
comment on function vigil._log_metric_number(text) is
  'A decimal number in text as float8; null when the text is not one (a captured value).';

create or replace function vigil._log_metric_prop(p_source text, p_prop text) returns text
language plpgsql immutable
as $$
begin
  if p_source = 'journal' then
    return case p_prop
      when 'host' then 'l.host'
      when 'unit' then 's.unit'
      when 'container' then 's.container'
      when 'priority' then 'l.priority'
      when 'identifier' then '(s.fields ->> ''SYSLOG_IDENTIFIER'')'
      when 'message' then 'l.message'
      when '_PID' then '(coalesce(l.pid::text, l.fields ->> ''_PID''))'
      else case when p_prop ~ '^[A-Za-z0-9_]{1,64}$'
                then format('coalesce(l.fields ->> %L, s.fields ->> %L)', p_prop, p_prop) end
    end;
  end if;
  return case p_prop
    when 'host' then 'r.host'
    when 'vhost' then 'r.vhost'
    when 'ip' then 'host(r.ip)'
    when 'method' then 'r.method'
    when 'status' then 'r.status'
    when 'status_class' then '((r.status / 100) || ''xx'')'
    when 'route' then 'vigil.request_route(r.path)'
    when 'path' then 'r.path'
    when 'user_agent' then 'r.user_agent'
  end;
end
$$;
comment on function vigil._log_metric_prop(text, text) is
  'The SQL expression of a group-by property (or a count_distinct field) of a source over '
  'its rows (journal: l = journal_lines, s = journal_sets; requests: r); null when unknown.';

create or replace function vigil._log_metric_query(p_m vigil.log_metrics) returns text
language plpgsql stable
as $$
declare
  v_journal boolean := p_m.source = 'journal';
  v_at      text := case when v_journal then 'l.at' else 'r.at' end;
  v_where   text[] := '{}';
  v_groups  text[] := '{}';
  v_labels  text[] := '{}';
  v_value   text;
  v_agg     text;
  v_expr    text;
  v_key     text;
  v_val     jsonb;
  v_item    jsonb;
  v_ors     text[];
  v_prop    text;
begin
  -- Filters.
  for v_key, v_val in select * from jsonb_each(p_m.filters) loop
    if v_key in ('host', 'unit', 'container', 'identifier', 'vhost') then
      if jsonb_typeof(v_val) <> 'string' then
        raise exception 'filter %: a text pattern expected', v_key using errcode = '22023';
      end if;
      if (v_key in ('unit', 'container', 'identifier') and not v_journal)
         or (v_key = 'vhost' and v_journal) then
        raise exception 'filter % does not apply to % metrics', v_key, p_m.source
          using errcode = '22023', hint = 'journal: host, unit, container, identifier, '
            'priority, contains, regex, fields; requests: host, vhost, status, method, '
            'path_prefix, ip, contains, regex';
      end if;
      v_where := v_where || format('%s like %L', vigil._log_metric_prop(p_m.source, v_key),
                                   vigil._glob_like(v_val #>> '{}'));
    elsif v_key = 'priority' and v_journal then
      if jsonb_typeof(v_val) <> 'number' or (v_val #>> '{}')::numeric not between 0 and 7
         or (v_val #>> '{}')::numeric <> trunc((v_val #>> '{}')::numeric) then
        raise exception 'filter priority: an integer 0..7 expected' using errcode = '22023';
      end if;
      v_where := v_where || format('l.priority <= %s', (v_val #>> '{}')::integer);
    elsif v_key in ('contains', 'regex') then
      if jsonb_typeof(v_val) <> 'string' or v_val #>> '{}' = '' then
        raise exception 'filter %: a non-empty text expected', v_key using errcode = '22023';
      end if;
      v_expr := case when v_journal then 'l.message' else 'r.path' end;
      if v_key = 'contains' then
        v_where := v_where || format('strpos(%s, %L) > 0', v_expr, v_val #>> '{}');
      else
        begin
          perform '' ~ (v_val #>> '{}');
        exception when others then
          raise exception 'filter regex: %', sqlerrm using errcode = '22023';
        end;
        v_where := v_where || format('%s ~ %L', v_expr, v_val #>> '{}');
      end if;
    elsif v_key = 'fields' and v_journal then
      if jsonb_typeof(v_val) <> 'object' then
        raise exception 'filter fields: an object {FIELD: VALUE} expected'
          using errcode = '22023';
      end if;
      for v_prop, v_item in select * from jsonb_each(v_val) loop
        v_expr := vigil._log_metric_prop('journal', v_prop);
        if v_expr is null or jsonb_typeof(v_item) not in ('string', 'number') then
          raise exception 'filter fields: % must be a journal field name with a text value',
            v_prop using errcode = '22023';
        end if;
        v_where := v_where || format('%s = %L', v_expr, v_item #>> '{}');
      end loop;
    elsif v_key = 'status' and not v_journal then
      v_ors := '{}';
      for v_item in
        select case when jsonb_typeof(v_val) = 'array' then e else v_val end
          from jsonb_array_elements(case when jsonb_typeof(v_val) = 'array' then v_val
                                         else '[null]' end) e
      loop
        if jsonb_typeof(v_item) = 'string' and v_item #>> '{}' ~ '^[1-9]xx$' then
          v_ors := v_ors || format('r.status between %s and %s',
                                   left(v_item #>> '{}', 1)::integer * 100,
                                   left(v_item #>> '{}', 1)::integer * 100 + 99);
        elsif jsonb_typeof(v_item) in ('number', 'string')
              and v_item #>> '{}' ~ '^[1-9][0-9]{2}$' then
          v_ors := v_ors || format('r.status = %s', (v_item #>> '{}')::integer);
        else
          raise exception 'filter status: ''5xx'', a status or an array of them expected, '
            'not %', v_item using errcode = '22023';
        end if;
      end loop;
      if cardinality(v_ors) = 0 then
        raise exception 'filter status: an empty array' using errcode = '22023';
      end if;
      v_where := v_where || ('(' || array_to_string(v_ors, ' or ') || ')');
    elsif v_key = 'method' and not v_journal then
      if jsonb_typeof(v_val) <> 'string' then
        raise exception 'filter method: a text expected' using errcode = '22023';
      end if;
      v_where := v_where || format('r.method = %L', upper(v_val #>> '{}'));
    elsif v_key = 'path_prefix' and not v_journal then
      if jsonb_typeof(v_val) <> 'string' then
        raise exception 'filter path_prefix: a text expected' using errcode = '22023';
      end if;
      v_where := v_where || format('r.path like %L', vigil._like_escape(v_val #>> '{}') || '%');
    elsif v_key = 'ip' and not v_journal then
      begin
        v_expr := (v_val #>> '{}')::inet::text;
      exception when others then
        raise exception 'filter ip: an address or network expected, not %', v_val
          using errcode = '22023';
      end;
      v_where := v_where || format('r.ip <<= %L::inet', v_expr);
    else
      raise exception 'unknown filter % for % metrics', v_key, p_m.source
        using errcode = '22023', hint = 'journal: host, unit, container, identifier, priority, '
          'contains, regex, fields; requests: host, vhost, status, method, path_prefix, ip, '
          'contains, regex';
    end if;
  end loop;
  -- The value.
  if p_m.value_regex is not null then
    if not v_journal then
      raise exception 'value_regex applies to journal metrics only' using errcode = '22023';
    end if;
    begin
      perform '' ~ p_m.value_regex;
    exception when others then
      raise exception 'value_regex: %', sqlerrm using errcode = '22023';
    end;
    v_where := v_where || format('l.message ~ %L', p_m.value_regex);
  end if;
  if p_m.stat = 'count' then
    if p_m.field is not null then
      raise exception 'count takes no field' using errcode = '22023';
    end if;
    v_agg := 'count(*)';
  else
    if p_m.field is null then
      raise exception '% needs a field', p_m.stat using errcode = '22023';
    end if;
    if p_m.field = 'captured' and v_journal then
      if p_m.value_regex is null then
        raise exception 'field captured needs a value_regex' using errcode = '22023';
      end if;
      v_value := format('(regexp_match(l.message, %L))[1]', p_m.value_regex);
      if p_m.stat <> 'count_distinct' then
        v_value := format('vigil._log_metric_number(%s)', v_value);
      end if;
    elsif p_m.stat = 'count_distinct' then
      v_value := vigil._log_metric_prop(p_m.source, p_m.field);
    elsif v_journal then
      v_value := case p_m.field when 'priority' then 'l.priority' end;
    else
      v_value := case p_m.field
        when 'request_time' then 'r.request_time'
        when 'upstream_time' then 'r.upstream_time'
        when 'bytes' then 'r.bytes'
        when 'status' then 'r.status'
        when 'error' then 'case when r.status >= 500 then 1 else 0 end' end;
    end if;
    if v_value is null then
      raise exception 'unknown field % for % of % metrics', p_m.field, p_m.stat, p_m.source
        using errcode = '22023', hint = case when v_journal
          then 'journal numbers: priority, captured (with value_regex)'
          else 'requests numbers: request_time, upstream_time, bytes, status, error' end;
    end if;
    v_where := v_where || format('%s is not null', v_value);
    v_agg := case p_m.stat
      when 'count_distinct' then format('count(distinct %s)', v_value)
      when 'sum' then format('sum(%s)', v_value)
      when 'avg' then format('avg(%s)', v_value)
      when 'min' then format('min(%s)', v_value)
      when 'max' then format('max(%s)', v_value)
      else format('percentile_cont(%s) within group (order by %s)',
                  case p_m.stat when 'p50' then '0.5' when 'p95' then '0.95' else '0.99' end,
                  v_value) end;
  end if;
  -- Group by.
  if p_m.props is null or cardinality(p_m.props) > 8 then
    raise exception 'props: at most 8 properties' using errcode = '22023';
  end if;
  if (select count(distinct p) from unnest(p_m.props) p) <> cardinality(p_m.props) then
    raise exception 'props: a property is repeated' using errcode = '22023';
  end if;
  foreach v_prop in array p_m.props loop
    v_expr := vigil._log_metric_prop(p_m.source, v_prop);
    if v_expr is null or v_prop = 'message' then
      raise exception 'unknown property % for % metrics', v_prop, p_m.source
        using errcode = '22023', hint = case when v_journal
          then 'journal: host, unit, container, priority, identifier or a journal field name'
          else 'requests: host, vhost, ip, method, status, status_class, route, path, '
               'user_agent' end;
    end if;
    v_groups := v_groups || v_expr;
    v_labels := v_labels || format('%L, %s::text', v_prop, v_expr);
  end loop;
  return format(
    'select date_bin(%L::interval, %s, ''2000-01-01 00:00+00'') as bucket, %s as labels, '
    || '(%s)::double precision as value '
    || 'from %s where %s >= $1 and %s < $2%s group by 1%s',
    p_m.period, v_at,
    case when cardinality(v_labels) = 0 then '''{}''::jsonb'
         else 'jsonb_strip_nulls(jsonb_build_object(' || array_to_string(v_labels, ', ') || '))'
    end,
    v_agg,
    case when v_journal
         then 'vigil.journal_lines l join vigil.journal_sets s on s.id = l.set_id'
         else 'vigil.requests r' end,
    v_at, v_at,
    coalesce(' and ' || nullif(array_to_string(v_where, ' and '), ''), ''),
    coalesce(', ' || nullif(array_to_string(v_groups, ', '), ''), ''));
end
$$;
comment on function vigil._log_metric_query(vigil.log_metrics) is
  'The SQL a metric runs for the row times [$1, $2): one row per bucket and group (bucket, '
  'labels jsonb, value), built from the row with format() (%L, %I); raises 22023 on a bad '
  'definition (unknown filter, field or property, bad regex). vigil.log_metric_meta shows it.';

-- ---------------------------------------------------------------------------------------
-- Refresh

create or replace function vigil._log_metric_write(p_m vigil.log_metrics, p_sql text,
                                                   p_lo timestamptz, p_hi timestamptz)
returns integer
language plpgsql
as $$
declare
  v_buckets timestamptz[];
  v_labels  jsonb[];
  v_values  double precision[];
  v_ids     bigint[];
  v_pk      timestamptz;
  v_n       integer;
begin
  -- [p_lo, p_hi): whole buckets. Their values, from the raw rows.
  execute format('select array_agg(q.bucket), array_agg(q.labels), array_agg(q.value) '
                 'from (%s) q where q.value is not null', p_sql)
    into v_buckets, v_labels, v_values using p_lo, p_hi;
  if not vigil.has_timescale() then
    -- A packed day (portable) holding points of these buckets is taken apart: its points
    -- outside them go back to vigil.points (the next pack run packs them again).
    select until into v_pk from vigil.points_packed_until for share;
    if p_lo < v_pk then
      with gone as (
        delete from vigil.points_packed k
         using vigil.series s
         where s.name = p_m.id and k.series_id = s.id and k.gaps is not null
           and k.day >= date_bin('1 day', p_lo, '2000-01-01 00:00+00') and k.day < p_hi
        returning k.series_id, k.day, k.gaps, k.vals
      )
      insert into vigil.points (series_id, at, value)
      select g.series_id, u.at, u.value
        from gone g cross join lateral vigil._unpack(g.day, g.gaps, g.vals) u
       where u.at < p_lo or u.at >= p_hi
      -- A point of the same time in vigil.points is newer than the packed one (see
      -- vigil.pack_series_points) and stays.
      on conflict (series_id, at) do nothing;
    end if;
    -- The deleted points are logged like written ones: their rollup buckets are recomputed.
    with gone as (
      delete from vigil.points p
       using vigil.series s
       where s.name = p_m.id and p.series_id = s.id and p.at >= p_lo and p.at < p_hi
      returning p.series_id, p.at
    )
    insert into vigil.points_invalidations (series_id, lo, hi)
    select series_id, min(at), max(at) from gone group by series_id;
  else
    delete from vigil.points p
     using vigil.series s
     where s.name = p_m.id and p.series_id = s.id and p.at >= p_lo and p.at < p_hi;
  end if;
  if v_buckets is null then
    return 0;
  end if;
  select array_agg(x.id order by x.ord) into v_ids
    from vigil.series_ids(array_fill(p_m.id, array[cardinality(v_labels)]), v_labels) x;
  -- Two groups with the same labels give one point per bucket (the last one).
  return vigil.put_points(v_ids, v_buckets, v_values);
end
$$;
comment on function vigil._log_metric_write(vigil.log_metrics, text, timestamptz, timestamptz) is
  'Recomputes the whole buckets in [p_lo, p_hi) of one metric with its query p_sql and '
  'replaces its points there (hot and, portable, packed; rollups invalidated). Returns the '
  'points written.';

create or replace function vigil._log_metric_refresh(p_id text, p_now timestamptz)
returns integer
language plpgsql
as $$
declare
  v_m      vigil.log_metrics;
  v_start  timestamptz := clock_timestamp();
  v_origin constant timestamptz := '2000-01-01 00:00+00';
  v_sql    text;
  v_ranges tstzmultirange;
  v_range  tstzrange;
  v_step   interval;
  v_lo     timestamptz;
  v_n      integer := 0;
begin
  select * into v_m from vigil.log_metrics where id = p_id for update skip locked;
  if not found then
    return null;  -- being refreshed by another session (or gone)
  end if;
  v_sql := vigil._log_metric_query(v_m);
  -- The dirty ranges visible now, consumed, as whole buckets.
  with gone as (
    delete from vigil.log_metric_dirty where metric_id = p_id returning lo, hi
  )
  select range_agg(tstzrange(date_bin(v_m.period, lo, v_origin),
                             date_bin(v_m.period, hi, v_origin) + v_m.period))
    into v_ranges from gone;
  -- Long ranges (a new metric's history) in pieces of about a day of whole buckets.
  v_step := v_m.period * ceil(86400 / extract(epoch from v_m.period));
  for v_range in select r from unnest(coalesce(v_ranges, '{}'::tstzmultirange)) r loop
    v_lo := lower(v_range);
    while v_lo < upper(v_range) loop
      v_n := v_n + vigil._log_metric_write(v_m, v_sql, v_lo,
                                           least(v_lo + v_step, upper(v_range)));
      v_lo := v_lo + v_step;
    end loop;
  end loop;
  update vigil.log_metrics
     set refreshed_at = p_now, next_refresh_at = p_now + refresh_rate, last_error = null,
         last_duration = clock_timestamp() - v_start, last_buckets = v_n
   where id = p_id;
  return v_n;
end
$$;
comment on function vigil._log_metric_refresh(text, timestamptz) is
  'Refreshes one metric (its row locked FOR UPDATE SKIP LOCKED: null when another session '
  'is at it): consumes its dirty ranges, recomputes their whole buckets, records the refresh '
  'at p_now. Returns the points written.';

create or replace function vigil.log_metric_refresh(p_id text) returns integer
language plpgsql
as $$
declare
  v_n integer;
begin
  if not exists (select from vigil.log_metrics where id = p_id) then
    raise exception 'no log metric %', p_id using errcode = '22023';
  end if;
  v_n := vigil._log_metric_refresh(p_id, now());
  return coalesce(v_n, 0);
end
$$;
comment on function vigil.log_metric_refresh(text) is
  'Refreshes one log metric now, whatever its next_refresh_at; returns the points (buckets '
  'per group) written, 0 when another session is refreshing it.';

create or replace function vigil.refresh_log_metrics(p_now timestamptz, p_config jsonb)
returns integer
language plpgsql
as $$
declare
  v_id text;
  v_n  integer := 0;
begin
  for v_id in
    select id from vigil.log_metrics where next_refresh_at <= p_now order by next_refresh_at
  loop
    begin
      v_n := v_n + coalesce(vigil._log_metric_refresh(v_id, p_now), 0);
    exception when others then
      -- One bad metric never stops the others; its dirty ranges stay (rolled back).
      update vigil.log_metrics
         set last_error = sqlerrm, next_refresh_at = p_now + refresh_rate
       where id = v_id;
    end;
  end loop;
  return v_n;
end
$$;
comment on function vigil.refresh_log_metrics(timestamptz, jsonb) is
  'The job (every 5 seconds): refreshes each log metric whose next_refresh_at <= p_now, each '
  'in its own subtransaction (an error goes to its last_error and its next_refresh_at moves '
  'on; the others go on). Returns the points written.';

create or replace procedure vigil.refresh_log_metrics_job(job_id integer, config jsonb)
language plpgsql
as $$
begin
  perform vigil.refresh_log_metrics(now(), config);
end
$$;
comment on procedure vigil.refresh_log_metrics_job(integer, jsonb) is
  'TimescaleDB job (add_job, every 5 seconds): vigil.refresh_log_metrics(now(), config).';

select vigil._register_job('refresh_log_metrics', 'vigil.refresh_log_metrics',
                           interval '5 seconds',
                           p_timescale_job => 'vigil.refresh_log_metrics_job',
                           p_timescale_every => interval '5 seconds');

-- ---------------------------------------------------------------------------------------
-- Definition changes

create or replace function vigil._log_metrics_redo(p_id text, p_source text) returns void
language plpgsql
as $$
declare
  v_series bigint;
  v_lo     timestamptz;
  v_hi     timestamptz;
begin
  for v_series in select id from vigil.series where name = p_id loop
    perform vigil.delete_series(v_series);
  end loop;
  delete from vigil.log_metric_dirty where metric_id = p_id;
  if p_source is null then
    return;
  end if;
  -- Batches being stored now, which did not see this metric, commit first (they hold the
  -- lock shared from vigil._log_metrics_touch to their commit); later ones see it. Then the
  -- stored rows' whole time range is dirty.
  perform pg_advisory_xact_lock(hashtext('vigil.log_metrics'));
  if p_source = 'journal' then
    select min(at), max(at) into v_lo, v_hi from vigil.journal_lines;
  else
    select min(at), max(at) into v_lo, v_hi from vigil.requests;
  end if;
  if v_lo is not null then
    insert into vigil.log_metric_dirty (metric_id, lo, hi) values (p_id, v_lo, v_hi);
  end if;
end
$$;
comment on function vigil._log_metrics_redo(text, text) is
  'Deletes the series and dirty ranges of a metric and, unless p_source is null, marks the '
  'time range of every stored row of that source dirty (after the batches being stored '
  'committed): its next refresh computes every bucket again.';

create or replace function vigil._log_metrics_changed() returns trigger
language plpgsql
as $$
begin
  if tg_op = 'DELETE' then
    perform vigil._log_metrics_redo(old.id, null);
    return old;
  end if;
  if tg_op = 'UPDATE' then
    if new.id <> old.id then
      raise exception 'a log metric cannot be renamed' using errcode = '22023',
        hint = 'create one under the new id and delete the old one';
    end if;
    if (new.source, new.stat, new.field, new.value_regex, new.props, new.period, new.filters)
       is not distinct from
       (old.source, old.stat, old.field, old.value_regex, old.props, old.period, old.filters)
    then
      return new;  -- the refresh's own columns, the refresh rate, the description
    end if;
    new.next_refresh_at := '-infinity';
  end if;
  perform vigil._log_metric_query(new);  -- refuses a bad definition
  perform vigil._log_metrics_redo(new.id, new.source);
  return new;
end
$$;
comment on function vigil._log_metrics_changed() is
  'Trigger on vigil.log_metrics: a new metric, or a changed definition (UPDATE of source, '
  'stat, field, value_regex, props, period or filters), is checked and computed again from '
  'the retained raw rows by its next refresh; a deleted one loses its series.';

drop trigger if exists log_metrics_changed on vigil.log_metrics;
create trigger log_metrics_changed before insert or update or delete on vigil.log_metrics
  for each row execute function vigil._log_metrics_changed();

-- ---------------------------------------------------------------------------------------
-- API

create or replace function vigil.log_metric_create(
  p_id text, p_source text, p_stat text, p_field text, p_props text[], p_period interval,
  p_refresh_rate interval, p_filters jsonb, p_value_regex text default null,
  p_description text default null, p_created_by text default null)
returns setof vigil.log_metrics
language plpgsql
as $$
begin
  if p_id is null or p_id !~ '^[a-z][a-z0-9_]{0,62}$' then
    raise exception 'metric id must match ^[a-z][a-z0-9_]{0,62}$, not %', p_id
      using errcode = '22023';
  end if;
  if exists (select from vigil.log_metrics where id = p_id) then
    raise exception 'log metric % exists', p_id using errcode = '22023',
      hint = 'delete it first (vigil.log_metric_delete), or tune it with UPDATE';
  end if;
  if exists (select from vigil.series where name = p_id) then
    raise exception 'a series named % exists already', p_id using errcode = '22023',
      hint = 'a log metric writes the series named after its id: choose another id';
  end if;
  if p_source is null or p_source not in ('journal', 'requests') then
    raise exception 'source must be journal or requests, not %', p_source
      using errcode = '22023';
  end if;
  if p_stat is null or p_stat not in ('count', 'count_distinct', 'sum', 'avg', 'min', 'max',
                                      'p50', 'p95', 'p99') then
    raise exception 'stat must be count, count_distinct, sum, avg, min, max, p50, p95 or p99, '
      'not %', p_stat using errcode = '22023';
  end if;
  if p_period is null or p_period < interval '1 second' or p_period > interval '1 day'
     or date_part('month', p_period) <> 0 or date_part('year', p_period) <> 0 then
    raise exception 'period must be between 1 second and 1 day, not %', p_period
      using errcode = '22023';
  end if;
  if p_refresh_rate is not null
     and (p_refresh_rate < interval '1 second' or p_refresh_rate > interval '1 day') then
    raise exception 'refresh rate must be between 1 second and 1 day, not %', p_refresh_rate
      using errcode = '22023';
  end if;
  if p_filters is not null and jsonb_typeof(p_filters) <> 'object' then
    raise exception 'filters must be a JSON object' using errcode = '22023';
  end if;
  -- The trigger checks the rest (vigil._log_metric_query) and marks the history dirty.
  return query
  insert into vigil.log_metrics (id, source, stat, field, value_regex, props, period,
                                 refresh_rate, filters, description, created_by)
  values (p_id, p_source, p_stat, case when p_stat = 'count' then null else p_field end,
          nullif(p_value_regex, ''), coalesce(p_props, '{}'), p_period,
          coalesce(p_refresh_rate, least(p_period, interval '1 minute')),
          coalesce(p_filters, '{}'), p_description, p_created_by)
  returning *;
end
$$;
comment on function vigil.log_metric_create(text, text, text, text, text[], interval, interval,
                                            jsonb, text, text, text) is
  'Creates a log metric (see vigil.log_metrics for each argument; p_field is ignored for '
  'count; p_refresh_rate null = the period, at most 1 minute) and returns its row. Refuses '
  'bad input with SQLSTATE 22023, also an id used by a metric or an ordinary series. Its first '
  'refresh computes every bucket of the retained raw rows.';

create or replace function vigil.log_metric_delete(p_id text) returns boolean
language plpgsql
as $$
begin
  delete from vigil.log_metrics where id = p_id;
  return found;
end
$$;
comment on function vigil.log_metric_delete(text) is
  'Deletes a log metric with its series and points; false when there was none.';

create or replace function vigil.log_metrics_create_defaults(p_created_by text default null)
returns setof text
language plpgsql
as $$
declare
  v_def record;
begin
  for v_def in
    select * from (values
      ('log_lines', 'journal', 'count', array['host'], '{}'::jsonb,
       'Journal lines per host per minute.'),
      ('log_errors', 'journal', 'count', array['unit'], '{"priority": 3}',
       'Journal lines of priority error or worse (<= 3) per unit per minute.'),
      ('totaltraffic', 'requests', 'count', '{}'::text[], '{}',
       'Requests per minute, all hosts (alert rule totaltraffic: more than 1000 in a minute).'),
      ('http_5xx', 'requests', 'count', array['route'], '{"status": "5xx"}',
       'Responses 5xx per route per minute.'),
      ('sshd_auth_failures', 'journal', 'count', array['host'],
       '{"contains": "authentication failure", "identifier": "sshd*"}',
       'sshd authentication failures per host per minute.')
    ) as d (id, source, stat, props, filters, description)
  loop
    if not exists (select from vigil.log_metrics where id = v_def.id)
       and not exists (select from vigil.series where name = v_def.id) then
      insert into vigil.log_metrics (id, source, stat, props, period, refresh_rate, filters,
                                     description, is_default, created_by)
      values (v_def.id, v_def.source, v_def.stat, v_def.props, interval '1 minute',
              interval '10 seconds', v_def.filters, v_def.description, true, p_created_by);
      return next v_def.id;
    end if;
  end loop;
  insert into vigil.alert_rules (name, source, match_name, agg, agg_window, op, threshold,
                                 description, created_by)
  values ('totaltraffic', 'series', 'totaltraffic', 'max', interval '2 minutes', '>', 1000,
          'More than 1000 requests in a minute (log metric totaltraffic).', p_created_by)
  on conflict (name) do nothing;
end
$$;
comment on function vigil.log_metrics_create_defaults(text) is
  'Creates the default log metrics that do not exist yet (log_lines, log_errors, totaltraffic, '
  'http_5xx, sshd_auth_failures; 1-minute buckets refreshed every 10 s) and the alert rule '
  'totaltraffic (max over 2 min > 1000) unless a rule of that name exists; returns the ids '
  'of the metrics it created.';

create or replace function vigil.log_metric_latest(p_id text, p_limit integer default 20)
returns table (at timestamptz, groups jsonb, value double precision)
language plpgsql stable
as $$
begin
  if not exists (select from vigil.log_metrics m where m.id = p_id) then
    raise exception 'no log metric %', p_id using errcode = '22023';
  end if;
  if p_limit is null or p_limit not between 1 and 10000 then
    raise exception 'limit must be between 1 and 10000' using errcode = '22023';
  end if;
  return query
  select x.at, x.labels, x.value
    from vigil.series s
   cross join lateral (
     (select p.at, s.labels, p.value from vigil.points p
       where p.series_id = s.id order by p.at desc limit p_limit)
     union all
     (select u.at, s.labels, u.value
        from (select k.day, k.gaps, k.vals from vigil.points_packed k
               where k.series_id = s.id and k.gaps is not null
               order by k.day desc limit 1) k
       cross join lateral vigil._unpack(k.day, k.gaps, k.vals) u
       order by u.at desc limit p_limit)) x
   where s.name = p_id
   order by x.at desc, x.labels::text
   limit p_limit;
end
$$;
comment on function vigil.log_metric_latest(text, integer) is
  'The newest points of a log metric, newest first (at most p_limit): the bucket start, its '
  'group (the series labels) and the value.';

create or replace function vigil.log_metric_meta(p_id text) returns jsonb
language plpgsql stable
as $$
declare
  v_m   vigil.log_metrics;
  v_sql text;
begin
  select * into v_m from vigil.log_metrics where id = p_id;
  if not found then
    raise exception 'no log metric %', p_id using errcode = '22023';
  end if;
  begin
    v_sql := vigil._log_metric_query(v_m);
  exception when others then
    v_sql := null;
  end;
  return to_jsonb(v_m) || jsonb_build_object(
    'sql', v_sql,
    'series', (select count(*) from vigil.series where name = p_id),
    'dirty_ranges', (select count(*) from vigil.log_metric_dirty where metric_id = p_id),
    'lag', (select extract(epoch from now() - min(noted_at))
              from vigil.log_metric_dirty where metric_id = p_id),
    'last_duration_ms', round(extract(epoch from v_m.last_duration) * 1000, 3));
end
$$;
comment on function vigil.log_metric_meta(text) is
  'A log metric''s definition and state as JSON: its columns, the SQL it runs (sql; $1, $2: '
  'the time range), the number of its series, the dirty ranges waiting and the lag (seconds '
  'since the oldest of them was written; null when none waits), last_duration_ms.';
