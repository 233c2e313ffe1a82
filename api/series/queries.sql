-- Numeric series: batch writes, the metrics-server routes and the charts page (loaded by
-- api/series/__init__.py).

-- name: series_ids
-- The id of each series key (names and labels as parallel arrays), creating new series;
-- ord is the key's 1-based position.
select ord, id from vigil.series_ids(%s::text[], %s::jsonb[]);

-- name: series_forgotten
-- The epoch of the API's series-id cache (valid while it holds): vigil.series_forgotten
-- (changes whenever series were deleted; random per install), the database's oid (differs
-- in a database recreated under the same name) and the highest series id issued (falls
-- when ids restart).
select case when f.is_called then f.last_value else 0 end,
       (select d.oid from pg_database d where d.datname = current_database()),
       case when i.is_called then i.last_value else 0 end
  from vigil.series_forgotten f, vigil.series_id_seq i;

-- name: points_copy
-- The points of a batch, binary COPY: (series_id int8, at timestamptz, value float8).
copy vigil.points (series_id, at, value) from stdin (format binary);

-- name: points_copy_decimal
-- TimescaleDB mode: the same points as stored (api.series.store.decimal_rows): value as
-- (m, e) when it is exactly m / 10^e, (m, e, r) when it is that plus a tiny residual r, else
-- as f (see vigil._decimal in sql/60_series.sql).
copy vigil.points_data (series_id, at, m, e, f, r) from stdin (format binary);

-- name: points_put
-- A batch that holds a point already stored (or one twice), as columns (series ids, times,
-- values): stored replacing such points, the last value winning (vigil.put_points).
select vigil.put_points(%s::int8[], %s::timestamptz[], %s::float8[]);

-- name: points_layout
-- Whether points are stored with decimal values (TimescaleDB mode: vigil.points_data).
select to_regclass('vigil.points_data') is not null;

-- name: series_names
-- GET /v1/metrics: distinct series names, ascending.
select distinct name from vigil.series order by name;

-- name: series_averages
-- Buckets of one series (name, labels as JSON or null for any, granularity, from, to),
-- newest first: bucket start, average, minimum, maximum, count.
select bucket, avg, min, max, n from vigil.series_averages(%s, %s::jsonb, %s, %s, %s);

-- name: series_search
-- The charts page's picker: series whose name or labels contain the text (at most 100).
select id, name, labels, last_at from vigil.series_search(%s, 100);
