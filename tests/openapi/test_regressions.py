"""Defects schemathesis found (tests/openapi/test_schemathesis.py), each as a plain test.

NUL (U+0000) cannot be stored in PostgreSQL text or jsonb. A series name, label or Influx
tag holding one used to reach the database, which refused the whole request with Vigil's
plain-text `400` instead of the client's JSON error format. The routes now answer in the
client's format (api/series/routes.py), and the parsers refuse just the point or line that
holds one (api/series/formats/points.py), so the rest of its batch is stored.
"""

from __future__ import annotations

import httpx
import psycopg

from tests.conftest import ApiServer

INVALID_PAYLOAD = {"message": "Invalid Payload. Please verify the request payload and try again."}
Conn = psycopg.Connection[tuple[object, ...]]


def post(api: ApiServer, token: str, path: str, content: bytes, **headers: str) -> httpx.Response:
    return httpx.post(
        api.url + path,
        content=content,
        headers={"Authorization": f"Bearer {token}", **headers},
        timeout=10,
    )


def stored_points(conn: Conn) -> int:
    row = conn.execute("select count(*) from vigil.points").fetchone()
    assert row is not None
    return int(str(row[0]))


def test_point_with_nul_in_a_label_is_invalid_payload(
    api: ApiServer, token: str, conn: Conn
) -> None:
    body = b'{"name":"t","value":1,"labels":{"a\\u0000b":"x"}}'
    r = post(api, token, "/v1/metrics", body)
    assert (r.status_code, r.json()) == (400, INVALID_PAYLOAD)
    assert r.headers["content-type"].startswith("application/json")
    body = b'{"name":"t","value":1,"labels":{"host":"a\\u0000"}}'
    r = post(api, token, "/v1/metrics", body)
    assert (r.status_code, r.json()) == (400, INVALID_PAYLOAD)
    assert stored_points(conn) == 0


def test_point_with_nul_in_its_name_is_invalid_payload(
    api: ApiServer, token: str, conn: Conn
) -> None:
    r = post(api, token, "/v1/metrics", b'{"name":"a\\u0000b","value":1}')
    assert (r.status_code, r.json()) == (400, INVALID_PAYLOAD)
    assert stored_points(conn) == 0


def test_batch_of_nul_points_answers_json(api: ApiServer, token: str) -> None:
    for body in (
        b'[{"name":"a\\u0000b","value":2}]',  # JSON array
        b'{"name":"x","value":2,"labels":{"k":"\\u0000"}}\n',  # NDJSON
    ):
        r = post(api, token, "/v1/metrics/batch", body)
        assert r.status_code == 400
        assert r.headers["content-type"].startswith("application/json")
        assert r.json()["rejected"] == 1
        assert "NUL" in r.json()["errors"][0]["message"]


def test_influx_line_with_nul_answers_in_influx_format(api: ApiServer, token: str) -> None:
    line = b"cpu,host=a\x00b usage=1\n"
    r = post(api, token, "/write", line)
    assert r.status_code == 400
    assert set(r.json()) == {"error"}
    r = post(api, token, "/api/v2/write", line)
    assert r.status_code == 400
    assert r.json()["code"] == "invalid"


def test_averages_of_a_name_with_nul_are_empty(api: ApiServer, token: str) -> None:
    r = httpx.get(
        api.url + "/v1/metrics/a%00b/hour/2024-02-01/2024-02-03",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert r.status_code == 200
    assert r.json()["data"] == []


def test_batch_rejects_only_the_point_with_nul(api: ApiServer, token: str, conn: Conn) -> None:
    body = b'[{"name":"ok","value":1},{"name":"a\\u0000b","value":2}]'
    r = post(api, token, "/v1/metrics/batch", body)
    assert r.status_code == 200
    assert (r.json()["accepted"], r.json()["errors"][0]["index"]) == (1, 1)
    assert stored_points(conn) == 1


def test_influx_rejects_only_the_line_with_nul(api: ApiServer, token: str, conn: Conn) -> None:
    r = post(api, token, "/api/v2/write", b"cpu usage=1\ncpu,host=a\x00b usage=2\n")
    assert r.status_code == 400
    assert r.json()["message"].startswith("partial write: line 2: ")
    assert stored_points(conn) == 1
