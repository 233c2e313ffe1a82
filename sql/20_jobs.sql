-- Jobs: the scheduler core every feature registers its periodic work with.
-- TimescaleDB mode: features register jobs with add_job and policies.
-- Portable mode: features seed vigil.portable_jobs rows, run by the notifier through
-- vigil.run_due_jobs. vigil._register_job does both sides of a job.
-- Exposes: tables vigil.job_heartbeats and vigil.portable_jobs; vigil._heartbeat(),
-- vigil.check_stalls() (stall alerts through the outbox), vigil.run_due_jobs(),
-- vigil._register_job(), the portable retention helper vigil._delete_expired(), daily
-- partitions and retention of a feature's table (vigil._day_partition_ensure(),
-- _day_partitions_ensure(), _stage_window(), _retention()), the
-- view vigil.jobs, and maintenance on demand: vigil.maintenance_jobs(),
-- vigil.run_maintenance_job() (`vigil jobs run`).

create table if not exists vigil.job_heartbeats (
  job              text primary key,
  last_started_at  timestamptz,
  last_finished_at timestamptz,
  runs             bigint not null default 0,
  last_result      integer,
  stalled          boolean not null default false,
  stall_after      interval not null default interval '2 minutes'
);
comment on table vigil.job_heartbeats is
  'One row per Vigil job: when it last ran. A stalled detector is noticed from here.';
select vigil._comment_columns('vigil.job_heartbeats',
  'last_result', 'Job-specific count, e.g. transitions made.',
  'stalled', 'Set while a stall alert is open for the job.',
  'stall_after', 'A job that has not finished a run for this long is reported as stalled.');

create table if not exists vigil.portable_jobs (
  job               text primary key,
  call              text not null,
  schedule_interval interval not null,
  next_run_at       timestamptz not null default now(),
  enabled           boolean not null default true,
  last_error        text,
  config            jsonb not null default '{}',
  constraint portable_jobs_interval_check check (schedule_interval >= interval '100 milliseconds')
);
comment on table vigil.portable_jobs is
  'Portable mode only: jobs the notifier process runs (vigil.run_due_jobs) because no '
  'in-database scheduler exists. Update schedule_interval or enabled to tune.';
select vigil._comment_columns('vigil.portable_jobs',
  'call', 'SQL function called as call(now, config); its name is checked with ::regproc.',
  'config', 'Passed to the job function, e.g. {"retention": "90 days"}.');

create or replace function vigil._heartbeat(p_job text, p_result integer) returns void
language sql
as $$
  insert into vigil.job_heartbeats as h (job, last_started_at, last_finished_at, runs, last_result)
  values (p_job, statement_timestamp(), clock_timestamp(), 1, p_result)
  on conflict (job) do update
    set last_started_at = excluded.last_started_at,
        last_finished_at = excluded.last_finished_at,
        runs = h.runs + 1, last_result = excluded.last_result
$$;
comment on function vigil._heartbeat(text, integer) is 'Records that a job has just run.';

create or replace function vigil.check_stalls(p_now timestamptz default now()) returns integer
language plpgsql
as $$
declare
  v_h    vigil.job_heartbeats;
  v_rule vigil.alert_rules;
  v_n    integer := 0;
begin
  for v_h in
    update vigil.job_heartbeats
       set stalled = not stalled
     where stalled <> (last_finished_at < p_now - stall_after)
    returning *
  loop
    -- The built-in rule vigil-jobs (15_alerts): its instance per job, its history, its
    -- silences; the message keeps the unit of order 'vigil'.
    select * into v_rule from vigil.alert_rules where name = 'vigil-jobs';
    perform vigil._instance_set(
      v_rule, 'job:' || v_h.job, jsonb_build_object('job', v_h.job),
      case when v_h.stalled then 'firing' else 'normal' end, null,
      vigil._utc(v_h.last_finished_at),
      case when v_h.stalled then 'no run finished for ' || v_h.stall_after else 'runs again' end,
      p_now,
      vigil._rule_text(v_rule, case when v_h.stalled then 'firing' else 'normal' end,
                       case when v_h.stalled
                            then 'Alert: Vigil job ' || v_h.job || ' has not run since '
                                 || vigil._utc(v_h.last_finished_at)
                            else 'OK again: Vigil job ' || v_h.job || ' runs again' end,
                       jsonb_build_object('instance', v_h.job, 'name', v_h.job,
                                          'since', vigil._utc(v_h.last_finished_at))),
      'vigil');
    v_n := v_n + 1;
  end loop;
  return v_n;
end
$$;
comment on function vigil.check_stalls(timestamptz) is
  'The built-in rule vigil-jobs: a job that stops running for longer than its stall_after '
  'fires (event and outbox message), and recovers when it runs again. Called by the '
  'notifier on its poll tick in both modes.';

