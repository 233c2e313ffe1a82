-- Bad actors: a deny list of networks (IP or CIDR) with a reason, who added it and an
-- expiry, and an allow list of networks that are never blocked. Vigil's own ingest refuses
-- a denied source with 403 (api/block/guard.py reads vigil.active_blocks every few
-- seconds); the front proxy reloads the same list from vigil.block_export (nginx, ipset,
-- cidr). Alert rules with block_for add entries when an instance starts firing
-- (vigil._rule_block, called by vigil.evaluate_rule in 80_rules.sql).
-- Exposes: tables vigil.blocked_networks, vigil.allowed_networks; view vigil.active_blocks;
-- vigil.block_add(), block_remove(), is_blocked(), block_export(), allow_add(),
-- allow_remove(), prune_blocked_networks(); alert_rules.block_for / block_label and
-- vigil._rule_block().
--
-- Expiry: an entry whose expires_at has passed is neither enforced nor exported (every
-- reader filters on it); the job prune_blocked_networks deletes it once it is older than
-- config.keep (default 7 days), so `vigil block list --all` still shows recent ones.

create table if not exists vigil.blocked_networks (
  id            bigint generated always as identity,
  network       cidr not null,
  reason        text,
  added_by      text not null default current_user,
  added_at      timestamptz not null default now(),
  updated_at    timestamptz not null default now(),
  expires_at    timestamptz,
  rule_id       bigint,
  rule_name     text,
  instance_key  text,
  constraint blocked_networks_pkey primary key (id),
  constraint blocked_networks_network_key unique (network),
  constraint blocked_networks_expiry_check check (expires_at is null or expires_at > added_at),
  constraint blocked_networks_reason_check check (length(reason) <= 500),
  constraint blocked_networks_rule_fkey foreign key (rule_id)
    references vigil.alert_rules (id) on delete set null
);
comment on table vigil.blocked_networks is
  'The deny list: one row per network (an address is a /32 or /128). Vigil''s ingest refuses '
  'requests from an active entry with 403, and vigil.block_export lists them for the front '
  'proxy. Add with vigil.block_add (it refuses networks overlapping the allow list), remove '
  'with vigil.block_remove.';
select vigil._comment_columns('vigil.blocked_networks',
  'network', 'The blocked network (cidr): 203.0.113.7/32, 2001:db8::/48.',
  'reason', 'Why, in words (an operator''s text, or the rule and value that blocked it).',
  'added_by', 'Who: an operator''s e-mail or OS user, or rule:NAME for a rule.',
  'added_at', 'When this block started (a block added again while active keeps it).',
  'updated_at', 'When it was last added again (reason and expiry replaced or extended).',
  'expires_at', 'When the block ends; null = until removed. After it, the row is neither '
                'enforced nor exported, and the prune job deletes it later.',
  'rule_id', 'The alert rule that added it (block_for), if any.',
  'rule_name', 'That rule''s name when it blocked (kept when the rule is deleted).',
  'instance_key', 'The alert instance that fired (vigil.alert_instances.key).');

create index if not exists blocked_networks_expires_idx on vigil.blocked_networks (expires_at);

create table if not exists vigil.allowed_networks (
  id        bigint generated always as identity,
  network   cidr not null,
  reason    text,
  added_by  text not null default current_user,
  added_at  timestamptz not null default now(),
  constraint allowed_networks_pkey primary key (id),
  constraint allowed_networks_network_key unique (network),
  constraint allowed_networks_reason_check check (length(reason) <= 500)
);
comment on table vigil.allowed_networks is
  'The allow list: networks that are never blocked (e.g. the office, the monitoring hosts). '
  'vigil.block_add refuses a network that overlaps one; a rule does not block an address in '
  'one (its message says so).';
select vigil._comment_columns('vigil.allowed_networks',
  'network', 'The network never blocked (cidr).',
  'reason', 'Why it is allowed.',
  'added_by', 'Who added it.');

-- Rule-driven blocking: the columns of the rule action.
alter table vigil.alert_rules add column if not exists block_for interval;
alter table vigil.alert_rules add column if not exists block_label text not null default 'ip';
do $$
begin
  if not exists (select from pg_constraint where conname = 'alert_rules_block_check') then
    alter table vigil.alert_rules add constraint alert_rules_block_check
      check ((block_for is null or block_for > interval '0') and block_label ~ '^\S{1,100}$');
  end if;
end $$;
select vigil._comment_columns('vigil.alert_rules',
  'block_for', 'Rule action: when an instance starts firing, the address in its label '
               'block_label is added to the deny list (vigil.blocked_networks) for this long, '
               'unless it is on the allow list; the firing message says which. null = no action.',
  'block_label', 'The instance label holding the address to block (default ip).');

