-- The deny list from the API: the guard's cache, the export route and the /blocks page.

-- name: active_blocks
-- The guard's cache (api/block/guard.py): every entry in force now.
select network::text, reason, expires_at from vigil.active_blocks;

-- name: block_export
-- GET /v1/block/export: the list in force in a proxy's format (nginx, ipset, cidr).
select vigil.block_export(%s);

-- name: block_page
-- The /blocks page: entries in force first (soonest to expire first, permanent last), then
-- those expired in the last day; each with whether it is active.
select b.id, vigil._network_text(b.network) as network, b.reason, b.added_by, b.added_at,
       b.updated_at, b.expires_at, b.rule_name,
       b.expires_at is null or b.expires_at > now() as active
  from vigil.blocked_networks b
 where b.expires_at is null or b.expires_at > now() - interval '1 day'
 order by (b.expires_at is null or b.expires_at > now()) desc, b.expires_at nulls last, b.network
 limit 500;

-- name: allow_page
-- The /blocks page: the allow list.
select a.id, vigil._network_text(a.network) as network, a.reason, a.added_by, a.added_at
  from vigil.allowed_networks a
 order by a.network;

-- name: block_add
-- The /blocks form: add (or add again) a network for a duration (null: until removed).
select vigil._network_text(network) from vigil.block_add(%(network)s, %(for)s, %(reason)s,
                                                         %(by)s);

-- name: block_remove
-- The /blocks page: remove one entry; true when it was in force.
select vigil.block_remove(%s);

-- name: allow_add
-- The /blocks page: allow a network; how many blocks inside it were lifted.
select vigil.allow_add(%(network)s, %(reason)s, %(by)s);

-- name: allow_remove
-- The /blocks page: remove an allow list entry; true when there was one.
select vigil.allow_remove(%s);
