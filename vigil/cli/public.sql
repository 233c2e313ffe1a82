-- `vigil badge` and `vigil status-page` (vigil/cli/public.py): public badges and status
-- pages (sql/75_public.sql).

-- name: badge_key
-- The badge key of a service name or a heartbeat HOST/NAME, created on first use.
select vigil.badge_key(%s, %s);

-- name: badge_list
-- Every badge: key, kind, target, created.
select key, kind, target, created_at from vigil.badge_list order by kind, target;

-- name: badge_delete
-- Deletes a badge by key; true when it existed.
select vigil.badge_delete(%s);

-- name: status_page_add
-- Creates a status page: slug, title, service names, heartbeats HOST/NAME, show details.
select vigil.status_page_add(%s, %s, %s, %s, %s);

-- name: status_page_list
-- Every status page with its items' labels in order.
select p.slug, p.title, array_agg(i.label order by i.position), p.created_at
  from vigil.status_pages p join vigil.status_page_items i on i.page_id = p.id
 group by p.id order by p.slug;

-- name: status_page_delete
-- Deletes a status page by slug; true when it existed.
select vigil.status_page_delete(%s);
