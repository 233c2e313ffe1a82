-- Tables. Constraints are named; every table and non-obvious column is commented.

create table if not exists vigil.rules (
  type                     text primary key,
  kind                     text not null,
  default_deadline_minutes integer,
  threshold                double precision,
  constraint rules_kind_check check (kind in ('deadline', 'threshold')),
  constraint rules_deadline_check check (kind <> 'deadline' or default_deadline_minutes > 0),
  constraint rules_threshold_check check (kind <> 'threshold' or threshold is not null)
);
comment on table vigil.rules is
  'Alert rule per metric type. deadline: alert when no ping within value (or default) minutes; '
  'threshold: alert when value > threshold or unparsable. Update rows to tune.';
comment on column vigil.rules.default_deadline_minutes is
  'Minutes a ping stays fresh when the ping carries no integer value.';
comment on column vigil.rules.threshold is 'Alert when float(value) > threshold.';

insert into vigil.rules (type, kind, default_deadline_minutes, threshold) values
  ('ping', 'deadline', 5, null),
  ('disk', 'threshold', null, 90)
on conflict (type) do nothing;

create table if not exists vigil.metrics (
  id               bigint generated always as identity,
  host             text not null,
  name             text not null,
  type             text not null,
  value            text,
  last_seen        timestamptz not null,
  deadline         timestamptz,
  state            text not null default 'ok',
  state_changed_at timestamptz not null default now(),
  created_at       timestamptz not null default now(),
  constraint metrics_pkey primary key (id),
  constraint metrics_host_name_key unique (host, name),
  constraint metrics_type_fkey foreign key (type) references vigil.rules (type),
  constraint metrics_state_check check (state in ('ok', 'alert'))
);
comment on table vigil.metrics is
  'Current row per (host, name): latest value and alert state. A new POST updates it.';
comment on column vigil.metrics.last_seen is 'Timestamp of the latest report (sender clock).';
comment on column vigil.metrics.deadline is
  'Deadline rules only: when the metric goes into alert unless a fresh ping arrives.';
comment on column vigil.metrics.state is
  'ok or alert; changed only by vigil._transition() and vigil.ingest_metrics().';

-- The detector looks only at metrics whose deadline can pass: no full scan.
create index if not exists metrics_open_deadline_idx
  on vigil.metrics (deadline) where state = 'ok' and deadline is not null;

create table if not exists vigil.metric_history (
  metric_id bigint not null,
  at        timestamptz not null,
  value     text,
  constraint metric_history_metric_fkey foreign key (metric_id)
    references vigil.metrics (id) on delete cascade
);
comment on table vigil.metric_history is
  'Every accepted report (time, value) per metric. A hypertable in TimescaleDB mode.';
create index if not exists metric_history_metric_at_idx on vigil.metric_history (metric_id, at desc);
create index if not exists metric_history_at_idx on vigil.metric_history (at);

create table if not exists vigil.transitions (
  id         bigint generated always as identity,
  metric_id  bigint not null,
  at         timestamptz not null,
  from_state text not null,
  to_state   text not null,
  value      text,
  reason     text not null,
  constraint transitions_pkey primary key (id),
  constraint transitions_metric_fkey foreign key (metric_id)
    references vigil.metrics (id) on delete cascade
);
comment on table vigil.transitions is 'Alert history: every change of state of a metric.';
create index if not exists transitions_metric_idx on vigil.transitions (metric_id, at desc);

create table if not exists vigil.outbox (
  id              bigint generated always as identity,
  created_at      timestamptz not null default now(),
  transition_id   bigint,
  text            text not null,
  status          text not null default 'pending',
  attempts        integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  claimed_by      text,
  claimed_until   timestamptz,
  last_error      text,
  delivered_at    timestamptz,
  constraint outbox_pkey primary key (id),
  constraint outbox_transition_fkey foreign key (transition_id)
    references vigil.transitions (id) on delete set null,
  constraint outbox_status_check
    check (status in ('pending', 'delivered', 'dead', 'unconfigured'))
);
comment on table vigil.outbox is
  'Messages to send, written in the same transaction as the state change. pending rows are '
  'claimed by the notifier with a lease; delivered, dead (permanent failure, kept) and '
  'unconfigured (Telegram not configured) are end states.';
comment on column vigil.outbox.text is 'Plain text; the notifier escapes it for Telegram HTML.';
comment on column vigil.outbox.attempts is 'Delivery attempts made so far (claims).';
comment on column vigil.outbox.next_attempt_at is 'Not claimed before this time (retry backoff).';
comment on column vigil.outbox.claimed_until is
  'Lease: a claimed row whose lease has passed (notifier died) is claimed again.';
comment on column vigil.outbox.last_error is 'Why the last attempt failed, or why it is dead.';
create index if not exists outbox_pending_idx on vigil.outbox (next_attempt_at, id)
  where status = 'pending';

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
comment on column vigil.job_heartbeats.last_result is 'Job-specific count, e.g. transitions made.';
comment on column vigil.job_heartbeats.stalled is 'Set while a stall alert is open for the job.';
comment on column vigil.job_heartbeats.stall_after is
  'A job that has not finished a run for this long is reported as stalled.';

create table if not exists vigil.api_tokens (
  id           bigint generated always as identity,
  name         text not null,
  token_hash   bytea not null,
  created_at   timestamptz not null default now(),
  last_used_at timestamptz,
  revoked_at   timestamptz,
  constraint api_tokens_pkey primary key (id),
  constraint api_tokens_hash_key unique (token_hash),
  constraint api_tokens_name_check check (length(name) between 1 and 100)
);
comment on table vigil.api_tokens is
  'Sender API tokens. Only the SHA-256 of a token is stored; the token is shown once.';
create unique index if not exists api_tokens_active_name_key
  on vigil.api_tokens (name) where revoked_at is null;

create table if not exists vigil.chat_migrations (
  old_chat_id text primary key,
  new_chat_id text not null,
  migrated_at timestamptz not null default now()
);
comment on table vigil.chat_migrations is
  'Telegram group to supergroup migrations (migrate_to_chat_id) the notifier has followed.';

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
comment on column vigil.portable_jobs.call is
  'SQL function called as call(now, config); its name is checked with ::regproc.';
comment on column vigil.portable_jobs.config is
  'Passed to the job function, e.g. {"retention": "90 days"}.';
