-- vigil.journal_ingest and vigil.journal_ingest_staged now return vigil.journal_counts
-- (50_journal.sql) instead of four OUT parameters: a changed return type, which
-- `create or replace function` cannot make. Dropped here; 50_journal.sql creates them again.
drop function if exists vigil.journal_ingest(timestamptz[], bytea[], text[], text[], text[],
                                             smallint[], text[], jsonb, timestamptz);
drop function if exists vigil.journal_ingest_staged(timestamptz);
