-- Outbox: claim with a lease, then record the outcome of the delivery attempt.

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

create or replace view vigil.outbox_status as
select o.id, o.created_at, o.text, o.status, o.attempts, o.last_error, o.delivered_at,
       case o.status
         when 'delivered' then 'delivered at ' || vigil._utc(o.delivered_at)
         when 'dead' then 'dead letter: ' || coalesce(o.last_error, 'unknown')
         when 'unconfigured' then 'not delivered: Telegram not configured'
         when 'pending' then
           case when o.claimed_until > now() then 'sending (claimed by ' || o.claimed_by || ')'
                when o.attempts = 0 then 'queued'
                else 'retrying, next attempt at ' || vigil._utc(o.next_attempt_at)
                     || coalesce(' (' || o.last_error || ')', '') end
       end as delivery,
       t.metric_id
  from vigil.outbox o
  left join vigil.transitions t on t.id = o.transition_id;
comment on view vigil.outbox_status is
  'Every message with a human-readable delivery status, newest last.';
