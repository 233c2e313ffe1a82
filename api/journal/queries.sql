-- Journal storage and the journal browser (loaded by api/journal/__init__.py). The COPY
-- statements take binary rows in the column order of api/journal/store.py's copy_rows().

-- name: journal_bounds
-- Which entry times ingest stores (now - retention to now + 1 day), and the retention as
-- text; entries within them may be copied straight into vigil.journal.
select oldest, newest, retention::text from vigil.journal_bounds();

-- name: journal_sets_put
-- The batch's sets of shared fields, stored unless stored; the positions (1-based) of sets
-- whose hash collided with a different set, and the id each got instead.
select idx, stored
  from vigil.journal_sets_put(%s::bigint[], %s::text[], %s::text[], %s::boolean[],
                              %s::text[], %s::text[], %s::text[]::jsonb[]);

-- name: journal_copy
-- The fast path: binary COPY straight into vigil.journal_lines (after journal_sets_put).
copy vigil.journal_lines (at, set_id, seqnum, booted, xor_hash, key, pid, priority, host,
                          message, fields, ids)
  from stdin (format binary);

-- name: journal_stage
-- Creates this session's staging table pg_temp.journal_stage (emptied at commit).
select vigil.journal_stage();

-- name: journal_stage_copy
-- The slow path, after journal_stage: binary COPY into the staging table.
copy pg_temp.journal_stage (at, set_id, seqnum, booted, xor_hash, key, pid, priority, host,
                             message, fields, ids)
  from stdin (format binary);

-- name: journal_ingest_staged
-- Stores the staged entries (dedupe, partitions, retention); the counts of each outcome.
select accepted, duplicated, expired, future from vigil.journal_ingest_staged();

-- name: journal_ingest_arrays
-- Where the server has no COPY FROM STDIN: the entries as arrays, fields as one JSON array.
select accepted, duplicated, expired, future
  from vigil.journal_ingest(%s::timestamptz[], %s::bytea[], %s::text[], %s::text[],
                            %s::text[], %s::smallint[], %s::text[], %s::jsonb);

-- name: journal_search
-- The journal browser: filters, keyset paging (after at/id), order, and the live tail
-- (entries after an id).
select id, at, host, unit, container, priority, message, fields
  from vigil.journal_search(
    p_from => %(from)s, p_to => %(to)s, p_host => %(host)s, p_unit => %(unit)s,
    p_container => %(container)s, p_priority => %(priority)s, p_text => %(text)s,
    p_after_at => %(after_at)s, p_after_id => %(after_id)s,
    p_newest_first => %(newest_first)s, p_limit => %(limit)s, p_tail_id => %(tail_id)s);

-- name: journal_touch
-- The direct COPY's batch, marked for the log metrics in its transaction (per-hour ranges).
select vigil.log_metrics_touch('journal', %s::timestamptz[], %s::timestamptz[]);
