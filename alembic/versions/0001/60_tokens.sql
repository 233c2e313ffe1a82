-- Sender API tokens: only SHA-256 hashes are stored.

create or replace function vigil.token_create(p_name text, p_hash bytea) returns bigint
language plpgsql
as $$
declare
  v_id bigint;
begin
  insert into vigil.api_tokens (name, token_hash) values (p_name, p_hash) returning id into v_id;
  return v_id;
exception when unique_violation then
  raise exception 'an active token named "%" exists already', p_name
    using errcode = '23505', hint = 'revoke it first or choose another name';
end
$$;
comment on function vigil.token_create(text, bytea) is
  'Stores a new token by its SHA-256 hash under a unique (among active tokens) name.';

create or replace function vigil.token_revoke(p_name text) returns boolean
language sql
as $$
  update vigil.api_tokens set revoked_at = now()
   where name = p_name and revoked_at is null
  returning true
$$;
comment on function vigil.token_revoke(text) is 'Revokes the active token of that name.';

create or replace function vigil.token_check(p_hash bytea) returns bigint
language sql
as $$
  -- last_used_at is written at most once a minute per token, to keep ingest cheap.
  with t as (
    select id, last_used_at from vigil.api_tokens where token_hash = p_hash and revoked_at is null
  ), touch as (
    update vigil.api_tokens a set last_used_at = now()
      from t where a.id = t.id and (t.last_used_at is null or t.last_used_at < now() - interval '1 minute')
  )
  select id from t
$$;
comment on function vigil.token_check(bytea) is
  'Id of the active token with that hash (null if unknown or revoked); records its use.';

create or replace view vigil.tokens as
select id, name, created_at, last_used_at, revoked_at from vigil.api_tokens;
comment on view vigil.tokens is 'API tokens without their hashes.';
