-- Scheduling. TimescaleDB mode: jobs registered with add_job and policies.
-- Portable mode: vigil.portable_jobs rows, run by the notifier through vigil.run_due_jobs.

create or replace function vigil._delete_expired(p_table regclass, p_column text,
                                                 p_now timestamptz, p_keep interval)
returns integer
language plpgsql
as $$
declare
  v_n integer;
begin
  execute format('delete from %s where %I < $1', p_table, p_column) using p_now - p_keep;
  get diagnostics v_n = row_count;
  return v_n;
end
$$;
comment on function vigil._delete_expired(regclass, text, timestamptz, interval) is
  'Portable mode retention: deletes the rows of p_table whose p_column is older than '
  'p_keep before p_now; returns how many.';

create or replace function vigil.prune_metric_history(p_now timestamptz, p_config jsonb)
returns integer
language sql
as $$
  select vigil._delete_expired('vigil.metric_history', 'at', p_now,
                               coalesce((p_config ->> 'retention')::interval, '90 days'))
$$;
comment on function vigil.prune_metric_history(timestamptz, jsonb) is
  'Portable mode retention: deletes metric history older than config.retention (default 90 days).';

create or replace function vigil._job_detect(p_now timestamptz, p_config jsonb) returns integer
language sql
as $$ select vigil.detect(p_now) $$;
comment on function vigil._job_detect(timestamptz, jsonb) is 'Portable job entry for vigil.detect.';

create or replace function vigil._job_check_stalls(p_now timestamptz, p_config jsonb)
returns integer
language sql
as $$ select vigil.check_stalls(p_now) $$;
comment on function vigil._job_check_stalls(timestamptz, jsonb) is
  'Job entry for vigil.check_stalls.';

insert into vigil.portable_jobs (job, call, schedule_interval, config) values
  ('detect', 'vigil._job_detect', interval '1 second', '{}'),
  ('prune_metric_history', 'vigil.prune_metric_history', interval '1 hour',
   '{"retention": "90 days"}')
on conflict (job) do nothing;

create or replace function vigil.run_due_jobs(p_now timestamptz default now(),
                                              p_only text[] default null,
                                              p_skip text[] default null,
                                              p_limit integer default null) returns integer
language plpgsql
as $$
declare
  v_job vigil.portable_jobs;
  v_n   integer := 0;
begin
  for v_job in
    select * from vigil.portable_jobs
     where enabled and next_run_at <= p_now
       and (p_only is null or job = any (p_only))
       and (p_skip is null or job <> all (p_skip))
     order by next_run_at
     limit p_limit
       for update skip locked
  loop
    begin
      execute format('select %s($1, $2)', v_job.call::regproc) using p_now, v_job.config;
      update vigil.portable_jobs
         set next_run_at = p_now + schedule_interval, last_error = null
       where job = v_job.job;
    exception when others then
      update vigil.portable_jobs
         set next_run_at = p_now + schedule_interval, last_error = sqlerrm
       where job = v_job.job;
    end;
    v_n := v_n + 1;
  end loop;
  return v_n;
end
$$;
comment on function vigil.run_due_jobs(timestamptz, text[], text[], integer) is
  'Portable mode scheduler tick: runs each enabled job whose next_run_at has come (only the '
  'jobs in p_only, if given; none in p_skip; at most p_limit), each in its own '
  'subtransaction, and schedules its next run. The notifier runs detect on its alert loop '
  'and every other job on a separate maintenance connection, one job per transaction, so a '
  'slow index build never delays an alert and no job holds locks for the others.';

-- TimescaleDB mode: hypertable, retention policy and the detector job.
do $$
begin
  if vigil.has_timescale() then
    perform create_hypertable('vigil.metric_history', 'at',
                              chunk_time_interval => interval '7 days',
                              if_not_exists => true, migrate_data => true);
    perform add_retention_policy('vigil.metric_history', interval '90 days',
                                 if_not_exists => true);
    if not exists (select from timescaledb_information.jobs
                    where proc_schema = 'vigil' and proc_name = 'detect_job') then
      perform add_job('vigil.detect_job', interval '5 seconds');
    end if;
    -- The portable scheduler has nothing to do in this mode.
    update vigil.portable_jobs set enabled = false;
  end if;
end $$;

-- One view of every Vigil job and its last run, whichever scheduler runs it.
do $$
begin
  if vigil.has_timescale() then
    create or replace view vigil.jobs as
    select 'timescaledb'::text as scheduler, j.job_id::text as job,
           (j.proc_schema || '.' || j.proc_name)::text as call, j.schedule_interval,
           j.scheduled as enabled,
           -- job_stats says -infinity for "never": null instead (clients cannot load it).
           case when isfinite(s.next_start) then s.next_start end as next_run_at,
           s.last_run_status::text as last_status,
           case when isfinite(s.last_run_started_at) then s.last_run_started_at end
             as last_run_at,
           j.hypertable_name::text as hypertable
      from timescaledb_information.jobs j
      left join timescaledb_information.job_stats s using (job_id)
     where j.proc_schema = 'vigil' or j.hypertable_schema = 'vigil';
  else
    create or replace view vigil.jobs as
    select 'portable'::text as scheduler, p.job, p.call, p.schedule_interval, p.enabled,
           p.next_run_at,
           case when p.last_error is null then 'Success' else 'Failed: ' || p.last_error end
             as last_status,
           h.last_finished_at as last_run_at, null::text as hypertable
      from vigil.portable_jobs p
      left join vigil.job_heartbeats h on h.job = p.job;
  end if;
end $$;
comment on view vigil.jobs is
  'Every Vigil job with its schedule and last run: TimescaleDB jobs and policies in TimescaleDB '
  'mode, vigil.portable_jobs in portable mode.';
