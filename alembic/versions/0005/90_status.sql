-- Status views that join several features (outbox, heartbeats, jobs, mode), for the
-- operator pages; each file before this one owns the tables these views read.
-- Exposes: vigil.outbox_status, vigil.metric_transitions, vigil.system_status.

create or replace view vigil.outbox_status as
select o.id, o.created_at, o.text, o.status, o.attempts, o.last_error, o.delivered_at,
       case o.status
         when 'delivered' then 'delivered at ' || vigil._utc(o.delivered_at)
         when 'dead' then 'dead letter: ' || coalesce(o.last_error, 'unknown')
         when 'unconfigured' then 'not delivered: Telegram not configured'
         when 'superseded' then 'not sent, superseded: ' || coalesce(o.last_error, 'unknown')
         when 'pending' then
           case when o.claimed_until > now() then 'sending (claimed by ' || o.claimed_by || ')'
                else coalesce(
                  -- Per instance the oldest pending message goes first (vigil.outbox_claim).
                  'waiting for message '
                    || (select max(b.id) from vigil.outbox b
                         where b.instance_key = o.instance_key and b.status = 'pending'
                           and b.id < o.id)
                    || ' (same ' || o.instance_key || ', sent in order)',
                  case when o.attempts = 0 then 'queued'
                       else 'retrying, next attempt at ' || vigil._utc(o.next_attempt_at)
                            || coalesce(' (' || o.last_error || ')', '') end)
           end
       end as delivery,
       t.metric_id, o.instance_key
  from vigil.outbox o
  left join vigil.transitions t on t.id = o.transition_id;
comment on view vigil.outbox_status is
  'Every message with a human-readable delivery status (queued, waiting for an older message '
  'of its instance, sending, retrying, delivered, dead letter, superseded, not configured), '
  'newest last.';

create or replace view vigil.metric_transitions as
select t.id, t.metric_id, t.at, t.from_state, t.to_state, t.value, t.reason,
       s.id as message_id, s.text as message, s.status as message_status, s.delivery,
       s.attempts
  from vigil.transitions t
  left join vigil.outbox o on o.transition_id = t.id
  left join vigil.outbox_status s on s.id = o.id;
comment on view vigil.metric_transitions is
  'Alert history with the delivery status of each transition''s message (from outbox_status).';

create or replace view vigil.system_status as
select m.mode, m.reason as mode_reason,
       h.last_finished_at as detector_finished_at,
       extract(epoch from now() - h.last_finished_at)::float8 as detector_age_seconds,
       coalesce(h.stalled, false) as detector_stalled,
       coalesce(h.stall_after, interval '2 minutes') as detector_stall_after,
       (select count(*) from vigil.outbox where status = 'pending') as outbox_backlog,
       (select count(*) from vigil.outbox where status = 'dead') as dead_letters,
       (select count(*) from vigil.outbox where status = 'unconfigured') as undelivered_unconfigured
  from vigil.mode m
  left join vigil.job_heartbeats h on h.job = 'detect';
comment on view vigil.system_status is
  'One row for the dashboard''s system panel: database mode, detector heartbeat, outbox '
  'backlog and dead letters.';
