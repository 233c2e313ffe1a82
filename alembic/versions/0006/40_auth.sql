-- Authentication: sender API tokens (ingest) and operators (the web pages): the
-- allow-list of people who may see the pages, their server-side sessions, one-time login
-- links and pending Google sign-ins (OpenID Connect). Only hashes of secrets are stored.
-- Exposes: tables vigil.api_tokens, users, sessions, login_links, oauth_flows; the view
-- vigil.tokens; vigil.token_create/revoke/check(), user_add/remove/set_time_zone(),
-- login_link_create/use(), session_create/get/delete(), oauth_flow_start/take().

-- Sender API tokens ----------------------------------------------------------------------

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

-- Operators ------------------------------------------------------------------------------

create table if not exists vigil.users (
  email         text not null,
  created_at    timestamptz not null default now(),
  last_login_at timestamptz,
  constraint users_pkey primary key (email),
  constraint users_email_check
    check (email = lower(email) and email ~ '^[^@\s]+@[^@\s]+$' and length(email) <= 320)
);
comment on table vigil.users is
  'Operators allowed to sign in (the allow-list), by lower-case email. '
  'Add with `vigil user add EMAIL` or vigil.user_add(); removing a user ends their sessions.';
select vigil._comment_columns('vigil.users',
  'last_login_at', 'When the user last signed in (Google or link).');

-- The operator's own clock: every page shows times in this zone; null = the browser's zone.
alter table vigil.users add column if not exists time_zone text;
do $$
begin
  if not exists (select from pg_constraint
                  where conrelid = 'vigil.users'::regclass and conname = 'users_time_zone_check') then
    alter table vigil.users add constraint users_time_zone_check
      check (length(time_zone) between 1 and 64);
  end if;
end $$;
select vigil._comment_columns('vigil.users',
  'time_zone', 'IANA zone the pages show times in for this user (Settings page); '
               'null = the browser''s own zone.');

create table if not exists vigil.sessions (
  id_hash      bytea not null,
  email        text not null,
  csrf_token   text not null,
  created_at   timestamptz not null default now(),
  expires_at   timestamptz not null,
  last_seen_at timestamptz not null default now(),
  constraint sessions_pkey primary key (id_hash),
  constraint sessions_email_fkey foreign key (email)
    references vigil.users (email) on delete cascade,
  constraint sessions_expiry_check check (expires_at > created_at)
);
comment on table vigil.sessions is
  'Server-side operator sessions. The browser holds a random id; only its keyed hash is '
  'stored. Delete rows to log people out.';
select vigil._comment_columns('vigil.sessions',
  'id_hash', 'HMAC-SHA256 of the session cookie value (keyed with SESSION_SECRET when set).',
  'csrf_token',
  'Per-session token every state-changing page request must carry (form field or header).',
  'expires_at', 'Absolute end of the session (bounded lifetime).',
  'last_seen_at', 'Last request, updated at most once a minute.');
create index if not exists sessions_expires_idx on vigil.sessions (expires_at);
create index if not exists sessions_email_idx on vigil.sessions (email);

create table if not exists vigil.login_links (
  token_hash bytea not null,
  email      text not null,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  used_at    timestamptz,
  constraint login_links_pkey primary key (token_hash),
  constraint login_links_email_fkey foreign key (email)
    references vigil.users (email) on delete cascade
);
comment on table vigil.login_links is
  'One-time, short-lived login links (`vigil login-link EMAIL`); SHA-256 of the token only.';
select vigil._comment_columns('vigil.login_links',
  'used_at', 'Set when the link is used; a link works once.');

create table if not exists vigil.oauth_flows (
  flow_hash     bytea not null,
  state         text not null,
  nonce         text not null,
  code_verifier text not null,
  next_path     text not null default '/',
  created_at    timestamptz not null default now(),
  expires_at    timestamptz not null,
  constraint oauth_flows_pkey primary key (flow_hash)
);
comment on table vigil.oauth_flows is
  'Google sign-ins in progress: OpenID state, nonce and PKCE verifier, bound to the browser '
  'by a short-lived cookie whose SHA-256 is flow_hash. Consumed by the callback.';
select vigil._comment_columns('vigil.oauth_flows',
  'next_path', 'Local path to return to after sign-in.');

create or replace function vigil._norm_email(p_email text) returns text
language sql immutable
as $$ select lower(btrim(p_email)) $$;
comment on function vigil._norm_email(text) is 'Emails are compared trimmed and lower-case.';

create or replace function vigil.user_add(p_email text) returns boolean
language plpgsql
as $$
begin
  if vigil._norm_email(p_email) !~ '^[^@\s]+@[^@\s]+$' then
    raise exception 'not an email address: "%"', p_email
      using errcode = '22023', hint = 'give the address the person signs in with, e.g. ann@example.com';
  end if;
  insert into vigil.users (email) values (vigil._norm_email(p_email)) on conflict do nothing;
  return found;
end
$$;
comment on function vigil.user_add(text) is
  'Allows an email to sign in; false when it was allowed already.';

create or replace function vigil.user_remove(p_email text) returns boolean
language sql
as $$
  delete from vigil.users where email = vigil._norm_email(p_email) returning true
$$;
comment on function vigil.user_remove(text) is
  'Removes an email from the allow-list; its sessions and login links go with it.';

