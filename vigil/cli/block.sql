-- `vigil block`: the deny and allow lists (sql/77_blocklist.sql) from the command line.

-- name: block_add
-- `vigil block add`: add (or add again) a network; the row as written.
select vigil._network_text(network) as network, reason, added_by, added_at, expires_at
  from vigil.block_add(%(network)s, %(for)s, %(reason)s, %(by)s);

-- name: block_list
-- `vigil block list`: the entries in force (all: also expired ones not yet pruned), soonest
-- to expire first, permanent last. Its columns are the fields of `--json`.
select vigil._network_text(b.network) as network, b.reason, b.added_by, b.added_at,
       b.updated_at, b.expires_at, b.rule_name as rule,
       b.expires_at is null or b.expires_at > now() as active
  from vigil.blocked_networks b
 where %(all)s or b.expires_at is null or b.expires_at > now()
 order by b.expires_at nulls last, b.network;

-- name: block_remove
-- `vigil block remove`: true when the entry was in force.
select vigil.block_remove(%s);

-- name: block_export
-- `vigil block export`: the list in force in a proxy's format.
select vigil.block_export(%s);

-- name: allow_add
-- `vigil block allow add`: how many blocks inside the network were lifted.
select vigil.allow_add(%(network)s, %(reason)s, %(by)s);

-- name: allow_list
-- `vigil block allow list`: the allow list; the columns are the fields of `--json`.
select vigil._network_text(network) as network, reason, added_by, added_at
  from vigil.allowed_networks order by network;

-- name: allow_remove
-- `vigil block allow remove`: true when there was such an entry.
select vigil.allow_remove(%s);

-- name: rule_block_set
-- `vigil rules add|edit --block-for/--block-label`: the rule action's columns (null keeps).
update vigil.alert_rules
   set block_for = case when %(clear)s then null else coalesce(%(for)s, block_for) end,
       block_label = coalesce(%(label)s, block_label)
 where name = %(name)s
returning block_for, block_label;

-- name: rule_blocks
-- The rule action of every rule that has one (for `vigil rules list|show`).
select name, block_for, block_label from vigil.alert_rules where block_for is not null;

-- name: rule_block_columns
-- Whether the database has the rule action's columns (sql/77_blocklist.sql).
select exists (select from pg_attribute
                where attrelid = 'vigil.alert_rules'::regclass and attname = 'block_for'
                  and not attisdropped);
