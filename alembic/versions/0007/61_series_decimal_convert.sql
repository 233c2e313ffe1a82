-- Series storage conversion, TimescaleDB mode, step 2 of 2 (after 60_series.sql; see
-- 59_series_decimal_aside.sql): the raw points of vigil.points_v1 go into vigil.points_data,
-- their values encoded (vigil._decimal_encode; reads give back the same float8). The new
-- aggregates points_hour and points_day start empty and are real-time: every bucket is
-- read from the raw points (exactly) until the hourly job refresh_series_rollups_job (or
-- `vigil jobs run`) materializes them. Buckets of the old aggregates before the oldest raw
-- chunk (their raw points expired; the old aggregates were all there was) move to the
-- compressed hypertables vigil.points_hour_archive and points_day_archive, which
-- vigil.series_averages reads before vigil.points_archive_until, with the retention the old
-- aggregates had. The minute aggregate goes: the raw points hold the same minutes (both were
-- kept 90 days). Then the old objects and their policies are dropped.
do $$
declare
  v_cut       timestamptz;
  v_tier      text;
  v_retention interval;
  v_n         bigint;
  v_keep      interval;
  v_job       record;
begin
  if to_regclass('vigil.points_v1') is null then
    return;
  end if;
  insert into vigil.points_data (series_id, at, m, e, f)
  select p.series_id, p.at, d.m, d.e, d.f
    from vigil.points_v1 p cross join lateral vigil._decimal_encode(p.value) d;
  -- Chunks are UTC days: before the oldest, the raw points are gone (retention).
  select min(c.range_start) into v_cut from timescaledb_information.chunks c
   where c.hypertable_schema = 'vigil' and c.hypertable_name = 'points_v1';
  v_cut := coalesce(v_cut, date_trunc('day', now(), 'UTC'));
  -- The raw points' retention and compression age as a DBA tuned them on the old table.
  for v_job in
    select j.proc_name, j.config from timescaledb_information.jobs j
     where j.hypertable_schema = 'vigil' and j.hypertable_name = 'points_v1'
       and j.proc_name in ('policy_retention', 'policy_compression')
  loop
    if v_job.proc_name = 'policy_retention' and v_job.config ? 'drop_after' then
      perform remove_retention_policy('vigil.points_data', if_exists => true);
      perform add_retention_policy('vigil.points_data',
                                   (v_job.config ->> 'drop_after')::interval);
    elsif v_job.proc_name = 'policy_compression' and v_job.config ? 'compress_after' then
      perform remove_compression_policy('vigil.points_data', if_exists => true);
      perform add_compression_policy('vigil.points_data',
                                     compress_after => (v_job.config ->> 'compress_after')
                                                         ::interval);
    end if;
  end loop;
  -- Not before the oldest day the new retention policy keeps for more than a day (+ 2
  -- days): the hourly refresh job materializes the days after the cut-off before retention
  -- can drop their raw points, and one stray old point (timestamps back to 1970 are
  -- accepted) does not leave the years of old buckets before it without a source.
  select (j.config ->> 'drop_after')::interval into v_keep
    from timescaledb_information.jobs j
   where j.proc_name = 'policy_retention' and j.hypertable_schema = 'vigil'
     and j.hypertable_name = 'points_data';
  v_cut := greatest(v_cut, date_trunc('day', now() - coalesce(v_keep, interval '90 days'), 'UTC')
                           + interval '2 days');
  foreach v_tier in array array['hour', 'day'] loop
    if to_regclass(format('vigil.%I', 'points_' || v_tier || '_v1')) is null then
      continue;
    end if;
    execute format('select count(*) from vigil.%I where bucket < $1',
                   'points_' || v_tier || '_v1') into v_n using v_cut;
    if v_n = 0 then
      continue;
    end if;
    select (j.config ->> 'drop_after')::interval into v_retention
      from timescaledb_information.jobs j
     where j.proc_name = 'policy_retention' and j.hypertable_schema = 'vigil'
       and j.hypertable_name = 'points_' || v_tier || '_v1';
    create table if not exists vigil.points_archive_until (
      tier  text not null,
      until timestamptz not null,
      constraint points_archive_until_pkey primary key (tier),
      constraint points_archive_until_tier_check check (tier in ('hour', 'day'))
    );
    comment on table vigil.points_archive_until is
      'TimescaleDB mode, an install upgraded from the layout before 0007: per tier, the '
      'buckets before `until` are read from vigil.points_<tier>_archive, the later ones from '
      'the continuous aggregate vigil.points_<tier>.';
    execute format(
      'create table vigil.%I (
         series_id bigint not null,
         bucket    timestamptz not null,
         n         bigint not null,
         total     double precision not null,
         min_value double precision not null,
         max_value double precision not null)', 'points_' || v_tier || '_archive');
    execute format('comment on table vigil.%I is %L', 'points_' || v_tier || '_archive',
      'TimescaleDB mode, an install upgraded from the layout before 0007: the ' || v_tier
      || ' buckets of the aggregate of that layout before vigil.points_archive_until (their '
      || 'raw points had expired); read by vigil.series_averages; compressed, with a '
      || 'retention policy.');
    perform create_hypertable(format('vigil.%I', 'points_' || v_tier || '_archive'), 'bucket',
                              chunk_time_interval => interval '60 days');
    execute format('insert into vigil.%I select series_id, bucket, n, total, min_value, '
                   'max_value from vigil.%I where bucket < $1 order by series_id, bucket',
                   'points_' || v_tier || '_archive', 'points_' || v_tier || '_v1')
      using v_cut;
    execute format('alter table vigil.%I set (timescaledb.compress, '
                   'timescaledb.compress_segmentby = ''series_id'', '
                   'timescaledb.compress_orderby = ''bucket'')',
                   'points_' || v_tier || '_archive');
    perform compress_chunk(c, if_not_compressed => true)
       from show_chunks(format('vigil.%I', 'points_' || v_tier || '_archive')::regclass) c;
    perform add_retention_policy(format('vigil.%I', 'points_' || v_tier || '_archive')::regclass,
                                 coalesce(v_retention, case v_tier when 'hour' then interval '2 years'
                                                                   else interval '10 years' end),
                                 if_not_exists => true);
    insert into vigil.points_archive_until (tier, until) values (v_tier, v_cut);
  end loop;
  drop materialized view if exists vigil.points_minute_v1;
  drop materialized view if exists vigil.points_hour_v1;
  drop materialized view if exists vigil.points_day_v1;
  drop table vigil.points_v1;
end $$;