create or replace function vigil.user_set_time_zone(p_email text, p_zone text) returns boolean
language plpgsql
as $$
declare
  v_zone text := nullif(btrim(p_zone), '');
begin
  if v_zone is not null
     and not exists (select from pg_timezone_names where name = v_zone) then
    raise exception 'unknown time zone "%"', v_zone
      using errcode = '22023', hint = 'use an IANA name such as Europe/Berlin or Asia/Kathmandu';
  end if;
  update vigil.users set time_zone = v_zone where email = vigil._norm_email(p_email);
  return found;
end
$$;
comment on function vigil.user_set_time_zone(text, text) is
  'Sets the IANA zone the pages show times in for a user (null or empty = the browser''s '
  'zone); refuses names PostgreSQL does not know (22023); false for an unknown user.';

create or replace function vigil.login_link_create(p_email text, p_hash bytea, p_ttl interval)
returns timestamptz
language plpgsql
as $$
declare
  v_expires timestamptz := now() + p_ttl;
begin
  if not exists (select from vigil.users where email = vigil._norm_email(p_email)) then
    raise exception '"%" is not an allowed user', p_email
      using errcode = '42501', hint = 'add it first with `vigil user add EMAIL`';
  end if;
  delete from vigil.login_links where expires_at < now() - interval '1 day';
  insert into vigil.login_links (token_hash, email, expires_at)
  values (p_hash, vigil._norm_email(p_email), v_expires);
  return v_expires;
end
$$;
comment on function vigil.login_link_create(text, bytea, interval) is
  'Stores a one-time login link (by hash) for an allowed email; returns when it expires.';

create or replace function vigil.login_link_use(p_hash bytea) returns text
language sql
as $$
  update vigil.login_links set used_at = now()
   where token_hash = p_hash and used_at is null and expires_at > now()
  returning email
$$;
comment on function vigil.login_link_use(bytea) is
  'Consumes a login link: its email if it is unused and unexpired, else null.';

create or replace function vigil.session_create(p_id_hash bytea, p_email text, p_csrf text,
                                                p_lifetime interval) returns boolean
language plpgsql
as $$
begin
  delete from vigil.sessions where expires_at < now();
  delete from vigil.oauth_flows where expires_at < now();
  insert into vigil.sessions (id_hash, email, csrf_token, expires_at)
  select p_id_hash, u.email, p_csrf, now() + p_lifetime
    from vigil.users u where u.email = vigil._norm_email(p_email);
  if not found then
    return false;
  end if;
  update vigil.users set last_login_at = now() where email = vigil._norm_email(p_email);
  return true;
end
$$;
comment on function vigil.session_create(bytea, text, text, interval) is
  'Starts a session for an allowed email (false if not allowed); purges expired sessions.';

create or replace function vigil.session_get(p_id_hash bytea)
returns table (email text, csrf_token text, expires_at timestamptz)
language sql
as $$
  with s as (
    select s.id_hash, s.email, s.csrf_token, s.expires_at, s.last_seen_at
      from vigil.sessions s
     where s.id_hash = p_id_hash and s.expires_at > now()
  ), touch as (
    update vigil.sessions x set last_seen_at = now()
      from s where x.id_hash = s.id_hash and s.last_seen_at < now() - interval '1 minute'
  )
  select s.email, s.csrf_token, s.expires_at from s
$$;
comment on function vigil.session_get(bytea) is
  'The live session with that id hash (no row if unknown or expired); records its use.';

create or replace function vigil.session_delete(p_id_hash bytea) returns boolean
language sql
as $$
  delete from vigil.sessions where id_hash = p_id_hash returning true
$$;
comment on function vigil.session_delete(bytea) is 'Ends a session (logout).';

create or replace function vigil.oauth_flow_start(p_flow_hash bytea, p_state text, p_nonce text,
                                                  p_code_verifier text, p_next_path text,
                                                  p_ttl interval) returns void
language plpgsql
as $$
begin
  -- Anyone may start a sign-in, so expired flows are cleared here and the table is capped.
  delete from vigil.oauth_flows where expires_at < now();
  if (select count(*) from vigil.oauth_flows) >= 10000 then
    raise exception 'too many sign-ins in progress'
      using errcode = '53400', hint = 'try again in a few minutes';
  end if;
  insert into vigil.oauth_flows (flow_hash, state, nonce, code_verifier, next_path, expires_at)
  values (p_flow_hash, p_state, p_nonce, p_code_verifier, p_next_path, now() + p_ttl);
end
$$;
comment on function vigil.oauth_flow_start(bytea, text, text, text, text, interval) is
  'Records a Google sign-in in progress (state, nonce, PKCE verifier); clears expired ones '
  'and refuses past 10000 pending flows, since any visitor can start one.';

create or replace function vigil.oauth_flow_take(p_flow_hash bytea)
returns table (state text, nonce text, code_verifier text, next_path text)
language sql
as $$
  delete from vigil.oauth_flows
   where flow_hash = p_flow_hash
  returning state, nonce, code_verifier,
            case when expires_at > now() then next_path end
$$;
comment on function vigil.oauth_flow_take(bytea) is
  'Consumes a pending Google sign-in (one use). next_path is null when it has expired.';
