-- Public status pages and badges: read-only views of chosen services (70_uptime) and
-- heartbeats (30_heartbeats) for people without a login.
-- A badge is a random key per service or heartbeat: its URL shows the state or the uptime
-- and nothing else. A status page is a slug, a title and chosen items; an item shows its
-- public label, state, uptime and incidents, and its URL or host only when show_details.
-- Exposes: tables vigil.badges, status_pages, status_page_items; vigil.heartbeat_uptime(),
-- public_state(), badge_key(), badge_delete(), badge_read(), status_page_add(),
-- status_page_delete(), status_page_read(), status_page_days(), status_page_incidents();
-- the view vigil.badge_list.

create table if not exists vigil.badges (
  id         bigint generated always as identity,
  key        text not null default replace(gen_random_uuid()::text, '-', ''),
  service_id bigint,
  metric_id  bigint,
  created_at timestamptz not null default now(),
  constraint badges_pkey primary key (id),
  constraint badges_key_key unique (key),
  constraint badges_service_key unique (service_id),
  constraint badges_metric_key unique (metric_id),
  constraint badges_service_fkey foreign key (service_id)
    references vigil.services (id) on delete cascade,
  constraint badges_metric_fkey foreign key (metric_id)
    references vigil.metrics (id) on delete cascade,
  constraint badges_target_check check (num_nonnulls(service_id, metric_id) = 1)
);
comment on table vigil.badges is
  'One public badge per service or heartbeat metric: /badge/KEY/... shows its state or uptime '
  'without a login. The key only makes the URL unguessable; it grants nothing else, so it is '
  'kept as is (the CLI prints the URL again on request).';
select vigil._comment_columns('vigil.badges',
  'key', 'Random 122-bit identifier (a UUID v4 without dashes), the path part of the URL.',
  'service_id', 'The service shown (exactly one of service_id, metric_id is set).',
  'metric_id', 'The heartbeat metric shown.');

