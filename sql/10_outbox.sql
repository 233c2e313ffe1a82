-- Outbox: every message to send, written in the transaction that decides it; the notifier
-- claims it with a lease, then records the outcome of the delivery attempt.
-- Exposes: tables vigil.outbox and vigil.chat_migrations; vigil.outbox_claim(),
-- outbox_delivered(), outbox_retry(), outbox_settle().
--
-- The features that write messages link them to their own rows: the foreign keys of
-- outbox.transition_id (30_heartbeats) and outbox.service_event_id (70_uptime) are added
-- by those files, since their tables are created after this one. The status view
-- vigil.outbox_status joins heartbeat transitions and is in 90_status.

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
  service_event_id bigint,
  constraint outbox_pkey primary key (id),
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

comment on column vigil.outbox.service_event_id is
  'Uptime checks: the service event (up/down flip) this message announces.';

create table if not exists vigil.chat_migrations (
  old_chat_id text primary key,
  new_chat_id text not null,
  migrated_at timestamptz not null default now()
);
comment on table vigil.chat_migrations is
  'Telegram group to supergroup migrations (migrate_to_chat_id) the notifier has followed.';

create or replace function vigil.outbox_claim(p_worker text, p_lease interval, p_limit integer,
                                              p_now timestamptz default now())
returns setof vigil.outbox
language sql
as $$
  -- A claim moves next_attempt_at to the end of the lease, so a row whose claimant died
  -- becomes due again when the lease passes, through the same index.
  update vigil.outbox o
     set claimed_by = p_worker, claimed_until = p_now + p_lease,
         next_attempt_at = p_now + p_lease, attempts = o.attempts + 1
   where o.id in (select id from vigil.outbox
                   where status = 'pending' and next_attempt_at <= p_now
                   order by next_attempt_at, id
                   limit p_limit
                     for update skip locked)
  returning o.*
$$;
comment on function vigil.outbox_claim(text, interval, integer, timestamptz) is
  'Claims up to p_limit due pending messages for p_worker for p_lease. Commit the claim '
  'before sending; a row not settled before the lease passes is claimed again.';

create or replace function vigil.outbox_delivered(p_id bigint, p_worker text) returns boolean
language sql
as $$
  update vigil.outbox
     set status = 'delivered', delivered_at = now(), claimed_until = null, last_error = null
   where id = p_id and status = 'pending' and claimed_by = p_worker
  returning true
$$;
comment on function vigil.outbox_delivered(bigint, text) is
  'Marks a message claimed by p_worker as delivered.';

create or replace function vigil.outbox_retry(p_id bigint, p_worker text, p_error text,
                                              p_delay interval) returns boolean
language sql
as $$
  update vigil.outbox
     set next_attempt_at = now() + p_delay, claimed_until = null, last_error = p_error
   where id = p_id and status = 'pending' and claimed_by = p_worker
  returning true
$$;
comment on function vigil.outbox_retry(bigint, text, text, interval) is
  'Records a transient delivery failure; the message is due again after p_delay.';

create or replace function vigil.outbox_settle(p_id bigint, p_worker text, p_status text,
                                               p_reason text) returns boolean
language sql
as $$
  update vigil.outbox
     set status = p_status, claimed_until = null, last_error = p_reason
   where id = p_id and status = 'pending' and claimed_by = p_worker
     and p_status in ('dead', 'unconfigured')
  returning true
$$;
comment on function vigil.outbox_settle(bigint, text, text, text) is
  'Ends a message without delivery: dead (permanent failure, reason kept) or unconfigured '
  '(Telegram not configured).';
