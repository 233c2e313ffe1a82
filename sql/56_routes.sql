-- Route normalisation: a request path -> its route, e.g. /api/orders/42/items -> /api/orders/:id/items.
--
-- The rules are rows (vigil.route_rules): regular expressions applied in position order, each
-- replacing every match (regexp_replace with the 'g' flag). Defaults: UUIDs, e-mail addresses,
-- ISO dates, hex hashes of 16 or more digits and numeric path segments become :id (:email,
-- :date); static files keep their names (/css/site-2.css stays). Tune with plain SQL (see
-- docs/requests.md "Overview and routes"): insert, update, disable or delete rows.
--
-- Speed: vigil.request_route() runs once per request row in the log-metric refreshes and the
-- Requests overview, so it is not a loop over the table. Any change to vigil.route_rules
-- regenerates it (a statement trigger) as one SQL expression of nested regexp_replace calls with
-- the enabled rules as constants: inlined by the planner, no table read per row.
--
-- Exposes: table vigil.route_rules; vigil.request_route(text); vigil.route_rules_compile();
-- vigil.requests_search_route() (vigil.requests_search plus route and user agent filters).

-- ---------------------------------------------------------------------------------------
-- The rules

do $$
begin
  if to_regclass('vigil.route_rules') is null then
    create table vigil.route_rules (
      position    integer not null,
      pattern     text not null,
      replacement text not null,
      comment     text,
      enabled     boolean not null default true,
      constraint route_rules_pkey primary key (position),
      constraint route_rules_pattern_check check (pattern <> '' and length(pattern) <= 1000),
      constraint route_rules_replacement_check check (length(replacement) <= 200)
    );
    -- The defaults, once: a default an operator deleted does not come back with a migration.
    insert into vigil.route_rules (position, pattern, replacement, comment) values
      (100, '[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}',
       ':id', 'UUIDs anywhere in the path'),
      (200, '[A-Za-z0-9._%+-]+(@|%40)[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}',
       ':email', 'e-mail addresses, also with @ percent-encoded: /users/ann@example.com'),
      (300, '(^|/)[0-9]{4}-[0-9]{2}-[0-9]{2}(?=/|$)', '\1:date',
       'ISO dates as a whole segment: /2026-11-30/'),
      (400, '(^|[/._-])[0-9A-Fa-f]{16,}(?=[/._-]|$)', '\1:id',
       'hex hashes and ids of 16 or more digits (commits, tokens, fingerprinted assets)'),
      (500, '(^|/)[0-9]+(?=/|$)', '\1:id', 'numeric segments: /orders/42/items'),
      (600, '(^|/)[0-9]+(?=\.[A-Za-z0-9]+$)', '\1:id',
       'a numeric last segment with a format extension: /orders/42.json, /blog/101.html');
  end if;
end $$;

comment on table vigil.route_rules is
  'Route normalisation rules (docs/requests.md): each enabled rule, in position order, replaces '
  'every match of its regular expression in the path by its replacement '
  '(regexp_replace(path, pattern, replacement, ''g'')). Changing the rows regenerates '
  'vigil.request_route(). Log metrics and the Requests overview group by the result.';
select vigil._comment_columns('vigil.route_rules',
  'position', 'Order of application (ascending; unique): leave gaps (100, 200, ...) to insert '
              'a rule between two.',
  'pattern', 'A PostgreSQL (ARE) regular expression, case-sensitive; checked when stored.',
  'replacement', 'What each match becomes; \1 .. \9 insert a captured group, \& the match.',
  'comment', 'What the rule is for.',
  'enabled', 'Disabled rules are kept but not applied.');

-- ---------------------------------------------------------------------------------------
-- The function, generated from the rules

create or replace function vigil.route_rules_compile() returns text
language plpgsql
as $$
declare
  v_expr text := 'p_path';
  v_rule record;
begin
  -- One compile at a time: two transactions replacing the function together would collide.
  perform pg_advisory_xact_lock(hashtext('vigil.route_rules_compile'));
  for v_rule in
    select pattern, replacement from vigil.route_rules where enabled order by position
  loop
    v_expr := format('regexp_replace(%s, %L, %L, %L)', v_expr, v_rule.pattern,
                     v_rule.replacement, 'g');
  end loop;
  execute format(
    'create or replace function vigil.request_route(p_path text) returns text '
    'language sql stable parallel safe as %L',
    'select ' || v_expr);
  comment on function vigil.request_route(text) is
    'The route of a request path: the enabled rules of vigil.route_rules applied in position '
    'order (/orders/42 -> /orders/:id); null for null. Generated from the rules by '
    'vigil.route_rules_compile() whenever they change: do not edit it, edit the rules.';
  return v_expr;