create or replace function vigil._job_check_stalls(p_now timestamptz, p_config jsonb)
returns integer
language sql
as $$ select vigil.check_stalls(p_now) $$;
comment on function vigil._job_check_stalls(timestamptz, jsonb) is
  'Job entry for vigil.check_stalls.';

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

-- Daily partitions (portable mode) and retention of a feature's table: vigil.journal_lines
-- and vigil.requests use these through their own public wrappers.

create or replace function vigil._day_partition_ensure(p_table text, p_prefix text,
                                                       p_job text, p_day date)
returns boolean
language plpgsql
as $$
declare
  v_name text := p_prefix || to_char(p_day, 'YYYYMMDD');
  v_from timestamptz := (p_day::timestamp at time zone 'UTC');
begin
  if vigil.has_timescale() or to_regclass('vigil.' || v_name) is not null then
    return false;
  end if;
  -- Concurrent ingest requests may both see the partition missing.
  perform pg_advisory_xact_lock(hashtext(format('vigil.%s partitions', p_table)));
  if to_regclass('vigil.' || v_name) is not null then
    return false;
  end if;
  execute format('create table vigil.%I partition of vigil.%I'
                 ' for values from (%L) to (%L)', v_name, p_table, v_from,
                 v_from + interval '1 day');
  execute format('comment on table vigil.%I is %L', v_name,
                 'One UTC day (' || p_day || ') of vigil.' || p_table || '; dropped by '
                 || 'vigil.' || p_job || ' after the retention.');
  return true;
end
$$;
comment on function vigil._day_partition_ensure(text, text, text, date) is
  'Portable mode: creates vigil.<p_prefix>YYYYMMDD, the partition of vigil.<p_table> for '
  'one UTC day, unless it exists (its comment names the job p_job that drops it). Returns '
  'true when it created one. No-op in TimescaleDB mode.';

create or replace function vigil._day_partitions_ensure(p_table text, p_prefix text,
                                                        p_job text, p_now timestamptz,
                                                        p_retention interval,
                                                        p_ahead integer)
returns integer
language plpgsql
as $$
declare
  v_day date;
  v_n   integer := 0;
begin
  for v_day in
    select generate_series(((p_now - p_retention) at time zone 'UTC')::date,
                           (p_now at time zone 'UTC')::date + p_ahead, interval '1 day')::date
  loop
    if vigil._day_partition_ensure(p_table, p_prefix, p_job, v_day) then
      v_n := v_n + 1;
    end if;
  end loop;
  return v_n;
end
$$;
comment on function vigil._day_partitions_ensure(text, text, text, timestamptz, interval,
                                                  integer) is
  'Portable mode: creates the missing daily partitions of vigil.<p_table> (see '
  'vigil._day_partition_ensure) from the UTC day p_retention before p_now to p_ahead days '
  'after today. Returns how many it created.';

create or replace function vigil._stage_window(p_stage text, p_table text, p_prefix text,
                                              p_job text, p_oldest timestamptz,
                                              p_newest timestamptz,
                                              out total integer, out expired integer,
                                              out future integer)
language plpgsql
as $$
declare
  v_day date;
begin
  execute format('select count(*), count(*) filter (where at < $1),'
                 ' count(*) filter (where at > $2) from pg_temp.%I', p_stage)
     into total, expired, future using p_oldest, p_newest;
  for v_day in execute format('select distinct (at at time zone ''UTC'')::date'
                              ' from pg_temp.%I where at between $1 and $2', p_stage)
                 using p_oldest, p_newest
  loop
    perform vigil._day_partition_ensure(p_table, p_prefix, p_job, v_day);
  end loop;
end
$$;
comment on function vigil._stage_window(text, text, text, text, timestamptz, timestamptz) is
  'Ingest of a staged batch (this session''s temp table p_stage, column at): counts its rows '
  '(total), those before p_oldest (expired) and after p_newest (future), and makes sure the '
  'daily partition of vigil.<p_table> exists for every day of the rows in between (see '
  'vigil._day_partition_ensure).';

create or replace function vigil._retention(p_table text, p_job text) returns interval
language plpgsql stable
as $$
declare
  v_retention interval;
begin
  if vigil.has_timescale() then
    -- Dynamic: timescaledb_information does not exist in portable mode.
    execute $q$select (config ->> 'drop_after')::interval
                 from timescaledb_information.jobs
                where proc_name = 'policy_retention' and hypertable_schema = 'vigil'
                  and hypertable_name = $1
                limit 1$q$ into v_retention using p_table;
  else
    select (config ->> 'retention')::interval into v_retention
      from vigil.portable_jobs where job = p_job;
  end if;
  return coalesce(v_retention, interval '14 days');
end
$$;
comment on function vigil._retention(text, text) is
  'How long rows of vigil.<p_table> are kept: its retention policy (TimescaleDB) or the '
  'config.retention of the portable job p_job; 14 days by default.';

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

