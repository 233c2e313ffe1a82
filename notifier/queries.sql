-- The notifier: outbox delivery, Telegram chat migrations and, in portable mode, the job
-- scheduler (loaded by notifier/__init__.py).

-- name: listen_outbox
-- Wake-ups for the delivery loop: the outbox trigger notifies this channel.
listen vigil_outbox;

-- name: check_stalls
-- Messages about jobs that stopped running (and ran again); on every poll tick.
select vigil.check_stalls();

-- name: outbox_claim
-- Claims due messages for this worker (worker, lease, how many, channel or null), per
-- instance oldest first, none while the channel is paused; commit before sending.
select id, text, attempts, group_key from vigil.outbox_claim(%s, %s, %s, p_channel => %s);

-- name: outbox_claim_group
-- More due messages of the group of a message just claimed (worker, lease, group, how
-- many), sent together with it as one message.
select id, text, attempts, group_key from vigil.outbox_claim_group(%s, %s, %s, %s);

-- name: outbox_next_due
-- Seconds until a message can be claimed (a retry, a lease, the channel's pause; negative
-- when one is due now, null when nothing is pending) for the channel (or null).
select extract(epoch from vigil.outbox_next_due(%s) - clock_timestamp())::float8;

-- name: channel_pause
-- The receiver asked every sender to wait (channel, how long, its answer): no notifier
-- claims a message for it before then.
select vigil.channel_pause(%s, %s, %s);

-- name: outbox_delivered
-- Marks a message this worker claimed as delivered (id, worker).
select vigil.outbox_delivered(%s, %s);

-- name: outbox_retry
-- A transient failure: the message is due again after a delay (id, worker, error, delay).
select vigil.outbox_retry(%s, %s, %s, %s);

-- name: outbox_settle
-- Ends a message without delivery (id, worker, status dead | unconfigured, reason).
select vigil.outbox_settle(%s, %s, %s, %s);

-- name: chat_migration_next
-- The chat a Telegram chat id migrated to, if it did.
select new_chat_id from vigil.chat_migrations where old_chat_id = %s;

-- name: chat_migration_record
-- Records that a group became a supergroup (old chat id, new chat id).
insert into vigil.chat_migrations (old_chat_id, new_chat_id) values (%s, %s)
    on conflict (old_chat_id) do update set new_chat_id = excluded.new_chat_id,
                                            migrated_at = now();

-- name: run_alert_jobs
-- Portable mode's detection tick: the due alert jobs (vigil._alert_jobs()).
select vigil.run_due_jobs(p_only => vigil._alert_jobs());

-- name: detect
-- Portable mode: the detector, run at the moment the earliest ping deadline passes.
select vigil.detect();

-- name: next_deadline_seconds
-- Seconds until the earliest open ping deadline (negative when passed; null when none).
select extract(epoch from vigil.next_deadline() - clock_timestamp())::float8;

-- name: run_maintenance_job
-- Portable mode's maintenance: one due job other than the alert jobs; how many ran (0 or 1).
select vigil.run_due_jobs(p_skip => vigil._alert_jobs(), p_limit => 1);
