-- Detection of passed ping deadlines, and of stalled jobs.

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

create or replace function vigil.detect(p_now timestamptz default now()) returns integer
language plpgsql
as $$
declare
  v_id bigint;
  v_n  integer := 0;
begin
  -- Only metrics whose deadline has passed are read (metrics_open_deadline_idx).
  -- SKIP LOCKED: a row being ingested or handled by a concurrent run is left to it.
  for v_id in
    select id from vigil.metrics
     where state = 'ok' and deadline is not null and deadline <= p_now
     order by deadline
       for update skip locked
  loop
    if vigil._transition(v_id, 'alert', p_now, 'no ping before its deadline') then
      v_n := v_n + 1;
    end if;
  end loop;
  perform vigil._heartbeat('detect', v_n);
  return v_n;
end
$$;
comment on function vigil.detect(timestamptz) is
  'Puts every ping metric whose deadline passed by p_now into alert (one transition and one '
  'outbox message each) and records the detector heartbeat. Returns the number of transitions.';

create or replace procedure vigil.detect_job(job_id integer, config jsonb)
language plpgsql
as $$
begin
  perform vigil.detect(now());
end
$$;
comment on procedure vigil.detect_job(integer, jsonb) is
  'TimescaleDB job wrapper around vigil.detect(now()); see timescaledb_information.jobs.';

create or replace function vigil.check_stalls(p_now timestamptz default now()) returns integer
language plpgsql
as $$
declare
  v_h vigil.job_heartbeats;
  v_n integer := 0;
begin
  for v_h in
    update vigil.job_heartbeats
       set stalled = not stalled
     where stalled <> (last_finished_at < p_now - stall_after)
    returning *
  loop
    insert into vigil.outbox (text)
    values (case when v_h.stalled
                 then 'Alert: Vigil job ' || v_h.job || ' has not run since '
                      || vigil._utc(v_h.last_finished_at)
                 else 'OK again: Vigil job ' || v_h.job || ' runs again' end);
    v_n := v_n + 1;
  end loop;
  if v_n > 0 then
    perform pg_notify('vigil_outbox', '');
  end if;
  return v_n;
end
$$;
comment on function vigil.check_stalls(timestamptz) is
  'Writes an outbox message when a job stops running for longer than its stall_after, and '
  'one when it runs again. Called by the notifier on its poll tick in both modes.';

create or replace function vigil.next_deadline() returns timestamptz
language sql stable
as $$
  select min(deadline) from vigil.metrics where state = 'ok' and deadline is not null
$$;
comment on function vigil.next_deadline() is
  'The earliest deadline that can still pass (an index probe); the portable-mode scheduler '
  'wakes up at that moment to run vigil.detect, so alerts are not late by a whole tick.';
