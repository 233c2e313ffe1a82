-- The queries of `vigil stat` (loaded by vigil/cli/stat.py): one statement per view, each
-- returning one JSON document that the command formats. They only read: heartbeats
-- (sql/30_heartbeats.sql), series (60_series.sql), request records (55_requests.sql), journal
-- lines (50_journal.sql) and alert instances (15_alerts.sql).
--
-- Parameters shared by both (the scans of requests and journal lines use them directly, not
-- through the CTE p, so that the planner sees the values and picks the (host, at) index):
--   now       the time of the view (the command passes the clock; tests a fixed time)
--   names     the series names the command recognises (CPU, memory, load, disk), text[]
--   patterns  LIKE patterns of recognised names (collectd's df_<mount>_percent_bytes_used)
-- A series belongs to a host by its `host` label or else by its `instance` label without the
-- port (Prometheus: instance "web-1:9100" is host web-1). Per-CPU series (label cpu other
-- than cpu-total) are left out: the total says it.

-- name: overview
-- `vigil stat`: every known host (heartbeat metrics, series, alert instances, and request
-- records or journal lines of the last hour) with its heartbeat states, disk reports, the
-- latest value of its recognised series, its requests and errors of the last 5 minutes and
-- its number of firing alerts: {"now": ..., "hosts": [{"host": ..., ...}, ...]}. With since
-- (not null), each host's requests also get `history`: their count in each of nb buckets
-- over [since, now).
with p as (
  select x.*, (x.now - x.since) / nullif(x.nb, 0) as step
    from (select %(now)s::timestamptz as now, %(since)s::timestamptz as since,
                 %(buckets)s::integer as nb) x
), rs as (
  select s.id, s.name, s.labels,
         coalesce(s.labels ->> 'host', regexp_replace(s.labels ->> 'instance', ':[0-9]+$', ''))
           as host
    from vigil.series s
   where (s.name = any(%(names)s::text[]) or s.name like any(%(patterns)s::text[]))
     and (s.labels ? 'host' or s.labels ? 'instance')
     and coalesce(s.labels ->> 'cpu', 'cpu-total') = 'cpu-total'
), hosts as (
  select m.host from vigil.metrics m
  union
  select rs.host from rs
  union
  select i.labels ->> 'host' from vigil.alert_instances i
   where i.state = 'firing' and i.labels ? 'host'
  union
  select r.host from vigil.requests r, p
   where r.at >= p.now - interval '1 hour' and r.at <= p.now and r.host is not null
  union
  select j.host from vigil.journal_lines j, p
   where j.at >= p.now - interval '1 hour' and j.at <= p.now and j.host is not null
), request_buckets as materialized (
  -- One pass over the period for every host (not one index scan per host).
  select b.host, b.n,
         least(p.nb, 1 + round(extract(epoch from b.start - p.since)
                               / extract(epoch from p.step))::integer) as i
    from (select r.host, date_bin(p.step, r.at, p.since) as start, count(*) as n
            from vigil.requests r, p
           where p.since is not null and r.at >= %(since)s::timestamptz
             and r.at < %(now)s::timestamptz
           group by 1, 2) b
   cross join p
)
select jsonb_build_object('now', p.now, 'since', p.since, 'buckets', p.nb,
                          'hosts', coalesce(jsonb_agg(
         jsonb_build_object(
           'host', h.host,
           'metrics', coalesce(m.list, '[]'),
           'series', coalesce(sr.list, '[]'),
           'requests', rq.doc || jsonb_build_object('history', rh.h),
           'alerts', al.n)
         order by h.host) filter (where h.host is not null), '[]'))
  from p
  left join hosts h on h.host is not null
  left join lateral (
    select jsonb_agg(jsonb_build_object(
             'name', m.name, 'type', m.type,
             'kind', case when r.op is null then 'deadline' else 'threshold' end,
             'value', m.value, 'state', m.state, 'last_seen', m.last_seen) order by m.name)
             as list
      from vigil.metrics m join vigil.alert_rules r on r.metric_type = m.type
     where m.host = h.host
  ) m on true
  left join lateral (
    select jsonb_agg(jsonb_build_object('name', rs.name, 'labels', rs.labels,
                                        'value', l.value, 'at', l.at)
                     order by rs.name, rs.labels::text) as list
      from rs cross join lateral vigil._series_last(rs.id, p.now) l
     where rs.host = h.host
  ) sr on true
  left join lateral (
    select jsonb_build_object('n', count(*),
                              'e5xx', count(*) filter (where r.status >= 500),
                              'e4xx', count(*) filter (where r.status between 400 and 499),
                              'minutes', 5) as doc
      from vigil.requests r
     where r.host = h.host and r.at > p.now - interval '5 minutes' and r.at <= p.now
  ) rq on true
  left join lateral (
    select jsonb_agg(coalesce(b.n, 0) order by g.i) as h
      from generate_series(1, p.nb) g (i)
      left join request_buckets b on b.host = h.host and b.i = g.i
     where p.since is not null
  ) rh on true
  left join lateral (
    select count(*) as n from vigil.alert_instances i
     where i.state = 'firing' and i.labels ->> 'host' = h.host
  ) al on true
 group by p.now, p.since, p.nb;

-- name: host
-- `vigil stat HOST [--history D]`: one host: its heartbeat metrics (state, value, last
-- seen), its recognised series (latest value), its requests and journal lines of the last 5
-- minutes, its firing alerts and whether anything at all is known of it (`known`). With
-- since (not null), every series, metric and the request rate also get `history`: nb
-- buckets over [since, now) (series: the weighted average of the rollup tier `granularity`
-- per bucket; metrics: the number of reports and the average numeric value; requests: the
-- count and the 5xx count per bucket). Empty buckets are null.
with p as (
  select x.*, (x.now - x.since) / nullif(x.nb, 0) as step
    from (select %(host)s::text as host, %(now)s::timestamptz as now,
                 %(since)s::timestamptz as since, %(buckets)s::integer as nb,
                 %(granularity)s::text as granularity) x
), rs as (
  select s.id, s.name, s.labels
    from vigil.series s, p
   where s.labels @> jsonb_build_object('host', p.host)
     and (s.name = any(%(names)s::text[]) or s.name like any(%(patterns)s::text[]))
     and coalesce(s.labels ->> 'cpu', 'cpu-total') = 'cpu-total'
  union all
  select s.id, s.name, s.labels
    from vigil.series s, p
   where s.labels ? 'instance' and not s.labels ? 'host'
     and regexp_replace(s.labels ->> 'instance', ':[0-9]+$', '') = p.host
     and (s.name = any(%(names)s::text[]) or s.name like any(%(patterns)s::text[]))
     and coalesce(s.labels ->> 'cpu', 'cpu-total') = 'cpu-total'
), series as (
  select jsonb_agg(jsonb_build_object('name', rs.name, 'labels', rs.labels,
                                      'value', l.value, 'at', l.at, 'history', hi.h)
                   order by rs.name, rs.labels::text) as list
    from rs
   cross join p
    left join lateral vigil._series_last(rs.id, p.now) l on true
    left join lateral (
      select jsonb_agg(b.v order by g.i) as h
        from generate_series(1, p.nb) g (i)
        left join (
          select least(p.nb, 1 + round(extract(epoch from x.start - p.since)
                                       / extract(epoch from p.step))::integer) as i, x.v
            from (select greatest(p.since, date_bin(p.step, a.bucket, p.since)) as start,
                         sum(a.avg * a.n) / sum(a.n) as v
                    from vigil.series_averages(rs.name, rs.labels, p.granularity, p.since,
                                               p.now) a
                   group by 1) x
        ) b on b.i = g.i
       where p.since is not null
    ) hi on true
), metrics as (
  select jsonb_agg(jsonb_build_object(
           'name', m.name, 'type', m.type,
           'kind', case when r.op is null then 'deadline' else 'threshold' end,
           'op', r.op, 'threshold', r.threshold, 'value', m.value, 'state', m.state,
           'last_seen', m.last_seen, 'since', m.state_changed_at, 'deadline', m.deadline,
           'history', hi.h, 'reports', hi.n) order by m.name) as list
    from vigil.metrics m
    join vigil.alert_rules r on r.metric_type = m.type
   cross join p
    left join lateral (
      select jsonb_agg(b.v order by g.i) as h, jsonb_agg(coalesce(b.n, 0) order by g.i) as n
        from generate_series(1, p.nb) g (i)
        left join (
          select least(p.nb, 1 + round(extract(epoch from y.start - p.since)
                                       / extract(epoch from p.step))::integer) as i, y.n, y.v
            from (select date_bin(p.step, x.at, p.since) as start, count(*) as n,
                         avg(case when x.value ~ '^\s*[-+]?[0-9]+(\.[0-9]+)?\s*%%?\s*$'
                                  then rtrim(btrim(x.value), '%%')::double precision end) as v
                    from vigil.metric_history x
                   where x.metric_id = m.id and x.at >= p.since and x.at < p.now
                   group by 1) y
        ) b on b.i = g.i
       where p.since is not null
    ) hi on true
   where m.host = p.host
), requests as (
  select jsonb_build_object(
           'n', count(*) filter (where r.at > p.now - interval '5 minutes'),
           'e5xx', count(*) filter (where r.at > p.now - interval '5 minutes'
                                      and r.status >= 500),
           'e4xx', count(*) filter (where r.at > p.now - interval '5 minutes'
                                      and r.status between 400 and 499),
           'minutes', 5,
           'last_at', (select max(r2.at) from vigil.requests r2
                        where r2.host = %(host)s and r2.at <= %(now)s::timestamptz)) as doc
    from p
    left join vigil.requests r
      on r.host = %(host)s and r.at > %(now)s::timestamptz - interval '5 minutes'
     and r.at <= %(now)s::timestamptz
   group by p.host, p.now
), request_history as (
  select jsonb_build_object('n', jsonb_agg(coalesce(b.n, 0) order by g.i),
                            'e5xx', jsonb_agg(coalesce(b.e, 0) order by g.i)) as doc
    from p
   cross join generate_series(1, p.nb) g (i)
    left join (
      select least(p.nb, 1 + round(extract(epoch from y.start - p.since)
                                   / extract(epoch from p.step))::integer) as i, y.n, y.e
        from (select date_bin(p.step, r.at, p.since) as start, count(*) as n,
                     count(*) filter (where r.status >= 500) as e
                from vigil.requests r, p
               where r.host = %(host)s and r.at >= %(since)s::timestamptz
                 and r.at < %(now)s::timestamptz
               group by 1) y, p
    ) b on b.i = g.i
   where p.since is not null
), journal as (
  select jsonb_build_object(
           'n', count(j.at), 'errors', count(*) filter (where j.priority <= 3), 'minutes', 5,
           'last_at', (select max(j2.at) from vigil.journal_lines j2
                        where j2.host = %(host)s and j2.at <= %(now)s::timestamptz)) as doc
    from p
    left join vigil.journal_lines j
      on j.host = %(host)s and j.at > %(now)s::timestamptz - interval '5 minutes'
     and j.at <= %(now)s::timestamptz
   group by p.host, p.now
), alerts as (
  select jsonb_agg(jsonb_build_object(
           'rule', r.name, 'severity', r.severity, 'since', i.since, 'value', i.value,
           'value_text', i.value_text, 'reason', i.reason,
           'instance', vigil.instance_text(i.labels), 'labels', i.labels,
           'withheld', vigil._withheld(r, i.labels, p.now)) order by i.since, r.name) as list
    from vigil.alert_instances i
    join vigil.alert_rules r on r.id = i.rule_id
   cross join p
   where i.state = 'firing' and i.labels ->> 'host' = p.host
)
select jsonb_build_object(
         'host', p.host, 'now', p.now, 'since', p.since, 'buckets', p.nb,
         'granularity', p.granularity,
         'metrics', coalesce(metrics.list, '[]'),
         'series', coalesce(series.list, '[]'),
         'requests', requests.doc || jsonb_build_object('history', request_history.doc),
         'journal', journal.doc,
         'alerts', coalesce(alerts.list, '[]'),
         'known', metrics.list is not null or series.list is not null
                  or alerts.list is not null or requests.doc ->> 'last_at' is not null
                  or journal.doc ->> 'last_at' is not null)
  from p, metrics, series, requests, journal, alerts
  left join request_history on true;
