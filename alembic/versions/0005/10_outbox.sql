-- Outbox: every message to send, written in the transaction that decides it; the notifier
-- claims it with a lease, then records the outcome of the delivery attempt.
-- Exposes: tables vigil.outbox, vigil.channel_pauses and vigil.chat_migrations;
-- vigil.outbox_claim(), outbox_next_due(), outbox_delivered(), outbox_retry(),
-- outbox_settle(), channel_pause().
--
-- The features that write messages link them to their own rows: the foreign keys of
-- outbox.transition_id (30_heartbeats) and outbox.service_event_id (70_uptime) are added
-- by those files, since their tables are created after this one. The status view
-- vigil.outbox_status joins heartbeat transitions and is in 90_status.
--
-- Order. Every message names the instance it is about (instance_key: 'metric:<id>' for a
-- heartbeat transition, 'service:<id>' for an uptime event, 'vigil' for Vigil's own job
-- stalls). Per instance, messages go out strictly in id order (= the order the state
-- changes committed: the writers hold the metric's or service's row lock): a message is
-- claimed only when no older message of its instance is pending, and never once a newer
-- one has been delivered (it is then settled as 'superseded', never sent).
-- Instances are independent: a message stuck in retries holds up only its own instance.
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
  instance_key    text not null default 'vigil',
  constraint outbox_pkey primary key (id),
  constraint outbox_status_check
    check (status in ('pending', 'delivered', 'dead', 'unconfigured', 'superseded'))
);
comment on table vigil.outbox is
  'Messages to send, written in the same transaction as the state change. pending rows are '
  'claimed by the notifier with a lease, per instance_key strictly in id order; delivered, '
  'dead (permanent failure, kept), unconfigured (Telegram not configured) and superseded '
  '(a newer message about the same instance was delivered first; never sent) are end states.';
select vigil._comment_columns('vigil.outbox',
  'text', 'Plain text; the notifier escapes it for Telegram HTML.',
  'attempts', 'Delivery attempts made so far (claims).',
  'next_attempt_at', 'Not claimed before this time (retry backoff).',
  'claimed_until', 'Lease: a claimed row whose lease has passed (notifier died) is claimed again.',
  'last_error', 'Why the last attempt failed, or why it is dead.',
  'service_event_id', 'Uptime checks: the service event (up/down flip) this message announces.',
  'instance_key', 'What the message is about, the unit of delivery order: metric:<id> (heartbeat '
                  'transitions), service:<id> (uptime events), vigil (job stalls, anything '
                  'else). Messages of one instance are delivered strictly in id order.');
create index if not exists outbox_pending_idx on vigil.outbox (next_attempt_at, id)
  where status = 'pending';

-- The claim's two questions about an instance, each one short index range: is an older
-- message still pending (the queue of pending rows is small), and was a newer one delivered.
create index if not exists outbox_instance_pending_idx on vigil.outbox (instance_key, id)
  where status = 'pending';
create index if not exists outbox_instance_delivered_idx on vigil.outbox (instance_key, id)
  where status = 'delivered';

alter table vigil.outbox add column if not exists group_key text;
select vigil._comment_columns('vigil.outbox',
  'group_key', 'Messages with the same group_key that are due together are sent as one message '
               '(alert rules with a group_wait); null = always on its own.');

create table if not exists vigil.channel_pauses (
  channel      text not null,
  paused_until timestamptz not null,
  reason       text,
  paused_at    timestamptz not null default now(),
  constraint channel_pauses_pkey primary key (channel)
);
comment on table vigil.channel_pauses is
  'Receivers that asked every sender to wait (Telegram 429 retry_after): no message to the '
  'channel is claimed, by any notifier, before paused_until. Written by vigil.channel_pause.';
select vigil._comment_columns('vigil.channel_pauses',
  'channel', 'The receiver, as the notifier names it: telegram:<TELEGRAM_CHAT_ID>.',
  'paused_until', 'Nothing is sent to the channel before this time; a past time means not paused.',
  'reason', 'The answer that asked for the pause.');

