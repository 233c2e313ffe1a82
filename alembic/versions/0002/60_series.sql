-- Numeric time series (the metrics-server API, docs/compatibility.md): any named series
-- with labels, averages per minute, hour and day.
--
-- Storage: vigil.series (one row per (name, labels)) and vigil.points (series_id, at, value).
-- Aggregates per tier have the same name and columns in both modes:
--   vigil.points_minute / points_hour / points_day (series_id, bucket, n, total, min_value, max_value)
-- TimescaleDB mode: points is a hypertable and the tiers are continuous aggregates with refresh
--   and retention policies, real-time (materialized_only = false).
-- Portable mode: the tiers are tables maintained by the portable job refresh_series_rollups,
--   which materializes whole buckets up to a watermark per tier and re-computes buckets that
--   received late points (an invalidation log written by a statement trigger on points);
--   vigil.series_averages adds the raw points after the watermark (the newest, partial bucket),
--   the same "real-time aggregation" the continuous aggregates do.
--
-- Exposes: tables vigil.series and vigil.points, the tiers points_minute/hour/day;
-- vigil.series_ids(), add_point(), delete_series(), series_averages(), series_search();
-- the jobs refresh_series_rollups and prune_series (portable) or continuous aggregate and
-- retention policies (TimescaleDB).

create table if not exists vigil.series (
  id         bigint generated always as identity,
  name       text not null,
  labels     jsonb not null default '{}',
  created_at timestamptz not null default now(),
  constraint series_pkey primary key (id),
  constraint series_name_labels_key unique (name, labels),
  constraint series_name_check check (length(name) between 1 and 255),
  constraint series_labels_check check (jsonb_typeof(labels) = 'object')
);
comment on table vigil.series is
  'One numeric time series per (name, labels), e.g. (cpu_usage_idle, {"host": "web-1"}). '
  'Created on first write by vigil.series_ids().';
comment on column vigil.series.labels is
  'Label set as a JSON object of strings (Influx tags); part of the identity of the series.';
create index if not exists series_labels_idx on vigil.series using gin (labels);

create table if not exists vigil.points (
  series_id bigint not null,
  at        timestamptz not null,
  value     double precision not null
);
comment on table vigil.points is
  'Raw points of vigil.series. A hypertable in TimescaleDB mode. No foreign key to series, '
  'on purpose: batch ingest writes with COPY at full speed; vigil.delete_series removes both.';
create index if not exists points_series_at_idx on vigil.points (series_id, at);

-- Portable-mode rollup tables (in TimescaleDB mode the same names are continuous aggregates).
do $$
declare
  v_tier text;
begin
  if not vigil.has_timescale() then
    foreach v_tier in array array['minute', 'hour', 'day'] loop
      execute format(
        'create table if not exists vigil.%I (
           series_id bigint not null,
           bucket    timestamptz not null,
           n         bigint not null,
           total     double precision not null,
           min_value double precision not null,
           max_value double precision not null,
           constraint %I primary key (series_id, bucket))',
        'points_' || v_tier, 'points_' || v_tier || '_pkey');
      execute format(
        'comment on table vigil.%I is %L', 'points_' || v_tier,
        'Rollup of vigil.points per ' || v_tier || ' and series (portable mode): count, sum, '
        || 'min and max of the values in each whole bucket up to the watermark in '
        || 'vigil.series_watermarks; maintained by vigil.refresh_series_rollups.');
      execute format('comment on column vigil.%I.total is %L', 'points_' || v_tier,
                     'Sum of the values; avg = total / n, also across buckets and series.');
    end loop;
  end if;
end $$;

create table if not exists vigil.series_watermarks (
  tier                text primary key,
  materialized_until  timestamptz not null default '-infinity',
  constraint series_watermarks_tier_check check (tier in ('minute', 'hour', 'day'))
);
comment on table vigil.series_watermarks is
  'Portable mode: per tier, the rollup table holds every whole bucket before '
  'materialized_until; vigil.series_averages reads raw points from there on.';
insert into vigil.series_watermarks (tier) values ('minute'), ('hour'), ('day')
on conflict (tier) do nothing;

create table if not exists vigil.points_invalidations (
  series_id bigint not null,
  lo        timestamptz not null,
  hi        timestamptz not null
);
comment on table vigil.points_invalidations is
  'Portable mode: time range of points written per series and statement, so that '
  'vigil.refresh_series_rollups re-computes buckets that received late points (consumed by '
  'it); until then vigil.series_averages reads those buckets from the raw points.';

