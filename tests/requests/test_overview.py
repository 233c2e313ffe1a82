"""The Requests overview (/requests/overview) over the real access log (5,000 lines, restamped
into the last 84 minutes) plus a few timed and traced requests: every number on the page
equals a direct SQL count over the inserted rows; its links lead to the filtered list (route,
status, client address, user agent) and the trace view; the From/To inputs are in the viewer's
zone; desktop and phone width in light and dark, no sideways scroll, no console errors."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta
from typing import Any, cast
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest

from api.journal.pages import visible
from tests.conftest import ApiServer
from tests.requests.data import access_lines
from tests.requests.test_api import NOW, post, restamped
from tests.support.browser import assert_fits, views
from tests.support.login import login, login_client

pytestmark = pytest.mark.browser
Conn = psycopg.Connection[tuple[object, ...]]
EMAIL = "ann@example.com"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def timed_lines() -> list[str]:
    """Requests with request times (rt=) and a traceparent: latency percentiles, trace links."""
    out = []
    for i in range(1, 61):
        at = NOW - timedelta(minutes=2, seconds=i)
        trace = f"00-{TRACE}-00f067aa0ba902b7-01" if i == 60 else "-"
        out.append(
            f'198.51.100.{i % 3} - - [{at:%d/%b/%Y:%H:%M:%S} +0000] "GET /api/orders/{i} '
            f'HTTP/1.1" {503 if i % 5 == 0 else 200} {i * 10} "-" "curl/8.5" rt={i / 100:.2f} '
            f"traceparent={trace}"
        )
    return out


def seed(api: ApiServer, token: str, conn: Conn) -> None:
    body = b"\n".join(restamped(access_lines())) + b"\n"
    assert post(api, token, body, format="combined", host="web-1")["accepted"] == 5000
    out = post(api, token, "\n".join(timed_lines()).encode(), format="combined", host="web-2")
    assert out["accepted"] == 60, out
    hostile = (
        f'203.0.113.66 - - [{NOW:%d/%b/%Y:%H:%M:%S} +0000] "GET /<script>alert(1)</script>'
        '/\u202eevil/42 HTTP/1.1" 400 0 "-" "<b>bold</b>"'
    )
    assert post(api, token, hostile.encode(), format="combined", host="web-3")["accepted"] == 1


def expected(conn: Conn, host: str | None = None) -> dict[str, Any]:
    """The page's numbers, counted directly over the raw rows (all inside the 6 h range)."""
    where = "where %(host)s::text is null or host = %(host)s"
    p = {"host": host}

    def rows(q: str) -> list[tuple[Any, ...]]:
        return conn.execute(q.replace("WHERE", where), p).fetchall()

    total, s5, s4, size = rows(
        "select count(*), count(*) filter (where status >= 500),"
        " count(*) filter (where status between 400 and 499), coalesce(sum(bytes), 0)"
        " from vigil.requests WHERE"
    )[0]
    return {
        "total": total,
        "s5xx": s5,
        "s4xx": s4,
        "bytes": size,
        "codes": {
            str(s): n
            for s, n in rows("select status, count(*) from vigil.requests WHERE group by 1")
        },
        "routes": rows(
            "select vigil.request_route(path), count(*), count(*) filter (where status >= 500),"
            " coalesce(sum(bytes), 0) from vigil.requests WHERE"
            " group by 1 order by 2 desc, 1 limit 15"
        ),
        "ips": rows(
            "select host(ip), count(*) from vigil.requests WHERE group by ip"
            " order by 2 desc, ip limit 10"
        ),
        "agents": rows(
            "select user_agent, count(*) from vigil.requests WHERE group by 1"
            " order by 2 desc, 1 limit 10"
        ),
    }


def shown(text: str) -> str:
    """What the page shows of a route or user agent: invisible and direction-changing
    characters as visible escapes (`\\u202e`)."""
    return html.unescape(re.sub(r"<[^>]*>", "", str(visible(text))))


def numbers(page: Any, list_id: str) -> list[tuple[str, int]]:
    items = page.locator(f"#{list_id} > li")
    names = items.locator(".ov-name").all_inner_texts()
    counts = [int(n) for n in items.locator(".ov-n").evaluate_all("e => e.map(x => x.dataset.n)")]
    return list(zip(names, counts, strict=True))