create or replace view vigil.active_blocks as
select b.id, b.network, b.reason, b.added_by, b.added_at, b.expires_at, b.rule_name
  from vigil.blocked_networks b
 where b.expires_at is null or b.expires_at > now();
comment on view vigil.active_blocks is
  'The deny list entries in force now (not expired): what ingest enforces and the exports list.';

create or replace function vigil._network(p_text text, p_what text default 'network')
returns cidr
language plpgsql immutable
as $$
declare
  v_inet inet;
begin
  -- An address (203.0.113.7, 2001:db8::1) or a network (203.0.113.0/24) as cidr; an address
  -- with bits right of its mask (10.0.0.1/8) is refused with the network it may mean.
  begin
    v_inet := btrim(p_text)::inet;
  exception when invalid_text_representation then
    raise exception '"%" is not an IP address or network', p_text
      using errcode = '22023', hint = 'e.g. 203.0.113.7, 203.0.113.0/24 or 2001:db8::/48';
  end;
  if v_inet <> network(v_inet)::inet then
    raise exception '"%" has bits set right of its /% mask', p_text, masklen(v_inet)
      using errcode = '22023', hint = format('did you mean %s?', network(v_inet));
  end if;
  if masklen(v_inet) = 0 then
    raise exception 'the % "%" is every address', p_what, p_text
      using errcode = '22023', hint = 'give an address or a narrower network';
  end if;
  return network(v_inet);
end
$$;
comment on function vigil._network(text, text) is
  'Parses an address or network as cidr (an address becomes /32 or /128); refuses text that '
  'is neither, host bits right of the mask, and /0, with SQLSTATE 22023.';

create or replace function vigil._network_text(p_network cidr) returns text
language sql immutable
as $$
  select case when masklen(p_network) = case family(p_network) when 4 then 32 else 128 end
              then host(p_network) else text(p_network) end
$$;
comment on function vigil._network_text(cidr) is
  'A network as people and proxies write it: a single address without /32 or /128.';

create or replace function vigil.block_add(p_network text, p_for interval default null,
                                           p_reason text default null,
                                           p_added_by text default current_user,
                                           p_now timestamptz default now(),
                                           p_rule_id bigint default null,
                                           p_instance_key text default null)
returns setof vigil.blocked_networks
language plpgsql
as $$
declare
  v_net   cidr := vigil._network(p_network);
  v_allow vigil.allowed_networks;
  v_rule  text;
begin
  if p_for is not null and p_for <= interval '0' then
    raise exception 'a block must last longer than 0 (got %)', p_for
      using errcode = '22023', hint = 'give a duration such as 1h, or none: until removed';
  end if;
  select * into v_allow from vigil.allowed_networks a where a.network && v_net
   order by masklen(a.network) limit 1;
  if found then
    raise exception '% overlaps the allow list entry % (%): it is never blocked',
                    vigil._network_text(v_net), vigil._network_text(v_allow.network),
                    coalesce(v_allow.reason, 'no reason given')
      using errcode = '22023',
            hint = format('remove it from the allow list first: vigil block allow remove %s',
                          vigil._network_text(v_allow.network));
  end if;
  select name into v_rule from vigil.alert_rules where id = p_rule_id;
  -- Added again: the reason and who are replaced. An operator's expiry replaces the old one
  -- (shorter or longer, or none); a rule only ever extends an active block. An expired row
  -- starts a new block.
  return query
  insert into vigil.blocked_networks as b (network, reason, added_by, added_at, updated_at,
                                           expires_at, rule_id, rule_name, instance_key)
  values (v_net, nullif(btrim(p_reason), ''), coalesce(p_added_by, current_user), p_now, p_now,
          p_now + p_for, p_rule_id, v_rule, p_instance_key)
  on conflict (network) do update
    set reason = excluded.reason, added_by = excluded.added_by, updated_at = p_now,
        added_at = case when b.expires_at <= p_now then p_now else b.added_at end,
        expires_at = case
          when excluded.rule_id is null or b.expires_at <= p_now then excluded.expires_at
          when b.expires_at is null then null
          else greatest(b.expires_at, excluded.expires_at) end,
        rule_id = excluded.rule_id, rule_name = excluded.rule_name,
        instance_key = excluded.instance_key
  returning b.*;