create table if not exists vigil.chat_migrations (
  old_chat_id text primary key,
  new_chat_id text not null,
  migrated_at timestamptz not null default now()
);
comment on table vigil.chat_migrations is
  'Telegram group to supergroup migrations (migrate_to_chat_id) the notifier has followed.';

create or replace function vigil._outbox_heads(p_now timestamptz)
returns table (id bigint, busy boolean)
language sql stable
as $$
  -- One grouped pass over the pending rows (the backlog, not the history), so a claim costs
  -- the same whatever plan is chosen for the per-head checks.
  select min(p.id), coalesce(bool_or(p.claimed_until > p_now), false)
    from vigil.outbox p
   where p.status = 'pending'
   group by p.instance_key
$$;
comment on function vigil._outbox_heads(timestamptz) is
  'The head of each instance''s queue: its oldest pending message (id), and whether a '
  'message of the instance is in flight at p_now (busy: claimed, lease not passed).';

create or replace function vigil._outbox_claim_heads(p_worker text, p_lease interval,
                                                     p_limit integer, p_now timestamptz,
                                                     p_group text default null)
returns setof vigil.outbox
language sql
as $$
  -- Only a head is claimable, and only while no other message of its instance is in flight
  -- (a requeued older message waits for the newer one being sent) and none newer was
  -- delivered. With SKIP LOCKED a concurrent claimer skips a head being claimed, and the
  -- rows behind it are not heads in its snapshot: two workers never hold two rows of one
  -- instance. A claim moves next_attempt_at to the end of the lease, so a row whose
  -- claimant died becomes due again when the lease passes, still first in line.
  update vigil.outbox o
     set claimed_by = p_worker, claimed_until = p_now + p_lease,
         next_attempt_at = p_now + p_lease, attempts = o.attempts + 1
   where o.id in (select c.id
                    from vigil._outbox_heads(p_now) h
                    join vigil.outbox c on c.id = h.id
                   where not h.busy and c.status = 'pending' and c.next_attempt_at <= p_now
                     and (p_group is null or c.group_key = p_group)
                     and not exists (select from vigil.outbox d
                                      where d.instance_key = c.instance_key
                                        and d.status = 'delivered' and d.id > c.id)
                   -- Due the longest first; the members of a group oldest first.
                   order by case when p_group is null then c.next_attempt_at end, c.id
                   limit p_limit
                     for update of c skip locked)
  returning o.*
$$;
comment on function vigil._outbox_claim_heads(text, interval, integer, timestamptz, text) is
  'Claims up to p_limit due heads of the instances'' queues (of group p_group; null = any) '
  'for p_worker for p_lease: what vigil.outbox_claim and vigil.outbox_claim_group hand out.';

create or replace function vigil.outbox_claim(p_worker text, p_lease interval, p_limit integer,
                                              p_now timestamptz default now(),
                                              p_channel text default null)
returns setof vigil.outbox
language plpgsql
as $$
begin
  -- Both steps look at the head of each instance's queue only (vigil._outbox_heads): its
  -- oldest pending message.
  --
  -- 1. Never after a newer one: a head whose instance already had a newer message
  --    delivered is settled as superseded, never sent; repeated, as the next row may be
  --    such a head too. The claim below cannot cause this (it sends an instance's messages
  --    one at a time, oldest first); it arises for a dead letter requeued after newer
  --    messages went out and for rows written before messages were ordered (revision
  --    0003). A row under a live lease is left to its worker (next_attempt_at is the end of
  --    the lease); only rows that qualify are locked, so concurrent claimers skip no other.
  --
  --    The rule for an older message still pending while a newer one of its instance is
  --    pending too (say the "Alert" and the "OK again" of an outage Telegram was down for):
  --    both are sent, in order. The chat then tells the history honestly (there was an
  --    incident, this long, with this value) instead of an "OK again" about an alert never
  --    seen, and what the chat shows does not depend on how fast Telegram came back. A pair
  --    costs one extra message; order, not silence, is what keeps the chat right.
  loop
    update vigil.outbox o
       set status = 'superseded', claimed_until = null,
           last_error = format('message %s about %s was delivered first', n.newer, o.instance_key)
      from (select c.id, d.newer
              from vigil._outbox_heads(p_now) h
              join vigil.outbox c on c.id = h.id
             cross join lateral (select max(x.id) as newer from vigil.outbox x
                                  where x.instance_key = c.instance_key
                                    and x.status = 'delivered') d
             where c.status = 'pending' and c.next_attempt_at <= p_now and d.newer > c.id
               for update of c skip locked) n
     where o.id = n.id;
    exit when not found;
  end loop;

  -- 2. A receiver that asked every sender to wait (429 retry_after) gets nothing until then.
  if p_channel is not null
     and exists (select from vigil.channel_pauses
                  where channel = p_channel and paused_until > p_now) then
    return;
  end if;

  -- 3. The due heads, each while no message of its instance is in flight and none newer was
  --    delivered (vigil._outbox_claim_heads).
  return query select * from vigil._outbox_claim_heads(p_worker, p_lease, p_limit, p_now);