create or replace function vigil._points_invalidate() returns trigger
language plpgsql
as $$
begin
  insert into vigil.points_invalidations (series_id, lo, hi)
  select series_id, min(at), max(at) from new_points group by series_id;
  return null;
end
$$;
comment on function vigil._points_invalidate() is
  'Statement trigger on vigil.points (portable mode): logs the time range written per series.';

do $$
begin
  if not vigil.has_timescale() then
    drop trigger if exists points_invalidate on vigil.points;
    create trigger points_invalidate after insert on vigil.points
      referencing new table as new_points
      for each statement execute function vigil._points_invalidate();
  end if;
end $$;

-- Series identity ------------------------------------------------------------------------

create or replace function vigil.series_ids(p_names text[], p_labels jsonb[])
returns table (ord bigint, id bigint)
language plpgsql
as $$
begin
  if cardinality(p_names) <> cardinality(p_labels) then
    raise exception 'series_ids: % names but % label sets',
      cardinality(p_names), cardinality(p_labels)
      using errcode = '22023', hint = 'pass one label set per name';
  end if;
  insert into vigil.series (name, labels)
  select distinct n, coalesce(l, '{}') from unnest(p_names, p_labels) as u (n, l)
  order by 1, 2
  on conflict on constraint series_name_labels_key do nothing;
  return query
  select u.ord, s.id
    from unnest(p_names, p_labels) with ordinality as u (n, l, ord)
    join vigil.series s on s.name = u.n and s.labels = coalesce(u.l, '{}')
   order by u.ord;
end
$$;
comment on function vigil.series_ids(text[], jsonb[]) is
  'Ids of the series (p_names[i], p_labels[i]), created when new; one row per input position '
  '(ord, 1-based). Batch ingest calls it once per batch before COPYing the points.';

create or replace function vigil.add_point(p_name text, p_value double precision,
                                           p_at timestamptz default now(),
                                           p_labels jsonb default '{}')
returns bigint
language plpgsql
as $$
declare
  v_id bigint;
begin
  if p_value is null or p_value in ('NaN', 'Infinity', '-Infinity') then
    raise exception 'value must be a finite number' using errcode = '22023';
  end if;
  select s.id into v_id from vigil.series_ids(array[p_name], array[p_labels]) s;
  insert into vigil.points (series_id, at, value) values (v_id, coalesce(p_at, now()), p_value);
  return v_id;
end
$$;
comment on function vigil.add_point(text, double precision, timestamptz, jsonb) is
  'Stores one point (POST /v1/metrics); returns the series id. Batches use COPY instead.';

create or replace function vigil.delete_series(p_series_id bigint) returns bigint
language plpgsql
as $$
declare
  v_n bigint;
begin
  delete from vigil.points where series_id = p_series_id;
  get diagnostics v_n = row_count;
  if not vigil.has_timescale() then
    delete from vigil.points_minute where series_id = p_series_id;
    delete from vigil.points_hour where series_id = p_series_id;
    delete from vigil.points_day where series_id = p_series_id;
  end if;
  delete from vigil.series where id = p_series_id;
  return v_n;
end
$$;
comment on function vigil.delete_series(bigint) is
  'Deletes a series with its points and (portable mode) rollups; returns the points deleted. '
  'In TimescaleDB mode the aggregates drop its buckets at their next refresh.';

-- Portable rollups -----------------------------------------------------------------------

create or replace function vigil._rollup_tier(p_tier text, p_ranges jsonb, p_now timestamptz)
returns integer
language plpgsql
as $$
declare
  v_step  interval := ('1 ' || p_tier)::interval;
  v_table text := 'points_' || p_tier;
  v_old   timestamptz;
  v_new   timestamptz;
  v_agg   text;
  v_src   text;
  v_n     integer := 0;
  v_k     integer;
