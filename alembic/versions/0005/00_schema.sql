-- Vigil schema: the schema itself, extensions, mode detection and tiny shared helpers.
-- Exposes: schema vigil, vigil.has_timescale(), vigil.mode, vigil._utc(), _like_escape(),
-- _comment_columns().
--
-- Load order is the file name order; every file is idempotent. One feature per file:
--   00_schema     schema, TimescaleDB detection (vigil.mode), shared helpers
--   10_outbox     the outbox (messages to send) and Telegram chat migrations
--   15_alerts     alert rules (the built-in ones too), instances, events, silences,
--                 maintenance windows, the one notification path
--   20_jobs       job heartbeats, stall alerts, the portable scheduler, vigil.jobs
--   30_heartbeats ping/disk metrics: ingest, detection, operator views, their jobs
--   40_auth       sender API tokens and operators (users, sessions, login links, sign-ins)
--   50_journal    journal logs
--   60_series     numeric time series
--   70_uptime     HTTP checks (services)
--   80_rules      evaluation of the alert rules over every source, the views of alerts
--   90_status     status views that join several features

create schema if not exists vigil;
comment on schema vigil is 'Vigil: metrics, journal logs and alerts. Tune jobs and rules here with SQL.';

-- TimescaleDB is used when the server can load it; the decision is made here, once,
-- by detection (never by a flag). A server that lists the extension but cannot create
-- it (not in shared_preload_libraries) stays in portable mode; vigil.mode says why.
do $$
begin
  if exists (select from pg_available_extensions where name = 'timescaledb')
     and not exists (select from pg_extension where extname = 'timescaledb') then
    begin
      create extension timescaledb;
    exception when others then
      raise notice 'vigil: timescaledb is available but could not be created (%); portable mode', sqlerrm;
    end;
  end if;
end $$;

create or replace function vigil.has_timescale() returns boolean
language sql stable
as $$ select exists (select from pg_extension where extname = 'timescaledb') $$;
comment on function vigil.has_timescale() is
  'True when the timescaledb extension is installed in this database (TimescaleDB mode).';

create or replace function vigil._utc(p_at timestamptz) returns text
language sql immutable
as $$ select to_char(p_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS "UTC"') $$;
comment on function vigil._utc(timestamptz) is 'A time as text for people: 2026-11-22 10:00:00 UTC.';

create or replace function vigil._like_escape(p_text text) returns text
language sql immutable
as $$ select replace(replace(replace(p_text, '\', '\\'), '%', '\%'), '_', '\_') $$;
comment on function vigil._like_escape(text) is
  'Escapes \, % and _ so the text matches literally inside a LIKE/ILIKE pattern.';

create or replace function vigil._comment_columns(p_table regclass, variadic p_comments text[])
returns void
language plpgsql
as $$
begin
  for i in 1 .. coalesce(array_length(p_comments, 1), 0) by 2 loop
    execute format('comment on column %s.%I is %L', p_table, p_comments[i], p_comments[i + 1]);
  end loop;
end
$$;
comment on function vigil._comment_columns(regclass, text[]) is
  'Comments the columns of a table: p_comments holds pairs of a column name and its comment.';

create or replace view vigil.mode as
select case when vigil.has_timescale() then 'timescaledb' else 'portable' end as mode,
       case
         when vigil.has_timescale() then
           'timescaledb ' || (select extversion from pg_extension where extname = 'timescaledb')
           || ' is installed: hypertables, policies and add_job scheduling are used'
         when exists (select from pg_available_extensions where name = 'timescaledb') then
           'timescaledb is available on this server but could not be created '
           || '(it must be in shared_preload_libraries); plain PostgreSQL tables are used and '
           || 'the notifier process drives the jobs'
         else
           'timescaledb is not available on this server (pg_available_extensions); plain '
           || 'PostgreSQL tables are used and the notifier process drives the jobs'
       end as reason,
       current_setting('server_version') as server_version;
comment on view vigil.mode is
  'Which database mode is active (timescaledb or portable) and why; detected, not configured.';
