-- Revision 0002, before the frozen files: what re-running them cannot express.

-- Every message names the instance it is about, the unit of delivery order. Existing rows
-- get theirs from what they announce: a heartbeat transition's metric, an uptime event's
-- service; the rest (job stalls, messages of deleted metrics or services) keep 'vigil'.
alter table vigil.outbox add column if not exists instance_key text not null default 'vigil';
update vigil.outbox o
   set instance_key = 'metric:' || t.metric_id
  from vigil.transitions t
 where t.id = o.transition_id and o.instance_key = 'vigil';
update vigil.outbox o
   set instance_key = 'service:' || e.service_id
  from vigil.service_events e
 where e.id = o.service_event_id and o.instance_key = 'vigil';

-- A new end state: superseded (a newer message of the instance was delivered first).
alter table vigil.outbox drop constraint if exists outbox_status_check;
alter table vigil.outbox add constraint outbox_status_check
  check (status in ('pending', 'delivered', 'dead', 'unconfigured', 'superseded'));

-- outbox_claim gained p_channel (the channel pause); 10_outbox.sql creates the new one.
drop function if exists vigil.outbox_claim(text, interval, integer, timestamptz);