begin
  select materialized_until into v_old from vigil.series_watermarks where tier = p_tier
     for update;
  v_new := greatest(v_old, date_trunc(p_tier, p_now, 'UTC'));
  -- Source of a tier: raw points for minutes, the finer rollup for hours and days.
  if p_tier = 'minute' then
    v_agg := 'select p.series_id, date_trunc(''minute'', p.at, ''UTC''), count(*), '
             || 'sum(p.value), min(p.value), max(p.value) from vigil.points p';
    v_src := 'p.at';
  else
    v_agg := format('select p.series_id, date_trunc(%L, p.bucket, ''UTC''), sum(p.n)::bigint, '
                    || 'sum(p.total), min(p.min_value), max(p.max_value) from vigil.%I p',
                    p_tier, case p_tier when 'hour' then 'points_minute' else 'points_hour' end);
    v_src := 'p.bucket';
  end if;
  -- 1. Buckets before the old watermark that received points since the last run
  --    (one range per series in p_ranges).
  execute format(
    'with r as (select series_id, date_trunc(%L, lo, ''UTC'') as lo,
                       least(date_trunc(%L, hi, ''UTC'') + %L::interval, $2) as hi
                  from jsonb_to_recordset($1) as x (series_id bigint, lo timestamptz,
                                                    hi timestamptz)
                 where x.lo < $2)
     delete from vigil.%I t using r
      where t.series_id = r.series_id and t.bucket >= r.lo and t.bucket < r.hi',
    p_tier, p_tier, v_step, v_table) using p_ranges, v_old;
  execute format(
    'with r as (select series_id, date_trunc(%L, lo, ''UTC'') as lo,
                       least(date_trunc(%L, hi, ''UTC'') + %L::interval, $2) as hi
                  from jsonb_to_recordset($1) as x (series_id bigint, lo timestamptz,
                                                    hi timestamptz)
                 where x.lo < $2)
     insert into vigil.%I %s join r on r.series_id = p.series_id
        and %s >= r.lo and %s < r.hi group by 1, 2',
    p_tier, p_tier, v_step, v_table, v_agg, v_src, v_src) using p_ranges, v_old;
  get diagnostics v_k = row_count;
  v_n := v_n + v_k;
  -- 2. Whole buckets between the old and the new watermark, all series.
  if v_new > v_old then
    execute format('delete from vigil.%I where bucket >= $1', v_table) using v_old;
    execute format('insert into vigil.%I %s where %s >= $1 and %s < $2 group by 1, 2',
                   v_table, v_agg, v_src, v_src)
      using v_old, v_new;
    get diagnostics v_k = row_count;
    v_n := v_n + v_k;
    update vigil.series_watermarks set materialized_until = v_new where tier = p_tier;
  end if;
  return v_n;
end
$$;
comment on function vigil._rollup_tier(text, jsonb, timestamptz) is
  'Portable mode: refreshes one rollup tier: re-computes the invalidated ranges before the '
  'watermark, then materializes whole buckets up to date_trunc(tier, p_now).';

create or replace function vigil.refresh_series_rollups(p_now timestamptz, p_config jsonb)
returns integer
language plpgsql
as $$
declare
  v_ranges jsonb;
  v_n      integer := 0;
begin
  if vigil.has_timescale() then
    return 0;  -- continuous aggregates and their policies do this
  end if;
  -- Consume the invalidations visible now; later ones stay for the next run. Ranges are
  -- merged per series: one range from the earliest to the latest point written.
  with gone as (
    delete from vigil.points_invalidations returning series_id, lo, hi
  )
  select coalesce(jsonb_agg(jsonb_build_object('series_id', series_id, 'lo', lo, 'hi', hi)),
                  '[]')
    into v_ranges
    from (select series_id, min(lo) as lo, max(hi) as hi from gone group by series_id) r;
  v_n := v_n + vigil._rollup_tier('minute', v_ranges, p_now);
  v_n := v_n + vigil._rollup_tier('hour', v_ranges, p_now);
  v_n := v_n + vigil._rollup_tier('day', v_ranges, p_now);
  return v_n;
end
$$;
comment on function vigil.refresh_series_rollups(timestamptz, jsonb) is
  'Portable job (every minute by default): brings points_minute, points_hour and points_day '
  'up to date; returns the number of buckets written. A no-op in TimescaleDB mode.';

create or replace function vigil.prune_series(p_now timestamptz, p_config jsonb)
returns integer
language plpgsql
as $$
begin
  if vigil.has_timescale() then
    return 0;  -- retention policies do this
  end if;
  return vigil._delete_expired('vigil.points', 'at', p_now,
           coalesce((p_config ->> 'points')::interval, '90 days'))
       + vigil._delete_expired('vigil.points_minute', 'bucket', p_now,
           coalesce((p_config ->> 'minute')::interval, '90 days'))
       + vigil._delete_expired('vigil.points_hour', 'bucket', p_now,
           coalesce((p_config ->> 'hour')::interval, '2 years'))
       + vigil._delete_expired('vigil.points_day', 'bucket', p_now,
           coalesce((p_config ->> 'day')::interval, '10 years'));