create or replace function vigil._register_job(p_job text, p_call text, p_every interval,
                                               p_config jsonb default '{}',
                                               p_timescale_job text default null,
                                               p_timescale_every interval default null)
returns void
language plpgsql
as $$
begin
  -- A row that exists keeps what was tuned. In TimescaleDB mode the portable scheduler has
  -- nothing to do: the row stays disabled, and the work is done by the procedure
  -- p_timescale_job (job_id, config), scheduled once with add_job, or by the feature's
  -- policies.
  insert into vigil.portable_jobs (job, call, schedule_interval, config)
  values (p_job, p_call, p_every, p_config)
  on conflict (job) do nothing;
  if vigil.has_timescale() then
    update vigil.portable_jobs set enabled = false where job = p_job;
    if p_timescale_job is not null
       and not exists (select from timescaledb_information.jobs
                        where proc_schema || '.' || proc_name = p_timescale_job) then
      perform add_job(p_timescale_job::regproc, p_timescale_every);
    end if;
  end if;
end
$$;
comment on function vigil._register_job(text, text, interval, jsonb, text, interval) is
  'Registers a job in both modes: the row p_job of vigil.portable_jobs (p_call every p_every '
  'with p_config), disabled in TimescaleDB mode, where the procedure p_timescale_job, if '
  'given, is scheduled with add_job every p_timescale_every.';

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

-- ---------------------------------------------------------------------------------------
-- Maintenance jobs on demand (`vigil jobs run`)

create or replace function vigil._alert_jobs() returns text[]
language sql immutable
as $$ select array['detect', 'evaluate_rules', 'vigil.detect_job', 'vigil.evaluate_rules_job'] $$;
comment on function vigil._alert_jobs() is
  'The jobs that evaluate alerts (portable job names and their TimescaleDB procedures): run '
  'by the notifier''s alert loop on every tick, or by TimescaleDB every few seconds. Every '
  'other registered job is maintenance.';

create or replace function vigil.maintenance_jobs(p_now timestamptz default now())
returns table (job text, job_id integer, schedule_interval interval, enabled boolean,
               due boolean)
language plpgsql stable
as $$
begin
  if not vigil.has_timescale() then
    return query
      select p.job, null::integer, p.schedule_interval, p.enabled,
             p.enabled and p.next_run_at <= p_now
        from vigil.portable_jobs p
       where p.job <> all (vigil._alert_jobs())
       order by 3, 1;
  else
    -- A policy is named after its kind and hypertable: "refresh_continuous_aggregate
    -- points_hour", "compression journal"; a job procedure by its name.
    return query
      select case when j.proc_name like 'policy\_%' and j.hypertable_name is not null
                  then substr(j.proc_name, 8) || ' ' || j.hypertable_name
                  else j.proc_name::text end,
             j.job_id, j.schedule_interval, j.scheduled,
             j.scheduled and (s.next_start is null or s.next_start <= p_now)
        from timescaledb_information.jobs j
        left join timescaledb_information.job_stats s using (job_id)
       where (j.proc_schema = 'vigil' or j.hypertable_schema = 'vigil')
         and (j.proc_schema || '.' || j.proc_name) <> all (vigil._alert_jobs())
       order by 3, 1;
  end if;
end
$$;
comment on function vigil.maintenance_jobs(timestamptz) is
  'The maintenance jobs of the active mode (rollup refresh, compression, retention, '
  'partitions, index builds, packing: every registered job but vigil._alert_jobs()), most '
  'frequent first, and whether each is due at p_now. Portable mode: vigil.portable_jobs '
  '(job_id null); TimescaleDB mode: Vigil''s policies and job procedures, run with '
  'CALL run_job(job_id). `vigil jobs run` runs them.';

create or replace function vigil.run_maintenance_job(p_job text, p_now timestamptz default now())
returns text
language plpgsql
as $$
declare
  v_job vigil.portable_jobs;
begin
  select * into v_job from vigil.portable_jobs
   where job = p_job and job <> all (vigil._alert_jobs())
     for update;
  if not found then
    raise exception 'no portable maintenance job named %', p_job
      using errcode = 'invalid_parameter_value',
            hint = 'select job from vigil.maintenance_jobs() lists them';
  end if;
  begin
    execute format('select %s($1, $2)', v_job.call::regproc) using p_now, v_job.config;
  exception when others then
    update vigil.portable_jobs
       set next_run_at = p_now + schedule_interval, last_error = sqlerrm
     where job = p_job;
    return sqlerrm;
  end;
  update vigil.portable_jobs
     set next_run_at = p_now + schedule_interval, last_error = null
   where job = p_job;
  return null;
end
$$;
comment on function vigil.run_maintenance_job(text, timestamptz) is
  'Portable mode: runs the maintenance job p_job now, due or not (waiting for a run of it '
  'in progress), and schedules its next run as vigil.run_due_jobs would; returns null on '
  'success, else the error (also kept in last_error; the job''s own work is rolled back).';
