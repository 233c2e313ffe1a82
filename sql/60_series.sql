-- Numeric time series (the metrics-server API, docs/compatibility.md): any named series
-- with labels, averages per minute, hour and day.
--
-- Storage: vigil.series (one row per (name, labels)) and vigil.points (series_id, at, value).
-- Aggregates per tier have the same name and columns in both modes:
--   vigil.points_minute / points_hour / points_day (series_id, bucket, n, total, min_value, max_value)
-- TimescaleDB mode: points is a view over the hypertable vigil.points_data, which stores each
--   value as a decimal (m, e) or a float f (see vigil._decimal below for why); points_hour and
--   points_day are continuous aggregates with refresh and retention policies, real-time
--   (materialized_only = false), points_minute a view over the raw points; vigil.series_averages
--   reads the buckets TimescaleDB logged as changed since their refresh (a backfill) from the
--   raw points (vigil._series_dirty).
-- Portable mode: the tiers are tables maintained by the portable job refresh_series_rollups,
--   which materializes whole buckets up to a watermark per tier and re-computes buckets that
--   received late points (an invalidation log written by a statement trigger on points);
--   vigil.series_averages adds the raw points after the watermark (the newest, partial bucket),
--   the same "real-time aggregation" the continuous aggregates do.
-- Compact storage of older points: TimescaleDB compresses chunks (and the aggregates) by
--   policy; portable mode packs closed UTC days into vigil.points_packed (one row per series
--   and day, below vigil.points_packed_until), read together with the hot vigil.points by
--   every raw read (vigil.series_points, _series_last, the view points_all).
--
-- Exposes: tables vigil.series, vigil.points and vigil.points_packed, the tiers
-- points_minute/hour/day; vigil.series_ids(), add_point(), delete_series(),
-- series_averages(), series_search(), series_points(), the view points_all; the jobs
-- refresh_series_rollups, pack_series_points and prune_series (portable) or continuous
-- aggregate, compression and retention policies and refresh_series_rollups_job (TimescaleDB,
-- with the table vigil.points_data).

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
select vigil._comment_columns('vigil.series',
  'labels', 'Label set as a JSON object of strings (Influx tags); part of the identity of the '
            'series.');
create index if not exists series_labels_idx on vigil.series using gin (labels);