end
$$;
comment on function vigil.prune_series(timestamptz, jsonb) is
  'Portable job: retention per tier; config keys points, minute, hour, day (intervals; '
  'defaults 90 days, 90 days, 2 years, 10 years). Returns the rows deleted.';

insert into vigil.portable_jobs (job, call, schedule_interval, config) values
  ('refresh_series_rollups', 'vigil.refresh_series_rollups', interval '1 minute', '{}'),
  ('prune_series', 'vigil.prune_series', interval '1 hour',
   '{"points": "90 days", "minute": "90 days", "hour": "2 years", "day": "10 years"}')
on conflict (job) do nothing;

-- TimescaleDB mode: hypertable, continuous aggregates, refresh and retention policies.
do $$
declare
  v_tier  record;
begin
  if vigil.has_timescale() then
    update vigil.portable_jobs set enabled = false
     where job in ('refresh_series_rollups', 'prune_series');
    perform create_hypertable('vigil.points', 'at', chunk_time_interval => interval '1 day',
                              if_not_exists => true, migrate_data => true);
    perform add_retention_policy('vigil.points', interval '90 days', if_not_exists => true);
    for v_tier in
      select * from (values
        ('minute', interval '3 hours', interval '1 minute', interval '1 minute',
         interval '90 days'),
        ('hour', interval '3 days', interval '1 hour', interval '30 minutes',
         interval '2 years'),
        ('day', interval '30 days', interval '1 day', interval '1 hour',
         interval '10 years')
      ) as t (tier, start_offset, end_offset, schedule, retention)
    loop
      if not exists (select from pg_class c join pg_namespace n on n.oid = c.relnamespace
                      where n.nspname = 'vigil' and c.relname = 'points_' || v_tier.tier) then
        execute format(
          'create materialized view vigil.%I with (timescaledb.continuous, '
          || 'timescaledb.materialized_only = false) as '
          || 'select series_id, time_bucket(%L, at) as bucket, count(*) as n, '
          || 'sum(value) as total, min(value) as min_value, max(value) as max_value '
          || 'from vigil.points group by series_id, time_bucket(%L, at) with no data',
          'points_' || v_tier.tier, '1 ' || v_tier.tier, '1 ' || v_tier.tier);
        execute format(
          'comment on view vigil.%I is %L', 'points_' || v_tier.tier,
          'Continuous aggregate of vigil.points per ' || v_tier.tier || ' and series: count, '
          || 'sum, min and max; real-time (materialized_only = false). Tune its refresh and '
          || 'retention policies in timescaledb_information.jobs (docs/series.md).');
      end if;
      perform add_continuous_aggregate_policy(
        format('vigil.%I', 'points_' || v_tier.tier)::regclass,
        start_offset => v_tier.start_offset, end_offset => v_tier.end_offset,
        schedule_interval => v_tier.schedule, if_not_exists => true);
      perform add_retention_policy(format('vigil.%I', 'points_' || v_tier.tier)::regclass,
                                   v_tier.retention, if_not_exists => true);
    end loop;
  end if;
end $$;

-- Queries --------------------------------------------------------------------------------

create or replace function vigil.series_averages(p_name text, p_labels jsonb,
                                                 p_granularity text,
                                                 p_from timestamptz, p_to timestamptz)
returns table (bucket timestamptz, avg double precision, min double precision,
               max double precision, n bigint)
language plpgsql
stable
as $$
declare
  v_step  interval;
  v_from  timestamptz;
  v_to    timestamptz;
  v_tiers text[];
  v_tier  text;
  v_lo    timestamptz := '-infinity';
  v_wm    timestamptz;
  v_parts text[] := '{}';
