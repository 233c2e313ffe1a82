-- Revision 0008, before 60_series.sql: one point per series and time. The raw points get a
-- unique (series_id, at) index there; points stored twice before (a sender that retried a
-- batch that had been stored) are made one here, keeping one of the rows (retries carry the
-- same value). Portable mode: the hot table vigil.points (days packed before keep what
-- they hold; a point sent again for such a day replaces its packed twin when the day is
-- packed again). TimescaleDB mode: vigil.points_data, compressed chunks included.
do $$
begin
  if to_regclass('vigil.points_data') is not null then
    -- No writer adds a twin between this and the index (an API still running the old code).
    lock table vigil.points_data in share row exclusive mode;
    -- Twins in compressed chunks: no cap on the rows decompressed by the delete.
    perform set_config('timescaledb.max_tuples_decompressed_per_dml_transaction', '0', true);
    create temp table points_twins on commit drop as
    select distinct on (p.series_id, p.at) p.series_id, p.at, p.m, p.e, p.f, p.r
      from vigil.points_data p
      join (select series_id, at from vigil.points_data
             group by series_id, at having count(*) > 1) d
        on d.series_id = p.series_id and d.at = p.at
     order by p.series_id, p.at;
    delete from vigil.points_data p using points_twins t
     where p.series_id = t.series_id and p.at = t.at;
    insert into vigil.points_data (series_id, at, m, e, f, r)
    select series_id, at, m, e, f, r from points_twins;
  elsif to_regclass('vigil.points') is not null
        and (select relkind from pg_class where oid = 'vigil.points'::regclass) = 'r' then
    lock table vigil.points in share row exclusive mode;
    -- The rollup buckets that counted a twin are re-computed by the next refresh.
    with gone as (
      delete from vigil.points p
       where p.ctid in (select x.ctid
                          from (select ctid, row_number() over (partition by series_id, at
                                                                order by ctid desc) as n
                                  from vigil.points) x
                         where x.n > 1)
      returning p.series_id, p.at
    )
    insert into vigil.points_invalidations (series_id, lo, hi)
    select series_id, min(at), max(at) from gone group by series_id;
  end if;
end $$;
