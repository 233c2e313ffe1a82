"""GET /v1/services and /v1/services/{id}/events: envelope, metrics, events, errors, pages."""

from __future__ import annotations

from datetime import timedelta

import httpx

from tests.conftest import ApiServer
from tests.support.sql import T0
from tests.support.uptime import Conn, add


def record(conn: Conn, sid: int, seconds: float, status: int | None, ms: float | None) -> None:
    conn.execute(
        "select vigil.record_check(%s, %s, %s, %s, %s, null)",
        (sid, T0 + timedelta(seconds=seconds), status, ms, None if status else "timeout"),
    )


def get(api: ApiServer, path: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(api.url + path, headers=headers, timeout=10)


def test_services_envelope_and_metrics(api: ApiServer, conn: Conn, token: str) -> None:
    sid = add(conn, "shop", "https://shop.example/health", retries=0)
    add(conn, "new", "https://new.example/")
    record(conn, sid, 0, 200, 100.0)
    record(conn, sid, 15, 200, 200.0)
    record(conn, sid, 30, 500, 30.0)
    record(conn, sid, 45, None, None)
    r = get(api, "/v1/services", token)
    assert r.status_code == 200
    body = r.json()
    assert (body["status"], body["status_desc"]) == (200, "OK")
    shop, new = body["data"]["services"]["data"]
    assert shop["id"] == sid and shop["name"] == "shop"
    assert shop["url"] == "https://shop.example/health"
    assert isinstance(shop["created_at"], int) and isinstance(shop["updated_at"], int)
    assert shop["metric"]["data"] == {
        "tick_count": 4,
        "up_count": 2,
        "down_count": 2,
        "average_response_time_ms": 110.0,  # (100 + 200 + 30) / 3: timeouts have no time
        "uptime_percent": 50.0,
    }
    assert shop["current_status"] == "down"
    latest = shop["latest_event"]["data"]
    assert latest["event"] == "downtime" and latest["date_ended"] is None
    assert latest["date_started"] == int((T0 + timedelta(seconds=30)).timestamp())
    assert new["current_status"] == "unknown"
    assert new["latest_event"]["data"] is None
    assert new["metric"]["data"]["tick_count"] == 0


def test_events_newest_first_and_paginated(api: ApiServer, conn: Conn, token: str) -> None:
    sid = add(conn, "flappy", "https://flappy.example/", retries=0)
    for i in range(5):
        record(conn, sid, i * 60, 200 if i % 2 == 0 else 500, 5.0)
    r = get(api, f"/v1/services/{sid}/events", token)
    assert r.status_code == 200
    events = r.json()["data"]["events"]
    assert [e["event"] for e in events["data"]] == [
        "uptime",
        "downtime",
        "uptime",
        "downtime",
        "uptime",
    ]
    assert events["next_before"] is None
    first = events["data"][0]
    assert set(first) == {"id", "event", "date_started", "date_ended", "created_at", "updated_at"}
    assert first["date_ended"] is None
    assert events["data"][1]["date_ended"] == first["date_started"]
    ids = [e["id"] for e in events["data"]]
    assert ids == sorted(ids, reverse=True)

    page1 = get(api, f"/v1/services/{sid}/events?limit=2", token).json()["data"]["events"]
    assert [e["id"] for e in page1["data"]] == ids[:2]
    assert page1["next_before"] == ids[1]
    page2 = get(api, f"/v1/services/{sid}/events?limit=2&before={ids[1]}", token).json()
    assert [e["id"] for e in page2["data"]["events"]["data"]] == ids[2:4]
    page3 = get(api, f"/v1/services/{sid}/events?limit=2&before={ids[3]}", token).json()
    assert [e["id"] for e in page3["data"]["events"]["data"]] == ids[4:]
    assert page3["data"]["events"]["next_before"] is None


def test_errors(api: ApiServer, conn: Conn, token: str) -> None:
    r = get(api, "/v1/services/abc/events", token)
    assert r.status_code == 400
    assert r.json() == {
        "status": 400,
        "status_desc": "Bad Request",
        "errors": ["service id must be an integer"],
    }
    r = get(api, "/v1/services/424242/events", token)
    assert r.status_code == 404
    assert r.json() == {"status": 404, "status_desc": "Not Found", "errors": ["record not found"]}
    sid = add(conn, "x", "https://x.example/")
    assert get(api, f"/v1/services/{sid}/events?limit=0", token).status_code == 400
    assert get(api, f"/v1/services/{sid}/events?before=x", token).status_code == 400


def test_token_required(api: ApiServer, token: str) -> None:
    assert get(api, "/v1/services", None).status_code == 401
    assert get(api, "/v1/services", "wrong").status_code == 401
    # URL-only clients: the token as a path prefix.
    r = httpx.get(f"{api.url}/t/{token}/v1/services", timeout=10)
    assert r.status_code == 200 and r.json()["data"]["services"]["data"] == []