end
$$;
comment on function vigil.block_add(text, interval, text, text, timestamptz, bigint, text) is
  'Adds a network (or address) to the deny list for p_for (null = until removed) with a '
  'reason and who added it; returns the row. Adding an entry again replaces its reason and '
  'expiry (a rule only extends it). Refuses (22023) text that is no network, a duration <= 0 '
  'and a network overlapping the allow list.';

create or replace function vigil.block_remove(p_network text, p_now timestamptz default now())
returns boolean
language sql
as $$
  with gone as (
    delete from vigil.blocked_networks where network = vigil._network(p_network)
    returning expires_at
  )
  select exists (select from gone where expires_at is null or expires_at > p_now)
$$;
comment on function vigil.block_remove(text, timestamptz) is
  'Removes the deny list entry of exactly that network; true when it was in force (false: '
  'there was none, or only an expired one, which is deleted too).';

create or replace function vigil.is_blocked(p_address inet, p_now timestamptz default now())
returns boolean
language sql stable
as $$
  select exists (select from vigil.blocked_networks b
                  where b.network >>= p_address
                    and (b.expires_at is null or b.expires_at > p_now))
$$;
comment on function vigil.is_blocked(inet, timestamptz) is
  'Whether an active deny list entry holds the address at p_now.';

create or replace function vigil.block_export(p_format text, p_now timestamptz default now())
returns text
language plpgsql stable
as $$
declare
  v_nets cidr[];
begin
  if p_format is null or p_format not in ('nginx', 'ipset', 'cidr') then
    raise exception 'unknown export format "%"', p_format
      using errcode = '22023', hint = 'nginx, ipset or cidr';
  end if;
  select coalesce(array_agg(b.network order by family(b.network), b.network), '{}')
    into v_nets
    from vigil.blocked_networks b
   where b.expires_at is null or b.expires_at > p_now;
  if p_format = 'nginx' then
    -- For `include`: one `deny` per entry (an empty list is an empty, valid file).
    return coalesce((select string_agg('deny ' || vigil._network_text(n) || ';' || E'\n', ''
                                       order by o)
                       from unnest(v_nets) with ordinality u(n, o)), '');
  elsif p_format = 'cidr' then
    return coalesce((select string_agg(text(n) || E'\n', '' order by o)
                       from unnest(v_nets) with ordinality u(n, o)), '');
  end if;
  -- ipset restore: the sets are created if missing and emptied, then filled, so entries
  -- removed or expired since the last run go away. IPv6 networks go to vigil-deny6.
  return 'create vigil-deny hash:net -exist' || E'\n' || 'flush vigil-deny' || E'\n'
    || coalesce((select string_agg('add vigil-deny ' || vigil._network_text(n) || ' -exist'
                                   || E'\n', '' order by o)
                   from unnest(v_nets) with ordinality u(n, o) where family(n) = 4), '')
    || case when exists (select from unnest(v_nets) n where family(n) = 6) then
         'create vigil-deny6 hash:net family inet6 -exist' || E'\n' || 'flush vigil-deny6'
         || E'\n'
         || (select string_agg('add vigil-deny6 ' || vigil._network_text(n) || ' -exist'
                               || E'\n', '' order by o)
               from unnest(v_nets) with ordinality u(n, o) where family(n) = 6)
       else '' end;
end
$$;
comment on function vigil.block_export(text, timestamptz) is
  'The deny list in force at p_now for the front proxy: nginx (`deny ADDRESS;` lines for '
  'include), ipset (restore format: create -exist, flush, add lines for the set vigil-deny, '
  'IPv6 in vigil-deny6) or cidr (one network per line). Expired entries are never listed.';

create or replace function vigil.allow_add(p_network text, p_reason text default null,
                                           p_added_by text default current_user,
                                           p_now timestamptz default now())
returns integer
language plpgsql
as $$
declare
  v_net   cidr := vigil._network(p_network, 'network to allow');
  v_wider vigil.blocked_networks;
  v_n     integer;
begin
  -- Blocks inside the allowed network end now (deleted); a wider block holding it is refused:
  -- lifting it would unblock more than was asked.
  select * into v_wider from vigil.blocked_networks b
   where b.network >> v_net and (b.expires_at is null or b.expires_at > p_now)
   order by masklen(b.network) limit 1;
  if found then
    raise exception '% is inside the blocked network % (%)', vigil._network_text(v_net),
                    vigil._network_text(v_wider.network), coalesce(v_wider.reason, 'no reason')
      using errcode = '22023',
            hint = format('remove that block first: vigil block remove %s',
                          vigil._network_text(v_wider.network));
  end if;
  insert into vigil.allowed_networks as a (network, reason, added_by, added_at)
  values (v_net, nullif(btrim(p_reason), ''), coalesce(p_added_by, current_user), p_now)
  on conflict (network) do update set reason = excluded.reason, added_by = excluded.added_by;
  with gone as (
    delete from vigil.blocked_networks b where b.network <<= v_net
    returning b.expires_at
  )
  select count(*) filter (where expires_at is null or expires_at > p_now) into v_n from gone;
  return v_n;