-- Decimal values as integers (TimescaleDB mode). TimescaleDB compresses a float8 column with
-- Gorilla XOR, which does badly on decimal values such as 91.958 (4.1 bytes a value measured
-- on the NAB data), and an int8 column with delta-of-delta and simple8b (a few bits a value
-- for a slowly moving series). So a value v that is exactly m / 10^e (m an integer below
-- 2^53, 0 <= e <= 15) is stored as (m, e): m::float8 / 10^e is one correctly rounded IEEE
-- division of two exact numbers, so it is the double nearest to the decimal m / 10^e, which
-- is v. Encoders verify that per value ((m / 10^e) = v exactly, and -0 stays a float) and
-- keep any other value (1/3, 1e300) in the float8 column f, null otherwise (a null costs
-- nothing compressed; a constant e per segment almost nothing). A value a few units in the
-- last place away from a decimal (float noise, 94.79799999999999 next to 94.798; 10-16 % of
-- NAB's CPU values) is stored as that decimal and the residual r = v - m / 10^e, which is
-- exact (Sterbenz: v and m / 10^e are within a factor of 2), as is m / 10^e + r = v (checked
-- per value); residuals repeat (one or two units in the last place) and compress to a few
-- bits with Gorilla, where the whole float cost ~8 bytes. Any such (m, e) reads back
-- the same; which e is chosen only steers compression: vigil._decimal_encode (inserts
-- through the view vigil.points) takes the smallest; the API's COPY (api/series/store.py)
-- writes the values of a series with one e, the digits (up to 6) its recent values usually
-- need, since m jumping by powers of ten between values costs delta-of-delta dearly; a rare
-- value with more digits keeps its own e (one value in 800 of NAB's ec2_cpu has 4 digits
-- where the others have 3: following it would make every later m 10 times larger); float
-- noise gets a residual at that e (or the fewest more digits that fit), or else goes to f.
-- Measured (bench/peers.py, 1,000 NAB series, compressed): raw points 5.5 -> 3.0 bytes a
-- point with one e per series, the most digits seen; the usual digits instead: see
-- docs/series.md.

create or replace function vigil._decimal(p_m bigint, p_e smallint, p_f double precision,
                                          p_r double precision)
returns double precision
language sql
immutable
parallel safe
as $$
  -- Exact powers of ten (a lookup, not pow()): every 10^e up to 10^22 is a float8. Adding
  -- the residual r is exact (the encoder checked it); adding 0 changes nothing (m / 10^e is
  -- never -0).
  select coalesce(p_f, p_m::double precision
                       / ('{1e0,1e1,1e2,1e3,1e4,1e5,1e6,1e7,1e8,1e9,1e10,1e11,1e12,1e13,1e14,'
                          '1e15}'::double precision[])[p_e + 1]
                       + coalesce(p_r, 0))
$$;
comment on function vigil._decimal(bigint, smallint, double precision, double precision) is
  'The value of a stored point (TimescaleDB mode): f when not null, else m / 10^e + r '
  '(r null: 0), exactly.';

create or replace function vigil._decimal_encode(p_value double precision, out m bigint,
                                                 out e smallint, out f double precision)
language sql
immutable
parallel safe
as $$
  -- The smallest e whose m = round(v * 10^e) reads back as exactly v; else (null, null, v).
  select x.m, x.e, case when x.m is null then p_value end
    from (select null::bigint as m, null::smallint as e) z
    left join lateral (
      select round(y.v)::bigint as m, y.e
        from (select case when abs(p_value) < 9007199254740992 then p_value * p.p end as v,
                     p.p, (p.i - 1)::smallint as e
                from unnest('{1e0,1e1,1e2,1e3,1e4,1e5,1e6,1e7,1e8,1e9,1e10,1e11,1e12,1e13,'
                            '1e14,1e15}'::double precision[]) with ordinality as p (p, i)) y
       where abs(y.v) < 9007199254740992 and round(y.v) / y.p = p_value
         and not (p_value = 0 and p_value::text = '-0')
       order by y.e
       limit 1) x on true
$$;
comment on function vigil._decimal_encode(double precision) is
  'The stored form (m, e, f) of a value (TimescaleDB mode): m / 10^e when that is exactly '
  'the value, else f (see vigil._decimal).';

create or replace function vigil._points_write() returns trigger
language plpgsql
as $$
begin
  if tg_op = 'INSERT' then
    if new.series_id is null or new.at is null or new.value is null then
      raise exception 'vigil.points: series_id, at and value must not be null'
        using errcode = '23502';
    end if;
    insert into vigil.points_data (series_id, at, m, e, f)
    select new.series_id, new.at, d.m, d.e, d.f from vigil._decimal_encode(new.value) d
    on conflict (series_id, at) do update
      set m = excluded.m, e = excluded.e, f = excluded.f, r = null;
    return new;
  end if;
  delete from vigil.points_data p
   where p.series_id = old.series_id and p.at = old.at
     and vigil._decimal(p.m, p.e, p.f, p.r) = old.value;
  return old;
end
$$;
comment on function vigil._points_write() is
  'INSTEAD OF trigger on the view vigil.points (TimescaleDB mode): an insert (also COPY) '
  'stores the point encoded in vigil.points_data, replacing a point of the same series and '
  'time; a delete removes the matching rows.';

-- vigil.points (series_id, at, value): a table in portable mode; in TimescaleDB mode a view
-- over the hypertable vigil.points_data (series_id, at, m, e, f) with an INSTEAD OF trigger,
-- so that every writer and reader of vigil.points works in both modes (the API's COPY writes
-- the encoded columns to vigil.points_data itself).
do $$
begin
  if not vigil.has_timescale() then
    create table if not exists vigil.points (
      series_id bigint not null,
      at        timestamptz not null,
      value     double precision not null
    );
    comment on table vigil.points is
      'Raw points of vigil.series. No foreign key to series, on purpose: batch ingest writes '
      'with COPY at full speed; vigil.delete_series removes both.';
    -- One point per series and time: a point sent again (a sender retrying a batch that
    -- was stored) replaces the stored one (vigil.put_points) instead of counting twice.
    create unique index if not exists points_series_at_key on vigil.points (series_id, at);
    drop index if exists vigil.points_series_at_idx;
    return;
  end if;
  create table if not exists vigil.points_data (
    series_id bigint not null,
    at        timestamptz not null,
    m         bigint,
    e         smallint,
    f         double precision,
    r         double precision,
    constraint points_data_e_check check (e between 0 and 15),
    constraint points_data_value_check check ((f is null) = (m is not null and e is not null)),
    constraint points_data_residual_check check (r is null or m is not null)
  );
  comment on table vigil.points_data is
    'TimescaleDB mode: the raw points of vigil.series, value encoded (m, e, f; see '
    'vigil._decimal); a hypertable, compressed by policy. Read and write through the view '
    'vigil.points.';
  perform vigil._comment_columns('vigil.points_data',
    'm', 'The value as the integer m of m / 10^e, when that is exact; else null.',
    'e', 'The decimal exponent e of m / 10^e (0..15); null with m.',
    'f', 'The value when it is not a short decimal (e.g. 1/3, 1e300); else null.',
    'r', 'The value minus m / 10^e (exact) when the value is within a few units in the last '
         'place of that decimal without being it (float noise such as 94.79799999999999 '
         'next to 94.798); null when it is the decimal.');
  create unique index if not exists points_data_series_at_key
    on vigil.points_data (series_id, at);
  drop index if exists vigil.points_data_series_at_idx;
  perform create_hypertable('vigil.points_data', 'at', chunk_time_interval => interval '1 day',
                            if_not_exists => true);
  create or replace view vigil.points as
  select p.series_id, p.at, vigil._decimal(p.m, p.e, p.f, p.r) as value
    from vigil.points_data p;
  comment on view vigil.points is
    'Raw points of vigil.series (series_id, at, value). TimescaleDB mode: a view over the '
    'hypertable vigil.points_data; inserts (also COPY) and deletes go through its trigger.';
  drop trigger if exists points_write on vigil.points;
  create trigger points_write instead of insert or delete on vigil.points
    for each row execute function vigil._points_write();
end $$;

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
  'Statement trigger on vigil.points (portable mode), after insert and after update: logs '
  'the time range written per series.';

do $$
begin
  if not vigil.has_timescale() then
    drop trigger if exists points_invalidate on vigil.points;
    create trigger points_invalidate after insert on vigil.points
      referencing new table as new_points
      for each statement execute function vigil._points_invalidate();
    -- A point replaced by vigil.put_points changes its buckets too.
    drop trigger if exists points_invalidate_update on vigil.points;
    create trigger points_invalidate_update after update on vigil.points
      referencing new table as new_points
      for each statement execute function vigil._points_invalidate();
  end if;
end $$;

-- Packed storage (portable mode) ----------------------------------------------------------
-- vigil.points is the hot table: every write lands there (COPY), with its (series_id, at)
-- index. The job pack_series_points moves whole UTC days that ended more than `after` ago
-- into vigil.points_packed, one row per series and day: the gaps between the times and the
-- values as compact, TOAST-compressed arrays, with the day's count, sum, min and max and,
-- for dense days, per-hour ones. Every read takes days before vigil.points_packed_until
-- from there, plus the points still in vigil.points before it (sent late, merged by the next
-- run), and everything after it from vigil.points and the rollup tables, as before.

create table if not exists vigil.points_packed (
  series_id  bigint not null,
  day        timestamptz not null,
  n          integer not null,
  total      double precision not null,
  min_value  double precision not null,
  max_value  double precision not null,
  last_at    timestamptz not null,
  gaps       bigint[],
  vals       text,
  hour_n     integer[],
  hour_total double precision[],
  hour_min   double precision[],
  hour_max   double precision[],
  constraint points_packed_pkey primary key (series_id, day),
  constraint points_packed_raw_check check ((gaps is null) = (vals is null)),
  constraint points_packed_hours_check check (hour_n is null or cardinality(hour_n) = 24)
) with (toast_tuple_target = 128);
-- The hour sums stay inline and uncompressed (read for every hourly average: a TOAST fetch
-- per array and row would cost more than the ~800 bytes of a dense day); the gaps and
-- values are compressed and, when large, moved out of line.
alter table vigil.points_packed
  alter column hour_n set storage plain, alter column hour_total set storage plain,
  alter column hour_min set storage plain, alter column hour_max set storage plain;
comment on table vigil.points_packed is
  'Portable mode: the points of whole UTC days before vigil.points_packed_until, one row per '
  'series and day, written by vigil.pack_series_points (empty in TimescaleDB mode, where '
  'compressed chunks do this). Read the points with vigil.series_points() or the view '
  'vigil.points_all.';
select vigil._comment_columns('vigil.points_packed',
  'day', 'Start of the UTC day the row holds.',
  'n', 'Number of points of the day (also after the raw points expired).',
  'total', 'Sum of the values of the day; avg = total / n.',
  'last_at', 'Time of the newest point of the day.',
  'gaps', 'Microseconds from the day start to the first point, then between consecutive '
          'points (in time order); the last gap repeats for the points beyond the array (a '
          'regular series stores two); null once the raw points expired (prune_series).',
  'vals', 'The values in the same order, comma-separated in shortest exact text form '
          '(compresses better than float8[]); null once expired.',
  'hour_n', 'Points per hour of the day (24 entries), with hour_total, hour_min and hour_max: '
            'only for days with at least hour_summary_from points (else hours are read from '
            'the raw points), and computed when the raw points expire.',
  'hour_total', 'Sum of the values per hour (24 entries).',
  'hour_min', 'Minimum per hour (24 entries; null for an hour without points).',
  'hour_max', 'Maximum per hour (24 entries; null for an hour without points).');

create table if not exists vigil.points_packed_until (
  id    boolean not null default true,
  until timestamptz not null default '-infinity',
  constraint points_packed_until_pkey primary key (id),
  constraint points_packed_until_one_check check (id)
);
comment on table vigil.points_packed_until is
  'Portable mode, one row: the points before `until` (a UTC midnight) are in '
  'vigil.points_packed, except points written since the last vigil.pack_series_points, which '
  'stay in vigil.points until its next run; the rollup tables hold only buckets from `until` on.';
insert into vigil.points_packed_until (id) values (true) on conflict (id) do nothing;

create or replace function vigil._unpack(p_day timestamptz, p_gaps bigint[], p_vals text)
returns table (at timestamptz, value double precision)
language sql
immutable
parallel safe
as $$
  -- The running sum of the gaps in float8 is exact (integers below 2^53 microseconds).
  -- Gaps may be fewer than the values: the last one repeats (unnest pads with nulls).
  select p_day + interval '1 microsecond'
                 * sum(coalesce(u.gap, p_gaps[cardinality(p_gaps)])::double precision)
                     over (order by u.i),
         u.value
    from unnest(p_gaps, string_to_array(p_vals, ',')::double precision[])
         with ordinality as u (gap, value, i)
$$;
comment on function vigil._unpack(timestamptz, bigint[], text) is
  'The points (at, value) of one vigil.points_packed row, in time order (fewer gaps than '
  'values: the last gap repeats).';

create or replace function vigil._pack_hours(p_day timestamptz, p_gaps bigint[], p_vals text,
                                             out hour_n integer[],
                                             out hour_total double precision[],
                                             out hour_min double precision[],
                                             out hour_max double precision[])
language sql
immutable
parallel safe
as $$
  select array_agg(coalesce(h.n, 0) order by x.i), array_agg(coalesce(h.total, 0) order by x.i),
         array_agg(h.lo order by x.i), array_agg(h.hi order by x.i)
    from generate_series(0, 23) as x (i)
    left join (select extract(hour from u.at at time zone 'UTC')::integer as i,
                      count(*)::integer as n, sum(u.value) as total, min(u.value) as lo,
                      max(u.value) as hi
                 from vigil._unpack(p_day, p_gaps, p_vals) u
                group by 1) h on h.i = x.i
$$;
comment on function vigil._pack_hours(timestamptz, bigint[], text) is
  'The per-hour count, sum, min and max (24 entries each) of one packed day.';

create or replace function vigil.series_points(p_series_id bigint, p_from timestamptz,
                                               p_to timestamptz)
returns table (at timestamptz, value double precision)
language sql
stable
as $$
  select p.at, p.value from vigil.points p
   where p.series_id = p_series_id and p.at >= p_from and p.at < p_to
  union all
  select u.at, u.value
    from vigil.points_packed k
   cross join lateral vigil._unpack(k.day, k.gaps, k.vals) u
   where k.series_id = p_series_id and k.day >= date_trunc('day', p_from, 'UTC')
     and k.day < p_to and k.gaps is not null and u.at >= p_from and u.at < p_to
$$;
comment on function vigil.series_points(bigint, timestamptz, timestamptz) is
  'The raw points of one series in [p_from, p_to), hot and packed alike (unordered): '
  'what every raw read uses. An index range scan of vigil.points and of the packed days.';

create or replace view vigil.points_all as
select p.series_id, p.at, p.value from vigil.points p
union all
select k.series_id, u.at, u.value
  from vigil.points_packed k
 cross join lateral vigil._unpack(k.day, k.gaps, k.vals) u
 where k.gaps is not null;
comment on view vigil.points_all is
  'Every raw point (series_id, at, value), hot and packed: for inspection and exports. It '
  'unpacks whole days; for a range of one series use vigil.series_points().';

create or replace function vigil._series_last(p_series_id bigint, p_at timestamptz)
returns table (value double precision, at timestamptz)
language sql
stable
as $$
  -- The newest packed point at or before p_at is in one of the two newest packed days that
  -- start at or before it (the newest may hold only later points).
  select x.value, x.at from (
    (select p.value, p.at from vigil.points p
      where p.series_id = p_series_id and p.at <= p_at
      order by p.at desc limit 1)
    union all
    (select u.value, u.at
       from (select k.day, k.gaps, k.vals from vigil.points_packed k
              where k.series_id = p_series_id and k.day <= p_at and k.gaps is not null
              order by k.day desc limit 2) k
      cross join lateral vigil._unpack(k.day, k.gaps, k.vals) u
      where u.at <= p_at
      order by u.at desc limit 1)
  ) x
  order by x.at desc
  limit 1
$$;
comment on function vigil._series_last(bigint, timestamptz) is
  'The newest point of one series at or before p_at (value, at), hot or packed.';

create or replace function vigil.pack_series_points(p_now timestamptz, p_config jsonb)
returns integer
language plpgsql
set extra_float_digits = 1  -- the shortest text that reads back as the same float8
set work_mem = '64MB'       -- one sort of the moved points in memory
as $$
declare
  v_after  interval := coalesce((p_config ->> 'after')::interval, interval '1 hour');
  v_hourly integer := coalesce((p_config ->> 'hour_summary_from')::integer, 720);
  v_origin constant timestamptz := '2000-01-01 00:00+00';  -- date_bin: UTC days, hours
  v_old    timestamptz;
  v_until  timestamptz;
  v_n      integer;
begin
  if vigil.has_timescale() then
    return 0;  -- the compression policy of vigil.points does this
  end if;
  select until into v_old from vigil.points_packed_until for update;
  v_until := greatest(v_old, date_trunc('day', p_now - v_after, 'UTC'));
  -- The points before v_until (whole closed days, and late points of days packed before)
  -- leave vigil.points; each day they touch is unpacked, merged and packed again. Points
  -- written meanwhile stay for the next run (reads take them from vigil.points).
  with moved as (
    delete from vigil.points where at < v_until returning series_id, at, value
  ), days as (
    select distinct m.series_id, date_bin('1 day', m.at, v_origin) as day from moved m
  ), old as (
    delete from vigil.points_packed k using days d
     where k.series_id = d.series_id and k.day = d.day and k.gaps is not null
    returning k.series_id, k.day, k.gaps, k.vals
  ), late as (
    -- Moved points of days packed before (usually none, and few): such a point replaces a
    -- packed point of the same time (a sender's retry after the day was packed).
    select m.series_id, m.at from moved m
      join old o on o.series_id = m.series_id and o.day = date_bin('1 day', m.at, v_origin)
  ), pts as (
    select m.series_id, date_bin('1 day', m.at, v_origin) as day, m.at, m.value from moved m
    union all
    select o.series_id, o.day, u.at, u.value
      from old o cross join lateral vigil._unpack(o.day, o.gaps, o.vals) u
     where not exists (select from late l where l.series_id = o.series_id and l.at = u.at)
  ), g as (
    -- date_part('epoch', interval) is a float8: exact to the microsecond below a day.
    select p.series_id, p.day, p.at, p.value,
           round(date_part('epoch', p.at - coalesce(lag(p.at) over w, p.day)) * 1000000)::bigint
             as gap
      from pts p
    window w as (partition by p.series_id, p.day order by p.at, p.value)
  ), a as (
    -- The aggregates take the rows in the order of the sorted subquery (no parallel plan in
    -- a data-modifying statement): one sort instead of one per aggregate and day.
    select g.series_id, g.day, count(*)::integer as n, sum(g.value) as total,
           min(g.value) as min_value, max(g.value) as max_value, max(g.at) as last_at,
           array_agg(g.gap) as gaps,
           string_agg(g.value::text, ',') as vals
      from (select * from g order by g.series_id, g.day, g.at, g.value) g
     group by g.series_id, g.day
  ), hr as (
    select g.series_id, g.day,
           (date_part('epoch', date_bin('1 hour', g.at, g.day) - g.day) / 3600)::integer as i,
           count(*)::integer as n, sum(g.value) as total, min(g.value) as lo, max(g.value) as hi
      from g
     where (g.series_id, g.day) in (select a.series_id, a.day from a where a.n >= v_hourly)
     group by 1, 2, 3
  ), h as (
    select d.series_id, d.day, array_agg(coalesce(hr.n, 0) order by x.i) as hour_n,
           array_agg(coalesce(hr.total, 0) order by x.i) as hour_total,
           array_agg(hr.lo order by x.i) as hour_min, array_agg(hr.hi order by x.i) as hour_max
      from (select distinct hr.series_id, hr.day from hr) d
     cross join generate_series(0, 23) as x (i)
      left join hr on hr.series_id = d.series_id and hr.day = d.day and hr.i = x.i
     group by d.series_id, d.day
  )
  insert into vigil.points_packed (series_id, day, n, total, min_value, max_value, last_at,
                                   gaps, vals, hour_n, hour_total, hour_min, hour_max)
  -- A regular day (every gap after the first equal) keeps two gaps: vigil._unpack repeats
  -- the last one. Short days are stored uncompressed (rows under 2 kB), so this is what
  -- keeps them small; long ones compress either way.
  select a.series_id, a.day, a.n, a.total, a.min_value, a.max_value, a.last_at,
         case when a.n > 2 and a.gaps[2:] = array_fill(a.gaps[a.n], array[a.n - 1])
              then a.gaps[1:2] else a.gaps end,
         a.vals, h.hour_n, h.hour_total, h.hour_min, h.hour_max
    from a
    left join h on h.series_id = a.series_id and h.day = a.day
  -- A day whose raw points expired (prune_series) keeps its sums; later points are dropped.
  on conflict on constraint points_packed_pkey do nothing;
  get diagnostics v_n = row_count;
  -- Buckets before v_until are read from the packed rows from now on.
  delete from vigil.points_minute where bucket < v_until;
  delete from vigil.points_hour where bucket < v_until;
  delete from vigil.points_day where bucket < v_until;
  delete from vigil.points_invalidations where hi < v_until;
  update vigil.series_watermarks set materialized_until = v_until
   where materialized_until < v_until;
  update vigil.points_packed_until set until = v_until where until <> v_until;
  return v_n;
end
$$;
comment on function vigil.pack_series_points(timestamptz, jsonb) is
  'Portable job (hourly by default): packs the points of every UTC day that ended more than '
  'config `after` (default 1 hour) before p_now, and late points of days packed before, into '
  'vigil.points_packed; per-hour sums for days of at least config `hour_summary_from` points '
  '(default 720). Returns the packed rows written. A no-op in TimescaleDB mode.';

select vigil._register_job('pack_series_points', 'vigil.pack_series_points', interval '1 hour',
                           '{"after": "1 hour", "hour_summary_from": 720}');

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

create sequence if not exists vigil.series_forgotten;
comment on sequence vigil.series_forgotten is
  'Advanced whenever series are deleted or truncated: API processes cache series ids and '
  'drop their cache when this changes (a deleted series may come back under a new id). '
  'Starts at a random value per install, so that a schema or cluster recreated under a '
  'running API does not look like the one it cached ids of.';
-- Set once: a fresh sequence (or one never advanced) starts at a random value.
do $$
begin
  if not (select is_called from vigil.series_forgotten) then
    perform setval('vigil.series_forgotten', 1 + floor(random() * 2 ^ 52)::bigint);
  end if;
end $$;

create or replace function vigil._series_forget() returns trigger
language plpgsql
as $$
begin
  perform nextval('vigil.series_forgotten');
  return null;
end
$$;
comment on function vigil._series_forget() is
  'Statement trigger on vigil.series (delete, truncate): advances vigil.series_forgotten.';

drop trigger if exists series_forget on vigil.series;
create trigger series_forget after delete or truncate on vigil.series
  for each statement execute function vigil._series_forget();

create or replace function vigil.put_points(p_series_ids bigint[], p_ats timestamptz[],
                                            p_values double precision[])
returns bigint
language plpgsql
as $$
declare
  v_n    bigint;
  v_k    bigint;
  v_ids  bigint[];
  v_ats  timestamptz[];
  v_vals double precision[];
begin
  if cardinality(p_series_ids) <> cardinality(p_ats)
     or cardinality(p_series_ids) <> cardinality(p_values) then
    raise exception 'put_points: arrays of different lengths (% series ids, % times, % values)',
      cardinality(p_series_ids), cardinality(p_ats), cardinality(p_values)
      using errcode = '22023';
  end if;
  -- One row per (series_id, at): the last of the arrays wins, as it would have in sequence.
  -- A stored value is replaced only when it differs (bit for bit: -0 replaces 0).
  if not vigil.has_timescale() then
    insert into vigil.points (series_id, at, value)
    select distinct on (u.series_id, u.at) u.series_id, u.at, u.value
      from unnest(p_series_ids, p_ats, p_values) with ordinality as u (series_id, at, value, i)
     order by u.series_id, u.at, u.i desc
    on conflict (series_id, at) do update set value = excluded.value
      where float8send(vigil.points.value) <> float8send(excluded.value);
    get diagnostics v_n = row_count;
    return v_n;
  end if;
  -- TimescaleDB: new points first (a conflict check does not rewrite a compressed batch);
  -- then only the points whose value differs are updated, by key (an update decompresses
  -- the batches it matches, so a retried batch of equal values rewrites nothing).
  select array_agg(x.series_id), array_agg(x.at), array_agg(x.value)
    into v_ids, v_ats, v_vals
    from (select distinct on (u.series_id, u.at) u.series_id, u.at, u.value
            from unnest(p_series_ids, p_ats, p_values) with ordinality as u (series_id, at,
                                                                             value, i)
           order by u.series_id, u.at, u.i desc) x;
  insert into vigil.points_data (series_id, at, m, e, f)
  select u.series_id, u.at, d.m, d.e, d.f
    from unnest(v_ids, v_ats, v_vals) as u (series_id, at, value)
   cross join lateral vigil._decimal_encode(u.value) d
  on conflict (series_id, at) do nothing;
  get diagnostics v_n = row_count;
  select array_agg(u.series_id), array_agg(u.at), array_agg(u.value)
    into v_ids, v_ats, v_vals
    from unnest(v_ids, v_ats, v_vals) as u (series_id, at, value)
    join vigil.points_data p on p.series_id = u.series_id and p.at = u.at
   where float8send(vigil._decimal(p.m, p.e, p.f, p.r)) <> float8send(u.value);
  if cardinality(v_ids) > 0 then
    -- Many series of a compressed day: no cap on the rows decompressed (the default would
    -- fail the retry the same way every time).
    perform set_config('timescaledb.max_tuples_decompressed_per_dml_transaction', '0', true);
    update vigil.points_data p set m = d.m, e = d.e, f = d.f, r = null
      from unnest(v_ids, v_ats, v_vals) as u (series_id, at, value)
     cross join lateral vigil._decimal_encode(u.value) d
     where p.series_id = any(v_ids) and p.at = any(v_ats)
       and p.series_id = u.series_id and p.at = u.at;
    get diagnostics v_k = row_count;
    v_n := v_n + v_k;
  end if;
  return v_n;
end
$$;
comment on function vigil.put_points(bigint[], timestamptz[], double precision[]) is
  'Stores points given as parallel arrays (series id, time, value), replacing any '
  'stored point of the same series and time whose value differs (the last in the arrays '
  'wins); returns the rows written. What the API falls back to when a batch holds a point '
  'already stored (a retry).';

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
  perform vigil.put_points(array[v_id], array[coalesce(p_at, now())], array[p_value]);
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
  if vigil.has_timescale() then
    delete from vigil.points_data where series_id = p_series_id;
  else
    delete from vigil.points where series_id = p_series_id;
  end if;
  get diagnostics v_n = row_count;
  -- An upgraded install may have either archive, both or none.
  if to_regclass('vigil.points_hour_archive') is not null then
    execute 'delete from vigil.points_hour_archive where series_id = $1' using p_series_id;
  end if;
  if to_regclass('vigil.points_day_archive') is not null then
    execute 'delete from vigil.points_day_archive where series_id = $1' using p_series_id;
  end if;
  if not vigil.has_timescale() then
    with gone as (delete from vigil.points_packed where series_id = p_series_id returning n)
    select v_n + coalesce(sum(n), 0) into v_n from gone;
    delete from vigil.points_minute where series_id = p_series_id;
    delete from vigil.points_hour where series_id = p_series_id;
    delete from vigil.points_day where series_id = p_series_id;
  end if;
  delete from vigil.series where id = p_series_id;
  return v_n;
end
$$;
comment on function vigil.delete_series(bigint) is
  'Deletes a series with its points and (portable mode) packed days and rollups; returns the '
  'points deleted (hot and packed). '
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
  v_pk    timestamptz;
  v_agg   text;
  v_src   text;
  v_redo  text;
  v_n     integer := 0;
  v_k     integer;
begin
  select materialized_until into v_old from vigil.series_watermarks where tier = p_tier
     for update;
  v_new := greatest(v_old, date_trunc(p_tier, p_now, 'UTC'));
  -- Before the packed boundary the packed rows are the rollup: nothing to do there.
  select until into v_pk from vigil.points_packed_until;
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
  -- 1. Buckets before the old watermark that received points since the last run (r: one
  --    range per series in p_ranges): deleted, then re-computed.
  v_redo := format(
    'with r as (select series_id, greatest(date_trunc(%1$L, lo, ''UTC''), $3) as lo,
                       least(date_trunc(%1$L, hi, ''UTC'') + %2$L::interval, $2) as hi
                  from jsonb_to_recordset($1) as x (series_id bigint, lo timestamptz,
                                                    hi timestamptz)
                 where x.lo < $2 and x.hi >= $3) ',
    p_tier, v_step);
  execute v_redo || format(
    'delete from vigil.%I t using r
      where t.series_id = r.series_id and t.bucket >= r.lo and t.bucket < r.hi',
    v_table) using p_ranges, v_old, v_pk;
  execute v_redo || format(
    'insert into vigil.%I %s join r on r.series_id = p.series_id
        and %s >= r.lo and %s < r.hi group by 1, 2',
    v_table, v_agg, v_src, v_src) using p_ranges, v_old, v_pk;
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

create or replace function vigil._prune_packed(p_now timestamptz, p_points interval,
                                              p_hours interval, p_days interval)
returns integer
language plpgsql
as $$
declare
  v_n integer;
  v_k integer;
begin
  -- Raw points of days wholly older than p_points go; their hour sums stay (computed now
  -- where the day had none), then those go after p_hours, the day's sums after p_days.
  update vigil.points_packed k
     set gaps = null, vals = null, hour_n = h.hour_n, hour_total = h.hour_total,
         hour_min = h.hour_min, hour_max = h.hour_max
    from vigil.points_packed k2
    cross join lateral vigil._pack_hours(k2.day, k2.gaps, k2.vals) h
   where k.series_id = k2.series_id and k.day = k2.day and k.gaps is not null
     and k.hour_n is null and k.day + interval '1 day' <= p_now - p_points;
  get diagnostics v_n = row_count;
  update vigil.points_packed set gaps = null, vals = null
   where gaps is not null and day + interval '1 day' <= p_now - p_points;
  get diagnostics v_k = row_count;
  v_n := v_n + v_k;
  update vigil.points_packed
     set hour_n = null, hour_total = null, hour_min = null, hour_max = null
   where hour_n is not null and gaps is null and day + interval '1 day' <= p_now - p_hours;
  get diagnostics v_k = row_count;
  v_n := v_n + v_k;
  delete from vigil.points_packed where day < p_now - p_days;
  get diagnostics v_k = row_count;
  return v_n + v_k;
end
$$;
comment on function vigil._prune_packed(timestamptz, interval, interval, interval) is
  'Portable retention of vigil.points_packed by whole days: raw points after p_points (the '
  'hour sums kept), hour sums after p_hours, the rows after p_days; returns the rows changed.';

create or replace function vigil.prune_series(p_now timestamptz, p_config jsonb)
returns integer
language plpgsql
as $$
begin
  if vigil.has_timescale() then
    return 0;  -- retention policies do this
  end if;
  return vigil._prune_packed(p_now, coalesce((p_config ->> 'points')::interval, '90 days'),
                             coalesce((p_config ->> 'hour')::interval, '2 years'),
                             coalesce((p_config ->> 'day')::interval, '10 years'))
       + vigil._delete_expired('vigil.points', 'at', p_now,
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
  'defaults 90 days, 90 days, 2 years, 10 years), also for the packed days (their raw points, '
  'hour sums and day sums, by whole days). Returns the rows deleted or thinned.';

create or replace procedure vigil.refresh_series_rollups_job(job_id integer, config jsonb)
language plpgsql
as $$
declare
  v_from timestamptz;
  v_to   timestamptz;
  v_tier text;
begin
  -- The refresh policies re-materialize their window only (3 days of hours, 30 of days):
  -- buckets changed before it (a backfill, or the whole history after an upgrade that
  -- created the aggregates) are read raw by vigil.series_averages until refreshed. This
  -- refreshes them: TimescaleDB re-computes only what its invalidation logs list, so it
  -- costs nothing when nothing is stale. From the oldest raw chunk on (day-aligned): a
  -- refresh where retention dropped the raw points would empty those buckets.
  select min(c.range_start) into v_from from timescaledb_information.chunks c
   where c.hypertable_schema = 'vigil' and c.hypertable_name = 'points_data';
  foreach v_tier in array array['hour', 'day'] loop
    v_to := date_trunc(v_tier, now() - interval '1 hour', 'UTC');
    if v_from + ('1 ' || v_tier)::interval <= v_to then
      call refresh_continuous_aggregate(format('vigil.%I', 'points_' || v_tier)::regclass,
                                        date_trunc(v_tier, v_from, 'UTC'), v_to);
      commit;
    end if;
  end loop;
end
$$;
comment on procedure vigil.refresh_series_rollups_job(integer, jsonb) is
  'TimescaleDB job (add_job, hourly): refreshes points_hour and points_day over every raw '
  'chunk (only the buckets TimescaleDB logged as changed are re-computed).';

select vigil._register_job('refresh_series_rollups', 'vigil.refresh_series_rollups',
                           interval '1 minute',
                           p_timescale_job => 'vigil.refresh_series_rollups_job',
                           p_timescale_every => interval '1 hour');
select vigil._register_job('prune_series', 'vigil.prune_series', interval '1 hour',
                           '{"points": "90 days", "minute": "90 days", "hour": "2 years", '
                           '"day": "10 years"}');

-- TimescaleDB mode: the hypertable vigil.points_data (created above with the view
-- vigil.points), continuous aggregates points_hour and points_day, the minute tier as a view
-- over the raw points, refresh, compression and retention policies.
--
-- Why the minute tier is no aggregate here: a continuous aggregate per minute costs about
-- 3.3 bytes per raw point at 10-second points (compressed), more than the raw points
-- themselves (under 3 bytes once values are stored as decimals), and it is kept as long as
-- they are (90 days). The compressed raw points are read instead: a minute bucket of one
-- series is a few rows of one compressed batch. Hours and days outlive the raw points (2
-- and 10 years) and stay aggregates, over vigil.points_data (their value vigil._decimal).
-- An install upgraded from the layout before (a hypertable vigil.points and aggregates of
-- its value) keeps its hour and day buckets older than its oldest raw points in
-- vigil.points_hour_archive / points_day_archive, read below vigil.points_archive_until
-- (alembic/versions/0007/61_series_decimal_convert.sql).
do $$
declare
  v_tier  record;
begin
  if vigil.has_timescale() then
    perform add_retention_policy('vigil.points_data', interval '90 days', if_not_exists => true);
    -- Compression: a chunk (one day) is compressed once it ended an hour ago, its rows
    -- segmented by series and ordered by time (delta-of-delta times and integer values,
    -- Gorilla for the rare float values).
    if not exists (select from timescaledb_information.hypertables h
                    where h.hypertable_schema = 'vigil' and h.hypertable_name = 'points_data'
                      and h.compression_enabled) then
      alter table vigil.points_data set (timescaledb.compress,
                                         timescaledb.compress_segmentby = 'series_id',
                                         timescaledb.compress_orderby = 'at');
    end if;
    perform add_compression_policy('vigil.points_data', compress_after => interval '1 hour',
                                   if_not_exists => true);
    create or replace view vigil.points_minute as
    select p.series_id, time_bucket('1 minute', p.at) as bucket, count(*) as n,
           sum(p.value) as total, min(p.value) as min_value, max(p.value) as max_value
      from vigil.points p
     group by p.series_id, time_bucket('1 minute', p.at);
    comment on view vigil.points_minute is
      'TimescaleDB mode: the raw points per minute and series (count, sum, min, max), '
      'computed when read from vigil.points (kept as long as the raw points, 90 days).';
    for v_tier in
      select * from (values
        ('hour', interval '3 days', interval '1 hour', interval '30 minutes',
         interval '2 years', interval '7 days'),
        ('day', interval '30 days', interval '1 day', interval '1 hour',
         interval '10 years', interval '60 days')
      ) as t (tier, start_offset, end_offset, schedule, retention, compress_after)
    loop
      if not exists (select from pg_class c join pg_namespace n on n.oid = c.relnamespace
                      where n.nspname = 'vigil' and c.relname = 'points_' || v_tier.tier) then
        execute format(
          'create materialized view vigil.%I with (timescaledb.continuous, '
          || 'timescaledb.materialized_only = false) as '
          || 'select series_id, time_bucket(%L, at) as bucket, count(*) as n, '
          || 'sum(vigil._decimal(m, e, f, r)) as total, '
          || 'min(vigil._decimal(m, e, f, r)) as min_value, '
          || 'max(vigil._decimal(m, e, f, r)) as max_value '
          || 'from vigil.points_data group by series_id, time_bucket(%L, at) with no data',
          'points_' || v_tier.tier, '1 ' || v_tier.tier, '1 ' || v_tier.tier);
        execute format(
          'comment on view vigil.%I is %L', 'points_' || v_tier.tier,
          'Continuous aggregate of the raw points per ' || v_tier.tier || ' and series: count, '
          || 'sum, min and max; real-time (materialized_only = false). Tune its refresh and '
          || 'retention policies in timescaledb_information.jobs (docs/series.md).');
      end if;
      perform add_continuous_aggregate_policy(
        format('vigil.%I', 'points_' || v_tier.tier)::regclass,
        start_offset => v_tier.start_offset, end_offset => v_tier.end_offset,
        schedule_interval => v_tier.schedule, if_not_exists => true);
      perform add_retention_policy(format('vigil.%I', 'points_' || v_tier.tier)::regclass,
                                   v_tier.retention, if_not_exists => true);
      -- The aggregates are compressed too, after their refresh window, in batches of up to
      -- 1,000 buckets ordered by (series_id, bucket) rather than segmented by series: a
      -- series has only a few buckets per chunk (24 hours a day), and a batch of its own
      -- would carry the fixed cost of a compressed row and of each column's header for
      -- them alone (measured: bench/peers.py, docs/series.md). A read of one series skips
      -- the other batches by their series_id range (the batch metadata).
      -- Chunks compressed before keep the settings they were compressed with.
      if not exists (select from timescaledb_information.continuous_aggregates c
                       join timescaledb_information.compression_settings s
                         on s.hypertable_schema = c.materialization_hypertable_schema
                        and s.hypertable_name = c.materialization_hypertable_name
                      where c.view_schema = 'vigil' and c.view_name = 'points_' || v_tier.tier
                        and c.compression_enabled and s.attname = 'series_id'
                        and s.segmentby_column_index is null
                        and s.orderby_column_index = 1) then
        execute format('alter materialized view vigil.%I set (timescaledb.compress = true, '
                       || 'timescaledb.compress_segmentby = %L, '
                       || 'timescaledb.compress_orderby = %L)',
                       'points_' || v_tier.tier, '', 'series_id, bucket');
      end if;
      perform add_compression_policy(format('vigil.%I', 'points_' || v_tier.tier)::regclass,
                                     compress_after => v_tier.compress_after,
                                     if_not_exists => true);
    end loop;
  end if;
end $$;

-- The whole minutes of one series in a range, for alert rules (sql/80_rules.sql): portable
-- mode's minute rollup, or in TimescaleDB mode the raw points per minute through the
-- (series_id, at) index and chunk exclusion (the view points_minute groups by time_bucket,
-- which a range on its bucket cannot narrow). Inlined into the caller's query.
do $$
begin
  if vigil.has_timescale() then
    create or replace function vigil._series_minutes(p_series_id bigint, p_from timestamptz,
                                                     p_to timestamptz)
    returns table (bucket timestamptz, n bigint, total double precision,
                   min_value double precision, max_value double precision)
    language sql stable
    as $f$
      select date_trunc('minute', p.at, 'UTC'), count(*), sum(p.value), min(p.value),
             max(p.value)
        from vigil.points p
       where p.series_id = p_series_id and p.at >= p_from and p.at < p_to
       group by 1
    $f$;
  else
    create or replace function vigil._series_minutes(p_series_id bigint, p_from timestamptz,
                                                     p_to timestamptz)
    returns table (bucket timestamptz, n bigint, total double precision,
                   min_value double precision, max_value double precision)
    language sql stable
    as $f$
      select r.bucket, r.n, r.total, r.min_value, r.max_value from vigil.points_minute r
       where r.series_id = p_series_id and r.bucket >= p_from and r.bucket < p_to
    $f$;
  end if;
end $$;
comment on function vigil._series_minutes(bigint, timestamptz, timestamptz) is
  'The minute buckets (count, sum, min, max) of one series in [p_from, p_to): the minute '
  'rollup (portable mode) or the raw points (TimescaleDB mode).';

-- Queries --------------------------------------------------------------------------------

create or replace function vigil._series_dirty(p_granularity text, p_from timestamptz,
                                               p_to timestamptz)
returns tstzmultirange
language plpgsql
stable
as $$
declare
  v_raw    integer;
  v_mat    integer;
  v_oldest timestamptz;
  v_lo     bigint;
  v_hi     bigint;
begin
  -- TimescaleDB keeps the "written since the last refresh" marker itself: a transaction
  -- that writes points below the invalidation threshold logs their time range (lowest ..
  -- greatest, microseconds since 1970, both included) in the hypertable invalidation log,
  -- in the same transaction as the points; a refresh moves the entries to each aggregate's
  -- materialization invalidation log and deletes what it re-materialized. (Portable mode's
  -- own marker, a statement trigger with a transition table, would make TimescaleDB's COPY
  -- insert row by row instead of in batches, and nothing would know when to clear it.)
  -- The ranges are per transaction, not per series: a backfill makes every series read
  -- that range raw until the refresh. Entries outside the refresh policy's window stay
  -- until a manual refresh_continuous_aggregate (the aggregate is stale there meanwhile),
  -- so those buckets are read raw until then. Below the oldest raw point (retention dropped
  -- the chunks) the aggregate is all there is: no range reaches there.
  -- Cost, measured on the TimescaleDB test lane (PGlite, 2 series of 4,032 points, hourly /
  -- daily averages over 15 days of one series): writes none (TimescaleDB logs the ranges
  -- anyway); reads with nothing stale 5.3 / 1.8-2.2 ms, as before (5.4-6.1 / 2.2-2.5 ms);
  -- with one backfilled hour not yet refreshed 7.7-8.3 / 4.5-4.8 ms.
  select min(at) into v_oldest from vigil.points;
  select ca.raw_hypertable_id, ca.mat_hypertable_id,
         _timescaledb_functions.to_unix_microseconds(
           greatest(p_from, date_trunc(p_granularity, v_oldest, 'UTC'))),
         least(_timescaledb_functions.cagg_watermark(ca.mat_hypertable_id),
               _timescaledb_functions.to_unix_microseconds(p_to))
    into v_raw, v_mat, v_lo, v_hi
    from _timescaledb_catalog.continuous_agg ca
   where ca.user_view_schema = 'vigil' and ca.user_view_name = 'points_' || p_granularity;
  if v_oldest is null or v_hi <= v_lo then
    return '{}';
  end if;
  v_hi := v_hi - 1;  -- the last microsecond before the watermark (or p_to)
  return (
    select coalesce(range_agg(tstzrange(
             date_trunc(p_granularity,
                        _timescaledb_functions.to_timestamp(greatest(l.lo, v_lo)), 'UTC'),
             date_trunc(p_granularity,
                        _timescaledb_functions.to_timestamp(least(l.hi, v_hi)), 'UTC')
               + ('1 ' || p_granularity)::interval)), '{}')
      from (select lowest_modified_value, greatest_modified_value
              from _timescaledb_catalog.continuous_aggs_hypertable_invalidation_log
             where hypertable_id = v_raw
            union all
            select lowest_modified_value, greatest_modified_value
              from _timescaledb_catalog.continuous_aggs_materialization_invalidation_log
             where materialization_id = v_mat) as l (lo, hi)
     where l.lo <= v_hi and l.hi >= v_lo);
end
$$;
comment on function vigil._series_dirty(text, timestamptz, timestamptz) is
  'TimescaleDB mode: the buckets of one granularity in [p_from, p_to) that the continuous '
  'aggregate holds stale: changed since it materialized them, as TimescaleDB''s invalidation '
  'logs say, below its watermark and from the oldest raw point on. vigil.series_averages '
  'reads them from the raw points.';

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
  v_dirty text;           -- the query of d; null: nothing is stale
  v_fresh text := '';     -- the condition that keeps stale buckets out of an aggregate
  v_ranges tstzmultirange;
  v_parts text[] := '{}';
  v_hot   text := '';     -- portable: only buckets from the packed boundary on
  v_pk    constant text := '(select until from vigil.points_packed_until)';
  -- One bucket of raw points: the select list every raw part shares.
  v_raw   constant text :=
    'select date_trunc($5, p.at, ''UTC''), count(*), sum(p.value), min(p.value), max(p.value)';
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
  -- Read your writes, in both modes: buckets that received points since their aggregate was
  -- last refreshed (d: disjoint bucket-aligned ranges per series of s, e.g. a backfill of an
  -- old hour) are read from the raw points instead of from their stale aggregate.
  if vigil.has_timescale() then
    -- The continuous aggregate is real-time (raw points after its watermark); below the
    -- watermark, d is what TimescaleDB logged as changed since it materialized it
    -- (vigil._series_dirty), for every series alike.
    -- Minutes: from the raw points (points_minute is a view over them).
    v_tiers := case when p_granularity = 'minute' then '{}' else array[p_granularity] end;
    -- An upgraded install: buckets before the cut-off from the archive of the aggregate of
    -- the layout before (vigil.points_archive_until), the aggregate from there on.
    if p_granularity <> 'minute' and to_regclass('vigil.points_archive_until') is not null then
      execute 'select until from vigil.points_archive_until where tier = $1'
        into v_lo using p_granularity;
      if v_lo is null then
        v_lo := '-infinity';
      else
        v_parts := v_parts || format(
          'select a.bucket, a.n, a.total, a.min_value, a.max_value from vigil.%I a
            where a.series_id in (select id from s) and a.bucket >= $3
              and a.bucket < least($4, %L::timestamptz)',
          'points_' || p_granularity || '_archive', v_lo);
      end if;
    end if;
    if p_granularity <> 'minute' then
      v_ranges := vigil._series_dirty(p_granularity, greatest(v_from, v_lo), v_to);
      if not isempty(v_ranges) then
        v_dirty := 'select s.id as series_id, x.r from s, unnest($7) as x (r)';
      end if;
    end if;
  else
    -- Portable: this tier's rollup before its watermark, then each finer rollup up to its
    -- own watermark, then raw points (at most the last minute or so): the newest, partial
    -- bucket costs little even for days. d: vigil.points_invalidations, consumed by the
    -- next vigil.refresh_series_rollups.
    v_tiers := case p_granularity when 'day' then array['day', 'hour', 'minute']
                                  when 'hour' then array['hour', 'minute']
                                  else array['minute'] end;
    -- Before the packed boundary: the packed rows (their day sums, hour sums, or raw
    -- points), plus points written there since they were packed (usually none).
    v_hot := ' and %s >= ' || v_pk;
    v_parts := array[
      format('select k.day, k.n::bigint, k.total, k.min_value, k.max_value
                from vigil.points_packed k
               where $5 = ''day'' and k.series_id in (select id from s)
                 and k.day >= $3 and k.day < least($4, %s)', v_pk),
      format('select k.day + (h.i - 1) * interval ''1 hour'', h.n::bigint, h.total, h.lo, h.hi
                from vigil.points_packed k
               cross join lateral unnest(k.hour_n, k.hour_total, k.hour_min, k.hour_max)
                     with ordinality as h (n, total, lo, hi, i)
               where $5 = ''hour'' and k.hour_n is not null and k.series_id in (select id from s)
                 and k.day >= date_trunc(''day'', $3, ''UTC'') and k.day < least($4, %s)
                 and h.n > 0 and k.day + (h.i - 1) * interval ''1 hour'' >= $3
                 and k.day + (h.i - 1) * interval ''1 hour'' < $4', v_pk),
      format('%s from vigil.points_packed k
               cross join lateral vigil._unpack(k.day, k.gaps, k.vals) p
               where ($5 = ''minute'' or ($5 = ''hour'' and k.hour_n is null))
                 and k.gaps is not null and k.series_id in (select id from s)
                 and k.day >= date_trunc(''day'', $3, ''UTC'') and k.day < least($4, %s)
                 and p.at >= $3 and p.at < $4
               group by 1', v_raw, v_pk),
      format('%s from vigil.points p
               where p.series_id in (select id from s) and p.at >= $3
                 and p.at < least($4, %s)
               group by 1', v_raw, v_pk)];
    v_dirty := 'select i.series_id,
                       unnest(range_agg(tstzrange(date_trunc($5, i.lo, ''UTC''),
                                                  date_trunc($5, i.hi, ''UTC'') + $6))) as r
                  from vigil.points_invalidations i
                 where i.series_id in (select id from s)
                 group by i.series_id';
  end if;
  if v_dirty is not null then
    v_fresh := ' and not exists (select from d where d.series_id = r.series_id
                                                and d.r @> r.bucket)';
  end if;
  foreach v_tier in array v_tiers loop
    if vigil.has_timescale() then
      v_wm := 'infinity';
    else
      select greatest(materialized_until, v_lo) into v_wm
        from vigil.series_watermarks where tier = v_tier;
    end if;
    if v_wm > v_lo then
      v_parts := v_parts || format(
        'select %s, r.n, r.total, r.min_value, r.max_value
           from vigil.%I r
          where r.series_id in (select id from s) and r.bucket >= greatest($3, %L::timestamptz)
            and r.bucket < least($4, %L::timestamptz)%s%s',
        case when v_tier = p_granularity then 'r.bucket'
             else format('date_trunc(%L, r.bucket, ''UTC'')', p_granularity) end,
        'points_' || v_tier, v_lo, v_wm, v_fresh, format(v_hot, 'r.bucket'));
      v_lo := v_wm;
    end if;
  end loop;
  if v_dirty is not null then
    -- The stale buckets, each range of d read through the (series_id, at) index: nothing
    -- at all when d is empty, whatever the length of [p_from, p_to).
    v_parts := v_parts || format(
      '%s from d cross join lateral (
           select p.at, p.value from vigil.points p
            where p.series_id = d.series_id and p.at >= greatest(lower(d.r), $3)
              and p.at < least(upper(d.r), $4, %L::timestamptz)%s) p
        group by 1',
      v_raw, v_lo, format(v_hot, 'p.at'));
  end if;
  if v_lo < 'infinity' then
    v_parts := v_parts || format(
      '%s from vigil.points p
        where p.series_id in (select id from s) and p.at >= greatest($3, %L::timestamptz)
          and p.at < $4%s
        group by 1',
      v_raw, v_lo, format(v_hot, 'p.at'));
  end if;
  return query execute
    'with s as (select id from vigil.series
                 where name = $1 and labels @> coalesce($2, ''{}''::jsonb)), '
    || coalesce('d as (' || v_dirty || '), ', '')
    || 'parts (bucket, n, total, min_value, max_value) as ('
    || array_to_string(v_parts, ' union all ')
    || ') select bucket, sum(total) / sum(n), min(min_value), max(max_value), sum(n)::bigint
            from parts group by bucket order by bucket desc'
  using p_name, p_labels, v_from, v_to, p_granularity, v_step, v_ranges;
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
         greatest((select max(p.at) from vigil.points p where p.series_id = s.id),
                  (select max(k.last_at) from vigil.points_packed k where k.series_id = s.id))
           as last_at
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
