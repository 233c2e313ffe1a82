-- Numeric series: batch writes, the metrics-server routes and the charts page (loaded by
-- api/series/__init__.py).

-- name: series_ids
-- The id of each series key (names and labels as parallel arrays), creating new series;
-- ord is the key's 1-based position.
select ord, id from vigil.series_ids(%s::text[], %s::jsonb[]);

-- name: series_forgotten
-- Changes whenever series were deleted: the API's series-id cache is valid while it does not.
select case when is_called then last_value else 0 end from vigil.series_forgotten;

-- name: points_copy
-- The points of a batch, binary COPY: (series_id int8, at timestamptz, value float8).
copy vigil.points (series_id, at, value) from stdin (format binary);

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
