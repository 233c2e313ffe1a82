-- Series storage conversion, TimescaleDB mode, step 1 of 2 (before 60_series.sql): an install
-- in the layout before 0007 (vigil.points a hypertable of (series_id, at, value), continuous
-- aggregates points_minute, points_hour and points_day of its value) puts them aside as
-- vigil.points_v1 and points_minute_v1 / points_hour_v1 / points_day_v1 (their policies
-- stay with them). 60_series.sql then creates the new layout (vigil.points_data with values
-- as decimals, the view vigil.points, aggregates of the decimals) and
-- 61_series_decimal_convert.sql moves the data over. A no-op in portable mode and on an
-- install already in the new layout.
do $$
declare
  v_tier text;
begin
  if not vigil.has_timescale()
     or not exists (select from pg_class c join pg_namespace n on n.oid = c.relnamespace
                     where n.nspname = 'vigil' and c.relname = 'points' and c.relkind = 'r') then
    return;
  end if;
  foreach v_tier in array array['minute', 'hour', 'day'] loop
    if to_regclass(format('vigil.%I', 'points_' || v_tier)) is not null then
      execute format('alter materialized view vigil.%I rename to %I',
                     'points_' || v_tier, 'points_' || v_tier || '_v1');
    end if;
  end loop;
  alter table vigil.points rename to points_v1;
end $$;