end
$$;
comment on function vigil.route_rules_compile() is
  'Regenerates vigil.request_route() from the enabled rows of vigil.route_rules (one SQL '
  'expression of nested regexp_replace calls). Run by a trigger on every change of the '
  'rules; returns the expression.';

create or replace function vigil._route_rules_check() returns trigger
language plpgsql
as $$
begin
  begin
    perform regexp_replace('/', new.pattern, new.replacement, 'g');
  exception when invalid_regular_expression then
    raise exception 'route rule %: the pattern % is not a valid regular expression (%)',
                    new.position, quote_literal(new.pattern), sqlerrm
      using errcode = '22023',
            hint = 'PostgreSQL regular expressions (ARE): '
                   'https://www.postgresql.org/docs/current/functions-matching.html';
  end;
  return new;
end
$$;
comment on function vigil._route_rules_check() is
  'Trigger: refuses a route rule whose pattern is not a valid regular expression (22023).';

create or replace function vigil._route_rules_changed() returns trigger
language plpgsql
as $$
begin
  perform vigil.route_rules_compile();
  return null;
end
$$;
comment on function vigil._route_rules_changed() is
  'Statement trigger: regenerates vigil.request_route() after any change of vigil.route_rules.';

drop trigger if exists route_rules_check on vigil.route_rules;
create trigger route_rules_check
  before insert or update of pattern, replacement on vigil.route_rules
  for each row execute function vigil._route_rules_check();
drop trigger if exists route_rules_changed on vigil.route_rules;
create trigger route_rules_changed
  after insert or update or delete or truncate on vigil.route_rules
  for each statement execute function vigil._route_rules_changed();

-- The function as the rules are now (also its first definition).
select vigil.route_rules_compile();

-- ---------------------------------------------------------------------------------------
-- Search by route (the Requests page's and GET /v1/requests' route= and agent= filters)

create or replace function vigil.requests_search_route(
  p_route      text default null,
  p_user_agent text default null,
  p_from       timestamptz default null,
  p_to         timestamptz default null,
  p_host       text default null,
  p_status_min integer default null,
  p_status_max integer default null,
  p_method     text default null,
  p_path       text default null,
  p_ip         cidr default null,
  p_after_at   timestamptz default null,
  p_after_key  bigint default null,
  p_limit      integer default 100)
returns setof vigil.requests
language plpgsql stable
as $$
declare
  v_where text := 'true';
begin
  if p_limit is null or p_limit not between 1 and 1000 then
    raise exception 'limit must be between 1 and 1000' using errcode = '22023';
  end if;
  if p_from is not null then v_where := v_where || ' and at >= $1'; end if;
  if p_to is not null then v_where := v_where || ' and at < $2'; end if;
  if p_host is not null then v_where := v_where || ' and (host = $3 or vhost = $3)'; end if;
  if p_status_min is not null then v_where := v_where || ' and status >= $4'; end if;
  if p_status_max is not null then v_where := v_where || ' and status <= $5'; end if;
  if p_method is not null then v_where := v_where || ' and method = $6'; end if;
  if p_path is not null and p_path <> '' then
    v_where := v_where || ' and path like vigil._like_escape($7) || ''%''';
  end if;
  if p_ip is not null then v_where := v_where || ' and ip <<= $8'; end if;
  if p_after_at is not null then
    v_where := v_where || ' and (at, key) < ($9, coalesce($10, -9223372036854775808))';
  end if;
  if p_route is not null then
    v_where := v_where || ' and vigil.request_route(path) = $12';
  end if;
  if p_user_agent is not null then v_where := v_where || ' and user_agent = $13'; end if;
  return query execute format(
    'select * from vigil.requests where %s order by at desc, key desc limit $11', v_where)
    using p_from, p_to, p_host, p_status_min, p_status_max, p_method, p_path, p_ip,
          p_after_at, p_after_key, p_limit, p_route, p_user_agent;
end
$$;
comment on function vigil.requests_search_route(text, text, timestamptz, timestamptz, text,
                                                integer, integer, text, text, cidr,
                                                timestamptz, bigint, integer) is
  'vigil.requests_search() with two more filters (null = any): the route '
  '(vigil.request_route(path) equals p_route, e.g. /orders/:id) and the exact user agent. '
  'The route is computed per record in the time range: give a range on large tables.';