end
$$;
comment on function vigil.allow_add(text, text, text, timestamptz) is
  'Adds a network to the allow list (added again: its reason is replaced) and removes the '
  'deny list entries inside it; returns how many of those were in force. Refuses (22023) a '
  'network inside a wider active block.';

create or replace function vigil.allow_remove(p_network text) returns boolean
language sql
as $$
  with gone as (
    delete from vigil.allowed_networks where network = vigil._network(p_network) returning id
  )
  select exists (select from gone)
$$;
comment on function vigil.allow_remove(text) is
  'Removes the allow list entry of exactly that network; true when there was one.';

create or replace function vigil._rule_block(p_rule vigil.alert_rules, p_key text,
                                             p_labels jsonb, p_value double precision,
                                             p_now timestamptz)
returns text
language plpgsql
as $$
declare
  v_text  text := p_labels ->> p_rule.block_label;
  v_addr  inet;
  v_allow vigil.allowed_networks;
  v_block vigil.blocked_networks;
begin
  -- The rule action of an instance that starts firing: one line for its message (null: the
  -- rule has no block_for). A failure to block never fails the evaluation: it is told.
  if p_rule.block_for is null then
    return null;
  end if;
  if v_text is null or btrim(v_text) = '' then
    return format('Not blocked: the instance has no label "%s".', p_rule.block_label);
  end if;
  begin
    v_addr := btrim(v_text)::inet;
  exception when invalid_text_representation then
    return format('Not blocked: %s="%s" is not an IP address.', p_rule.block_label, v_text);
  end;
  v_addr := host(v_addr)::inet;  -- the address itself, whatever mask the label had
  select * into v_allow from vigil.allowed_networks a where a.network >>= v_addr
   order by masklen(a.network) desc limit 1;
  if found then
    return format('Not blocked: %s is on the allow list (%s%s).', host(v_addr),
                  vigil._network_text(v_allow.network),
                  coalesce(': ' || v_allow.reason, ''));
  end if;
  begin
    select * into v_block
      from vigil.block_add(host(v_addr), p_rule.block_for,
                           format('rule %s: %s = %s', p_rule.name,
                                  coalesce(p_labels ->> '__name__', 'value'),
                                  coalesce(vigil._format_value(p_value), 'no data')),
                           'rule:' || p_rule.name, p_now, p_rule.id, p_key);
  exception when others then
    return format('Not blocked: %s (%s).', host(v_addr), sqlerrm);
  end;
  return format('Blocked %s for %s (until %s).', host(v_addr),
                vigil.short_interval(p_rule.block_for), vigil._utc(v_block.expires_at));
end
$$;
comment on function vigil._rule_block(vigil.alert_rules, text, jsonb, double precision, timestamptz) is
  'Rule action (alert_rules.block_for): blocks the address in the instance''s block_label for '
  'block_for unless it is allow-listed, with the rule and value as the reason; returns the '
  'line the firing message gets (blocked, or why not), null when the rule has no block_for.';

-- Job: expired entries are deleted once they are config.keep old ---------------------------

create or replace function vigil.prune_blocked_networks(p_now timestamptz, p_config jsonb)
returns integer
language sql
as $$
  with gone as (
    delete from vigil.blocked_networks
     where expires_at <= p_now - coalesce((p_config ->> 'keep')::interval, interval '7 days')
    returning id
  )
  select count(*)::integer from gone
$$;
comment on function vigil.prune_blocked_networks(timestamptz, jsonb) is
  'Deletes deny list entries that expired more than config.keep ago (default 7 days; they '
  'stopped being enforced and exported when they expired). Returns how many.';

create or replace procedure vigil.prune_blocked_networks_job(job_id integer, config jsonb)
language plpgsql
as $$
begin
  perform vigil.prune_blocked_networks(now(), coalesce(config, '{}'));
end
$$;
comment on procedure vigil.prune_blocked_networks_job(integer, jsonb) is
  'TimescaleDB job wrapper around vigil.prune_blocked_networks(now(), config).';

select vigil._register_job('prune_blocked_networks', 'vigil.prune_blocked_networks',
                           interval '1 hour', '{"keep": "7 days"}',
                           p_timescale_job => 'vigil.prune_blocked_networks_job',
                           p_timescale_every => interval '1 hour');