begin
  if p_granularity is null or p_granularity not in ('minute', 'hour', 'day') then
    raise exception 'granularity must be minute, hour or day, not %', p_granularity
      using errcode = '22023';
  end if;
  v_step := ('1 ' || p_granularity)::interval;
  v_from := date_trunc(p_granularity, p_from, 'UTC');
  v_to := date_trunc(p_granularity, p_to, 'UTC');
  if v_to < p_to then
    v_to := v_to + v_step;
  end if;
  if vigil.has_timescale() then
    -- The continuous aggregate is real-time: materialized buckets plus raw points after
    -- its watermark.
    v_parts := array[format(
      'select r.bucket, r.n, r.total, r.min_value, r.max_value from vigil.%I r
        where r.series_id in (select id from s) and r.bucket >= $3 and r.bucket < $4',
      'points_' || p_granularity)];
  else
    -- Portable: this tier's rollup before its watermark, then each finer rollup up to its
    -- own watermark, then raw points (at most the last minute or so): the newest, partial
    -- bucket costs little even for days.
    v_tiers := case p_granularity when 'day' then array['day', 'hour', 'minute']
                                  when 'hour' then array['hour', 'minute']
                                  else array['minute'] end;
    foreach v_tier in array v_tiers loop
      select greatest(materialized_until, v_lo) into v_wm
        from vigil.series_watermarks where tier = v_tier;
      if v_wm > v_lo then
        v_parts := v_parts || format(
          'select %s, r.n, r.total, r.min_value, r.max_value
             from vigil.%I r
            where r.series_id in (select id from s) and r.bucket >= greatest($3, %L::timestamptz)
              and r.bucket < least($4, %L::timestamptz)
              and not exists (select from d where d.series_id = r.series_id
                                               and d.r @> r.bucket)',
          case when v_tier = p_granularity then 'r.bucket'
               else format('date_trunc(%L, r.bucket, ''UTC'')', p_granularity) end,
          'points_' || v_tier, v_lo, v_wm);
        v_lo := v_wm;
      end if;
    end loop;
    -- Buckets with points written since the last refresh (vigil.points_invalidations, e.g.
    -- a backfill of an old hour; d: their disjoint time ranges per series) are read from the
    -- raw points, not from their stale rollup: reads see every committed write at once.
    v_parts := v_parts || format(
      'select date_trunc(%L, p.at, ''UTC''), count(*), sum(p.value), min(p.value), max(p.value)
         from d join vigil.points p
           on p.series_id = d.series_id and p.at >= lower(d.r) and p.at < upper(d.r)
        where p.at >= $3 and p.at < least($4, %L::timestamptz)
        group by 1',
      p_granularity, v_lo);
    v_parts := v_parts || format(
      'select date_trunc(%L, p.at, ''UTC''), count(*), sum(p.value), min(p.value), max(p.value)
         from vigil.points p
        where p.series_id in (select id from s) and p.at >= greatest($3, %L::timestamptz)
          and p.at < $4
        group by 1',
      p_granularity, v_lo);
  end if;
  return query execute
    'with s as (select id from vigil.series
                 where name = $1 and labels @> coalesce($2, ''{}''::jsonb)),
          d as (select i.series_id,
                       unnest(range_agg(tstzrange(date_trunc($5, i.lo, ''UTC''),
                                                  date_trunc($5, i.hi, ''UTC'') + $6))) as r
                  from vigil.points_invalidations i
                 where i.series_id in (select id from s)
                 group by i.series_id),
          parts (bucket, n, total, min_value, max_value) as ('
    || array_to_string(v_parts, ' union all ')
    || ') select bucket, sum(total) / sum(n), min(min_value), max(max_value), sum(n)::bigint
            from parts group by bucket order by bucket desc'
  using p_name, p_labels, v_from, v_to, p_granularity, v_step;
end
$$;
comment on function vigil.series_averages(text, jsonb, text, timestamptz, timestamptz) is
  'Average, min, max and count per bucket (minute|hour|day, UTC) of the series named p_name '
  'whose labels contain p_labels (null = all label sets, combined), for the whole buckets '
  'overlapping [p_from, p_to); newest first. Same results in both modes.';

create or replace function vigil.series_search(p_query text, p_limit integer default 50)
returns table (id bigint, name text, labels jsonb, last_at timestamptz)
language sql
stable
as $$
  select s.id, s.name, s.labels,
         (select max(p.at) from vigil.points p where p.series_id = s.id) as last_at
    from vigil.series s
   where not exists (
           select from regexp_split_to_table(coalesce(p_query, ''), '\s+') as t (term)
            where t.term <> ''
              and s.name not ilike '%' || t.term || '%'
              and not exists (select from jsonb_each_text(s.labels) l
                               where l.key || '=' || l.value ilike '%' || t.term || '%'))
   order by s.name, s.labels::text
   limit p_limit
$$;
comment on function vigil.series_search(text, integer) is
  'Series matching every whitespace-separated term of p_query (case-insensitive substring of '
  'the name or of a label as key=value, e.g. ''cpu host=web''), with their newest point; '
  'the charts page picker.';
