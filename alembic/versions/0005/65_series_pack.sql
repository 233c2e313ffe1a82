-- Series storage conversion (portable mode): points written in the layout before packed days
-- (everything in vigil.points) are packed now, so that every read finds them where it looks:
-- whole UTC days that ended over the job's `after` ago move into vigil.points_packed. A
-- no-op on an empty database; in TimescaleDB mode the new compression policy compresses the
-- old chunks at its first run.
select vigil.pack_series_points(now(), j.config)
  from vigil.portable_jobs j
 where j.job = 'pack_series_points' and exists (select from vigil.points);