end
$$;
comment on function vigil.outbox_claim(text, interval, integer, timestamptz, text) is
  'Claims up to p_limit due pending messages for p_worker for p_lease: per instance_key only '
  'the oldest pending one, nothing while p_channel is paused (vigil.channel_pauses). Settles '
  'pending messages older than a delivered message of their instance as superseded. Commit '
  'the claim before sending; a row not settled before the lease passes is claimed again.';

create or replace function vigil.outbox_claim_group(p_worker text, p_lease interval,
                                                    p_group text, p_limit integer,
                                                    p_now timestamptz default now())
returns setof vigil.outbox
language plpgsql
as $$
begin
  -- The same heads as vigil.outbox_claim, restricted to one group: the messages that go out
  -- together with a group member just claimed (the claim's own rules keep order per
  -- instance, as no instance has two heads). A message without a group goes on its own.
  if p_group is not null then
    return query
    select * from vigil._outbox_claim_heads(p_worker, p_lease, p_limit, p_now, p_group);
  end if;
end
$$;
comment on function vigil.outbox_claim_group(text, interval, text, integer, timestamptz) is
  'Claims up to p_limit more due messages of group p_group (heads of their instances, as '
  'vigil.outbox_claim does), to be sent as one message with a member already claimed.';

create or replace function vigil.outbox_next_due(p_channel text default null,
                                                 p_now timestamptz default now())
returns timestamptz
language sql stable
as $$
  -- The earliest next_attempt_at among the heads of the instances' queues (the rows behind
  -- a head wait for it, whatever their own next_attempt_at; an instance with a message in
  -- flight waits for that notifier), not before p_channel's pause.
  select case when min(c.next_attempt_at) is not null
              then greatest(min(c.next_attempt_at),
                            (select p.paused_until from vigil.channel_pauses p
                              where p.channel = p_channel and p.paused_until > p_now))
         end
    from vigil._outbox_heads(p_now) h
    join vigil.outbox c on c.id = h.id
   where not h.busy
$$;
comment on function vigil.outbox_next_due(text, timestamptz) is
  'When vigil.outbox_claim can next hand out a message (a retry coming due, a lease passing, '
  'p_channel''s pause ending); null when nothing is pending. The notifier sleeps until then.';

create or replace function vigil.channel_pause(p_channel text, p_for interval, p_reason text)
returns timestamptz
language sql
as $$
  insert into vigil.channel_pauses as p (channel, paused_until, reason, paused_at)
  values (p_channel, now() + p_for, p_reason, now())
  on conflict (channel) do update
    set paused_until = greatest(p.paused_until, excluded.paused_until),
        reason = excluded.reason, paused_at = excluded.paused_at
  returning paused_until
$$;
comment on function vigil.channel_pause(text, interval, text) is
  'Records that p_channel asked for a wait of p_for (a 429 retry_after): no notifier claims '
  'a message for it before then. A shorter wait never shortens a pause. Returns its end.';

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