def test_bad_ranges_are_explained(api: ApiServer, dsn: str, conn: Conn) -> None:
    r = httpx.get(api.url + "/requests/overview", follow_redirects=False)
    assert r.status_code in (302, 303) and r.headers["location"].startswith("/login")
    with login_client(api.url, dsn, EMAIL) as client:
        for query, message in (
            ("range=2y", "range must be one of 1h, 6h, 24h, 7d"),
            ("start=2026-11-30T10:00&end=2026-11-30T09:00", "From must be before To"),
            ("start=yesterday", "From must be a date and time"),
            ("start=2026-01-01T00:00&end=2026-06-01T00:00", "at most 31 days"),
            ("start=2026-11-30T10:00&tz=Mars/Olympus", "unknown time zone"),
        ):
            r = client.get("/requests/overview?" + query)
            assert r.status_code == 400 and message in r.text, (query, r.text[:300])
        r = client.get("/requests/overview?range=1h")  # no data yet: says what to do
        assert r.status_code == 200 and 'id="overview-empty"' in r.text


def test_overview_in_chromium(
    browser: Any, api: ApiServer, dsn: str, token: str, conn: Conn
) -> None:
    from playwright.sync_api import expect

    seed(api, token, conn)
    want = expected(conn)
    # the route and agent filters of the read for scripts
    r = httpx.get(
        api.url + "/v1/requests",
        params={"route": "/api/orders/:id", "agent": "curl/8.5", "status": "5xx", "limit": "100"},
        headers={"authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200, r.text
    assert sorted(int(i["path"].rsplit("/", 1)[1]) for i in r.json()["items"]) == list(
        range(5, 61, 5)
    )
    zone = {"light": "UTC", "dark": "Asia/Kathmandu"}
    for width, scheme, page, errors in views(
        browser, options=lambda _, scheme: {"timezone_id": zone[scheme]}
    ):
        login(page, api.url, dsn, EMAIL)
        page.goto(api.url + "/requests/overview?range=6h")
        expect(page.locator("#traffic-chart canvas")).to_have_count(1)
        expect(page.locator("#errors-chart canvas")).to_have_count(1)
        summary = page.locator("#overview-summary")
        assert summary.locator("#sum-requests").get_attribute("data-n") == str(want["total"])
        assert summary.locator("#sum-5xx").get_attribute("data-n") == str(want["s5xx"])
        assert summary.locator("#sum-4xx").get_attribute("data-n") == str(want["s4xx"])
        assert summary.locator("#sum-bytes").get_attribute("data-n") == str(want["bytes"])
        assert dict(numbers(page, "status-codes")) == want["codes"]
        assert numbers(page, "top-routes") == [
            ("(no request line)" if r[0] is None else shown(r[0]), r[1]) for r in want["routes"]
        ]
        assert numbers(page, "top-ips") == want["ips"]
        assert numbers(page, "top-agents") == [
            (shown(a) if a else "(none sent)", n) for a, n in want["agents"]
        ]
        assert_fits(page, width, scheme)
        if scheme == "dark":  # From/To in the viewer's zone (+05:45)
            start = page.locator("#overview-filters").get_attribute("data-start")
            assert start is not None
            local = page.locator("input[name=start]").input_value()
            assert local == kathmandu(start), (start, local)
        page.screenshot(path=f"/tmp/requests-overview-{width}-{scheme}.png", full_page=True)
        if width == 1366 and scheme == "light":
            details(page, api, conn, want)
            hostile_text(page, api)
        if width == 1366 and scheme == "dark":
            custom_range(page, conn)
        assert errors == [], errors


def kathmandu(iso: str) -> str:
    at = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(ZoneInfo("Asia/Kathmandu"))
    return at.strftime("%Y-%m-%dT%H:%M")


def details(page: Any, api: ApiServer, conn: Conn, want: dict[str, Any]) -> None:
    """Per-route numbers, and every kind of link leads to the matching filtered list."""
    from playwright.sync_api import expect

    routes = page.locator("#top-routes > li")
    for i, (route, _n, s5, size) in enumerate(want["routes"]):
        item = routes.nth(i)
        assert item.locator(".e5").get_attribute("data-n") == str(s5), route
        assert item.locator(".bytes").get_attribute("data-n") == str(size), route
    # the timed route: latency percentiles and the slowest traced request
    timed = routes.filter(has_text="/api/orders/:id")
    p = conn.execute(
        "select percentile_cont(array[0.5, 0.95, 0.99]) within group (order by request_time)"
        " from vigil.requests where path like '/api/orders/%%'"
    ).fetchone()
    assert p is not None
    p50, p95, p99 = cast(list[float], p[0])
    assert timed.locator(".latency").inner_text() == (
        f"p50 {p50 * 1000:.0f} ms · p95 {p95 * 1000:.0f} ms · p99 {p99 * 1000:.0f} ms"
    )
    assert timed.locator("a.trace").get_attribute("href") == f"/trace/{TRACE}"
    rows = page.locator("#request-rows li")
    # a route: the list of that route in the same window
    route, n = want["routes"][1][0], want["routes"][1][1]
    routes.nth(1).locator("a.ov-name").click()
    page.wait_for_url("**/requests?*route=*")
    query = parse_qs(urlparse(page.url).query)
    assert query["route"] == [route] and "start" in query and "end" in query
    expect(rows).to_have_count(min(n, 100))
    paths = rows.locator(".path").evaluate_all("e => e.map(x => x.firstChild.textContent)")
    got = conn.execute(
        "select distinct vigil.request_route(p) from unnest(%s::text[]) p", (paths,)
    ).fetchall()
    assert got == [(route,)]
    page.go_back()
    # a status class, a status, an address, a user agent
    page.locator("#status-classes a", has_text="5xx").click()
    page.wait_for_url("**/requests?*status=5xx*")
    expect(rows).to_have_count(min(want["s5xx"], 100))
    assert all(s.startswith("5") for s in rows.locator(".status").all_inner_texts())
    page.go_back()
    ip, n = want["ips"][0]
    page.locator("#top-ips a", has_text=ip).first.click()
    page.wait_for_url("**/requests?*ip=*")
    expect(rows).to_have_count(min(n, 100))
    assert set(rows.locator(".ip").all_inner_texts()) == {ip}
    page.go_back()
    agent, n = next((a, k) for a, k in want["agents"] if a)
    page.locator("#top-agents a.ov-name", has_text=agent).first.click()
    page.wait_for_url("**/requests?*agent=*")
    expect(rows).to_have_count(min(n, 100))
    assert set(rows.locator(".ua").all_inner_texts()) == {agent}
    page.go_back()
    page.locator("a.trace").first.click()
    page.wait_for_url(f"**/trace/{TRACE}")
    page.go_back()
    # the List tab keeps working and leads back
    page.locator("#overview-list").click()
    page.wait_for_url("**/requests?*")
    expect(rows).to_have_count(100)
    page.locator("#tab-overview").click()
    page.wait_for_url("**/requests/overview")


def custom_range(page: Any, conn: Conn) -> None:
    """From/To typed in the viewer's zone (Kathmandu): the page counts that window."""
    row = conn.execute(
        "select min(at), max(at) from vigil.requests where host = 'web-2'"
    ).fetchone()
    assert row is not None
    lo, hi = cast(tuple[datetime, datetime], row)
    form = page.locator("#overview-filters")
    form.locator("input[name=start]").fill(kathmandu(lo.isoformat()))
    end = hi + timedelta(minutes=1)
    form.locator("input[name=end]").fill(kathmandu(end.isoformat()))
    form.locator("input[name=host]").fill("web-2")
    form.locator("button[type=submit]").click()
    page.wait_for_url("**/requests/overview?*host=web-2*")
    # the zone the form was read in (Chromium names it by its old alias)
    assert parse_qs(urlparse(page.url).query)["tz"][0] in ("Asia/Kathmandu", "Asia/Katmandu")
    assert page.locator("#sum-requests").get_attribute("data-n") == "60"
    assert page.locator("#sum-5xx").get_attribute("data-n") == "12"
    assert page.locator(".ov-preset[aria-current]").count() == 0


def hostile_text(page: Any, api: ApiServer) -> None:
    """Log text is shown literally: markup escaped, a bidi control as a visible escape."""
    page.goto(api.url + "/requests/overview?range=6h&host=web-3")
    route = page.locator("#top-routes .ov-name")
    assert route.inner_text() == "/<script>alert(1)</script>/\\u202eevil/:id"
    assert route.locator(".esc").inner_text() == "\\u202e"
    assert page.locator("#top-agents .ov-name").inner_text() == "<b>bold</b>"
    assert page.locator("script:text('alert(1)')").count() == 0
    assert page.locator("#sum-requests").get_attribute("data-n") == "1"
