"""GET /v1/trace/{id} and `vigil trace ID` on lines stored through the real ingest paths
(POST /journal, POST /v1/requests): items from each source oldest first, an unknown id,
bad ids, auth."""

from __future__ import annotations

import os
import subprocess
from datetime import timedelta
from typing import Any

import httpx
import psycopg

from tests.conftest import ApiServer, venv_bin
from tests.journal.test_ingest import line
from tests.support.login import login_client
from tests.trace.data import NOW, TRACE, TRACEPARENT

Conn = psycopg.Connection[tuple[object, ...]]


def us(seconds: int) -> str:
    return str(int((NOW - timedelta(seconds=seconds)).timestamp() * 1_000_000))


def seed(api: ApiServer, token: str) -> None:
    auth = {"authorization": f"Bearer {token}"}
    at = NOW - timedelta(seconds=60)
    access = (
        f'198.51.100.4 - - [{at:%d/%b/%Y:%H:%M:%S} +0000] "GET /cart?x=1 HTTP/1.1" 200 512 "-" '
        f'"curl/8" "{TRACEPARENT}"'
    )
    nginx = {
        "remote_addr": "198.51.100.5",
        "time_iso8601": (NOW - timedelta(seconds=10)).isoformat(),
        "request": "POST /pay HTTP/1.1",
        "status": "502",
        "request_id": "req-42",
        "host": "edge-2",
    }
    r = httpx.post(
        api.url + "/v1/requests?host=edge-1",
        content=access.encode(),
        headers={**auth, "content-type": "text/plain"},
    )
    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
    import json

    r = httpx.post(
        api.url + "/v1/requests",
        content=json.dumps(nginx).encode(),
        headers={**auth, "content-type": "application/x-ndjson"},
    )
    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
    logs = "\n".join(
        [
            line("cart", __REALTIME_TIMESTAMP=us(50), TRACE_ID=TRACE),
            line(f"pay trace_id={TRACE} failed", __REALTIME_TIMESTAMP=us(40), _HOSTNAME="app-2",
                 _SYSTEMD_UNIT="pay.service"),
            line("later", __REALTIME_TIMESTAMP=us(5), traceparent=TRACEPARENT, REQUEST_ID="req-42"),
            line("unrelated", __REALTIME_TIMESTAMP=us(30)),
        ]
    )  # fmt: skip
    r = httpx.post(api.url + "/journal", json={"logs": logs}, headers=auth)
    assert r.status_code == 200 and r.json()["accepted"] == 4, r.text


def get(api: ApiServer, token: str | None, trace_id: str) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.get(api.url + "/v1/trace/" + trace_id, headers=headers)


def test_trace_api_and_cli(api: ApiServer, token: str, dsn: str) -> None:
    seed(api, token)
    r = get(api, token, TRACE.upper())
    assert r.status_code == 200
    body: dict[str, Any] = r.json()
    assert body["id"] == TRACE.upper()
    items = body["items"]
    assert [(i["kind"], i["host"], i["message"]) for i in items] == [
        ("request", "edge-1", "GET /cart?x=1 200"),
        ("journal", "web-1", "cart"),
        ("journal", "app-2", f"pay trace_id={TRACE} failed"),
        ("journal", "web-1", "later"),
    ]
    assert [i["time"] for i in items] == sorted(i["time"] for i in items)
    first, second = items[0], items[1]
    assert (first["ip"], first["path"], first["query"], first["status"]) == (
        "198.51.100.4", "/cart", "x=1", 200)  # fmt: skip
    assert first["trace_id"] == TRACE and first["time"].endswith("Z")
    assert (second["service"], second["unit"], second["priority"]) == ("nginx.service",) * 2 + (6,)
    assert second["fields"]["TRACE_ID"] == TRACE
    by_request = get(api, token, "req-42").json()["items"]
    assert [(i["kind"], i["message"]) for i in by_request] == [
        ("request", "POST /pay 502"),
        ("journal", "later"),
    ]
    # unknown: 200, no items; unusable ids: 400 with the reason
    assert get(api, token, "nope").json() == {"id": "nope", "items": []}
    r = get(api, token, "x" * 201)
    assert r.status_code == 400 and "at most 200 characters" in r.text
    r = get(api, token, "%01abc")
    assert r.status_code == 400 and "control characters" in r.text
    # auth: a sender token or an operator session
    assert get(api, None, TRACE).status_code == 401
    assert get(api, "wrong-token", TRACE).status_code == 401
    with login_client(api.url, dsn, "ann@example.com") as operator:
        assert len(operator.get("/v1/trace/" + TRACE).json()["items"]) == 4
    # the CLI: grouped by host and service, each group oldest first
    env = {**os.environ, "DATABASE_URL": dsn}
    out = subprocess.run(
        [venv_bin("vigil"), "trace", TRACE], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "edge-1  (1)" and "request  GET /cart?x=1 200  198.51.100.4" in lines[1]
    assert lines[2] == "web-1 / nginx.service  (2)"
    assert lines[3].endswith("journal  cart") and lines[4].endswith("journal  later")
    assert lines[5] == "app-2 / pay.service  (1)" and len(lines) == 7
    out = subprocess.run(
        [venv_bin("vigil"), "trace", "nope"], env=env, capture_output=True, text=True, timeout=60
    )
    assert (out.returncode, out.stdout) == (0, "no logs for this id: nope\n")
    out = subprocess.run(
        [venv_bin("vigil"), "trace", "--json", "req-42"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0 and '"POST /pay 502"' in out.stdout