create table if not exists vigil.status_pages (
  id         bigint generated always as identity,
  slug       text not null,
  title      text not null,
  created_at timestamptz not null default now(),
  constraint status_pages_pkey primary key (id),
  constraint status_pages_slug_key unique (slug),
  constraint status_pages_slug_check check (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  constraint status_pages_title_check check (length(title) between 1 and 200)
);
comment on table vigil.status_pages is
  'Public status pages (opt-in): /status/SLUG shows the chosen items without a login.';
select vigil._comment_columns('vigil.status_pages',
  'slug', 'The URL path part: lowercase letters, digits and dashes.');

create table if not exists vigil.status_page_items (
  page_id      bigint not null,
  position     integer not null,
  service_id   bigint,
  metric_id    bigint,
  label        text not null,
  show_details boolean not null default false,
  constraint status_page_items_pkey primary key (page_id, position),
  constraint status_page_items_page_fkey foreign key (page_id)
    references vigil.status_pages (id) on delete cascade,
  constraint status_page_items_service_fkey foreign key (service_id)
    references vigil.services (id) on delete cascade,
  constraint status_page_items_metric_fkey foreign key (metric_id)
    references vigil.metrics (id) on delete cascade,
  constraint status_page_items_target_check check (num_nonnulls(service_id, metric_id) = 1)
);
comment on table vigil.status_page_items is
  'The services and heartbeats of a status page, in display order.';
select vigil._comment_columns('vigil.status_page_items',
  'position', 'Display order on the page (1 = first).',
  'label', 'The public name (default: the service name, or the heartbeat name without its '
           'host).',
  'show_details', 'Show the service URL or the heartbeat host on the page (default: hidden).');
create index if not exists status_page_items_service_idx
  on vigil.status_page_items (service_id);
create index if not exists status_page_items_metric_idx on vigil.status_page_items (metric_id);

create or replace function vigil.heartbeat_uptime(p_metric_id bigint, p_window interval,
                                                  p_now timestamptz default now())
returns double precision
language sql stable
as $$
  -- Time-weighted from the transitions: the state at the window's start is the from_state
  -- of the first transition after it (or the current state), then each transition starts a
  -- segment. Known time starts at the metric's creation, first report or first transition.
  with m as (
    select greatest(p_now - p_window,
                    least(x.created_at,
                          (select min(t.at) from vigil.transitions t where t.metric_id = x.id),
                          (select min(h.at) from vigil.metric_history h
                            where h.metric_id = x.id))) as known,
           coalesce((select t.from_state from vigil.transitions t
                      where t.metric_id = x.id and t.at > p_now - p_window
                      order by t.at limit 1),
                    x.state) as first_state
      from vigil.metrics x where x.id = p_metric_id
  ), points as (
    select known as at, first_state as state from m
    union all
    select t.at, t.to_state from vigil.transitions t, m
     where t.metric_id = p_metric_id and t.at > m.known and t.at < p_now
  ), segments as (
    select state, extract(epoch from coalesce(lead(at) over (order by at), p_now) - at) as secs
      from points
     where at < p_now
  )
  select case when sum(secs) > 0
              then 100 * coalesce(sum(secs) filter (where state = 'ok'), 0) / sum(secs) end
    from segments
$$;
comment on function vigil.heartbeat_uptime(bigint, interval, timestamptz) is
  'Percent of the last p_window a heartbeat metric was ok (time-weighted from its '
  'transitions), or null when nothing is known about that window.';

create or replace function vigil.public_state(p_service_id bigint, p_metric_id bigint)
returns text
language sql stable
as $$
  select coalesce(
    (select case when not s.enabled then 'paused' else s.state end
       from vigil.services s where s.id = p_service_id),
    (select case when m.state = 'ok' then 'up'
                 when r.op is null then 'late'
                 else 'alert' end
       from vigil.metrics m join vigil.alert_rules r on r.metric_type = m.type
      where m.id = p_metric_id),
    'unknown')
$$;
comment on function vigil.public_state(bigint, bigint) is
  'The public state word of a service (up, down, unknown, paused) or a heartbeat (up; late '
  'when its deadline passed; alert when its threshold is crossed).';

create or replace function vigil._public_uptime(p_service_id bigint, p_metric_id bigint,
                                                p_window interval, p_now timestamptz)
returns double precision
language sql stable
as $$
  select case when p_service_id is not null
              then vigil.service_uptime(p_service_id, p_window, p_now)
              else vigil.heartbeat_uptime(p_metric_id, p_window, p_now) end
$$;
comment on function vigil._public_uptime(bigint, bigint, interval, timestamptz) is
  'Uptime percent of a service or a heartbeat metric over the last p_window.';

create or replace function vigil._public_target(p_service text, p_heartbeat text,
                                                out o_service_id bigint, out o_metric_id bigint)
language plpgsql stable
as $$
begin
  if num_nonnulls(p_service, p_heartbeat) <> 1 then
    raise exception 'give a service or a heartbeat'
      using errcode = '22023', hint = 'a service NAME, or a heartbeat HOST/NAME';
  end if;
  if p_service is not null then
    select id into o_service_id from vigil.services where name = p_service;
    if not found then
      raise exception 'no service named "%"', p_service
        using errcode = '22023', hint = 'see `vigil service list`';
    end if;
  else
    select id into o_metric_id from vigil.metrics
     where host || '/' || name = p_heartbeat;
    if not found then
      raise exception 'no heartbeat "%"', p_heartbeat
        using errcode = '22023', hint = 'give HOST/NAME of a metric on the dashboard';
    end if;
  end if;
end
$$;
comment on function vigil._public_target(text, text) is
  'Resolves a service name or a heartbeat HOST/NAME to its id; raises 22023 when unknown.';

create or replace function vigil.badge_key(p_service text, p_heartbeat text default null)
returns text
language plpgsql
as $$
declare
  v_t   record;
  v_key text;
begin
  v_t := vigil._public_target(p_service, p_heartbeat);
  insert into vigil.badges (service_id, metric_id) values (v_t.o_service_id, v_t.o_metric_id)
  on conflict do nothing
  returning key into v_key;
  if v_key is null then
    select key into v_key from vigil.badges
     where service_id = v_t.o_service_id or metric_id = v_t.o_metric_id;
  end if;
  return v_key;
end
$$;
comment on function vigil.badge_key(text, text) is
  'The badge key of a service (p_service) or a heartbeat (p_heartbeat = HOST/NAME), created '
  'on first use; raises 22023 for an unknown one.';

create or replace function vigil.badge_delete(p_key text) returns boolean
language sql
as $$
  delete from vigil.badges where key = p_key returning true
$$;
comment on function vigil.badge_delete(text) is
  'Deletes a badge (its URLs then answer 404); true when it existed.';

create or replace view vigil.badge_list as
select b.key, case when b.service_id is not null then 'service' else 'heartbeat' end as kind,
       coalesce(s.name, m.host || '/' || m.name) as target, b.created_at
  from vigil.badges b
  left join vigil.services s on s.id = b.service_id
  left join vigil.metrics m on m.id = b.metric_id;
comment on view vigil.badge_list is
  'Every badge with what it shows: a service name or a heartbeat HOST/NAME.';

create or replace function vigil.badge_read(p_key text, p_now timestamptz default now())
returns table (label text, state text, uptime_24h double precision,
               uptime_7d double precision, uptime_30d double precision)
language sql stable
as $$
  select coalesce(s.name, m.name), vigil.public_state(b.service_id, b.metric_id),
         vigil._public_uptime(b.service_id, b.metric_id, interval '24 hours', p_now),
         vigil._public_uptime(b.service_id, b.metric_id, interval '7 days', p_now),
         vigil._public_uptime(b.service_id, b.metric_id, interval '30 days', p_now)
    from vigil.badges b
    left join vigil.services s on s.id = b.service_id
    left join vigil.metrics m on m.id = b.metric_id
   where b.key = p_key
$$;
comment on function vigil.badge_read(text, timestamptz) is
  'What a badge shows: the public label (service name, heartbeat name without host), state '
  'and uptime over 24 h / 7 d / 30 d; no row for an unknown key.';

create or replace function vigil.status_page_add(p_slug text, p_title text,
                                                 p_services text[] default '{}',
                                                 p_heartbeats text[] default '{}',
                                                 p_details boolean default false)
returns bigint
language plpgsql
as $$
declare
  v_id  bigint;
  v_pos integer := 0;
  v_t   record;
  v_x   text;
begin
  if p_slug !~ '^[a-z0-9][a-z0-9-]{0,62}$' then
    raise exception 'status page slug "%" is not valid', p_slug
      using errcode = '22023', hint = 'use lowercase letters, digits and dashes, e.g. acme-prod';
  end if;
  if coalesce(cardinality(p_services), 0) + coalesce(cardinality(p_heartbeats), 0) = 0 then
    raise exception 'a status page needs at least one service or heartbeat'
      using errcode = '22023', hint = 'add --service NAME or --heartbeat HOST/NAME';
  end if;
  insert into vigil.status_pages (slug, title) values (p_slug, p_title) returning id into v_id;
  foreach v_x in array coalesce(p_services, '{}') loop
    v_t := vigil._public_target(v_x, null);
    v_pos := v_pos + 1;
    insert into vigil.status_page_items (page_id, position, service_id, label, show_details)
    values (v_id, v_pos, v_t.o_service_id, v_x, p_details);
  end loop;
  foreach v_x in array coalesce(p_heartbeats, '{}') loop
    v_t := vigil._public_target(null, v_x);
    v_pos := v_pos + 1;
    insert into vigil.status_page_items (page_id, position, metric_id, label, show_details)
    select v_id, v_pos, v_t.o_metric_id, m.name, p_details
      from vigil.metrics m where m.id = v_t.o_metric_id;
  end loop;
  return v_id;
exception when unique_violation then
  raise exception 'a status page "%" exists already, or an item is listed twice', p_slug
    using errcode = '23505', hint = 'delete it first or choose another slug';
end
$$;
comment on function vigil.status_page_add(text, text, text[], text[], boolean) is
  'Creates a status page with services (by name) and heartbeats (HOST/NAME) in that order; '
  'p_details shows their URLs and hosts. Returns its id; 22023 for bad input, 23505 when the '
  'slug is taken. Labels and show_details per item can be changed with SQL.';

create or replace function vigil.status_page_delete(p_slug text) returns boolean
language sql
as $$
  delete from vigil.status_pages where slug = p_slug returning true
$$;
comment on function vigil.status_page_delete(text) is
  'Deletes a status page (its URL then answers 404); true when it existed.';

create or replace function vigil.status_page_read(p_slug text, p_now timestamptz default now())
returns table (title text, item integer, label text, detail text, state text,
               uptime_24h double precision, uptime_7d double precision,
               uptime_30d double precision, uptime_90d double precision)
language sql stable
as $$
  select p.title, i.position, i.label,
         case when i.show_details then coalesce(s.url, m.host) end,
         vigil.public_state(i.service_id, i.metric_id),
         vigil._public_uptime(i.service_id, i.metric_id, interval '24 hours', p_now),
         vigil._public_uptime(i.service_id, i.metric_id, interval '7 days', p_now),
         vigil._public_uptime(i.service_id, i.metric_id, interval '30 days', p_now),
         vigil._public_uptime(i.service_id, i.metric_id, interval '90 days', p_now)
    from vigil.status_pages p
    join vigil.status_page_items i on i.page_id = p.id
    left join vigil.services s on s.id = i.service_id
    left join vigil.metrics m on m.id = i.metric_id
   where p.slug = p_slug
   order by i.position
$$;
comment on function vigil.status_page_read(text, timestamptz) is
  'The items of a status page: public label, detail (URL or host, only when show_details), '
  'state and uptime over 24 h / 7 d / 30 d / 90 d; no row for an unknown slug.';

create or replace function vigil.status_page_days(p_slug text, p_days integer default 90,
                                                  p_now timestamptz default now())
returns table (item integer, day date, uptime double precision)
language sql stable
as $$
  -- Per UTC day, oldest first; today counts up to p_now.
  select i.position, d.day::date,
         vigil._public_uptime(i.service_id, i.metric_id,
                              least(p_now, d.day + interval '1 day') - d.day,
                              least(p_now, d.day + interval '1 day'))
    from vigil.status_pages p
    join vigil.status_page_items i on i.page_id = p.id
    cross join generate_series(date_trunc('day', p_now at time zone 'UTC')
                                 - (p_days - 1) * interval '1 day',
                               date_trunc('day', p_now at time zone 'UTC'),
                               interval '1 day') as g(local_day)
    cross join lateral (select g.local_day at time zone 'UTC' as day) d
   where p.slug = p_slug
   order by i.position, d.day
$$;
comment on function vigil.status_page_days(text, integer, timestamptz) is
  'The uptime bars of a status page: per item and UTC day of the last p_days, the uptime '
  'percent of that day (null: nothing known).';

create or replace function vigil.status_page_incidents(p_slug text, p_days integer default 90,
                                                       p_now timestamptz default now())
returns table (item integer, label text, started timestamptz, ended timestamptz,
               state text, detail text)
language sql stable
as $$
  -- Services: their downtime events. Heartbeats: each transition to alert until the next
  -- transition back to ok. detail: the reason, only for items that show details.
  with items as (
    select i.* from vigil.status_pages p join vigil.status_page_items i on i.page_id = p.id
     where p.slug = p_slug
  ), heartbeat as (
    select i.position, i.label, t.at as started,
           (select min(n.at) from vigil.transitions n
             where n.metric_id = t.metric_id and n.at > t.at and n.to_state = 'ok') as ended,
           t.reason, i.show_details, case when r.op is null then 'late' else 'alert' end as kind
      from items i
      join vigil.transitions t on t.metric_id = i.metric_id
      join vigil.metrics m on m.id = i.metric_id
      join vigil.alert_rules r on r.metric_type = m.type
     where t.to_state = 'alert'
  )
  select i.position, i.label, e.date_started, e.date_ended, 'down',
         case when i.show_details then e.reason end
    from items i join vigil.service_events e on e.service_id = i.service_id
   where e.event = 'downtime'
     and coalesce(e.date_ended, p_now) > p_now - p_days * interval '1 day'
  union all
  select h.position, h.label, h.started, h.ended,
         h.kind,
         case when h.show_details then h.reason end
    from heartbeat h
   where coalesce(h.ended, p_now) > p_now - p_days * interval '1 day'
  order by 3 desc
$$;
comment on function vigil.status_page_incidents(text, integer, timestamptz) is
  'The incidents of a status page in the last p_days, newest first: item, start, end (null: '
  'ongoing), kind (down, late, alert) and the reason only for items that show details.';
