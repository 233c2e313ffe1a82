"""POST /metric over real HTTP: metrics-sender's exact payloads, auth, and bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from tests.conftest import ApiServer
from vigil import tokens

Conn = psycopg.Connection[tuple[object, ...]]

# Byte for byte what metrics-sender (Go, encoding/json) sends: field order, "Id":0,
# RFC 3339 with nanoseconds and an offset, value as a string.
SENDER_PING = (
    b'{"host":"web-1","name":"backup","type":"ping",'
    b'"timestamp":"2026-11-22T10:00:00.123456789+01:00","value":"1440",'
    b'"state":"ok","Id":0}'
)
SENDER_DISK = (
    b'{"host":"web-1","name":"/dev/sda1","type":"disk",'
    b'"timestamp":"2026-11-22T10:00:00.5+01:00","value":"91","state":"","Id":0}'
)
SENDER_DOCKER = (
    b'{"host":"web-1","name":"container nginx","type":"ping",'
    b'"timestamp":"0001-01-01T00:00:00Z","value":"","state":"","Id":0}'
)


def post(
    api: ApiServer, body: bytes, token: str | None, path: str = "/metric", **headers: str
) -> httpx.Response:
    if token:
        headers["authorization"] = f"Bearer {token}"
    return httpx.post(api.url + path, content=body, headers=headers)


def test_metrics_sender_payloads_byte_for_byte(api: ApiServer, token: str, conn: Conn) -> None:
    for body in (SENDER_PING, SENDER_DISK, SENDER_DOCKER):
        r = post(api, body, token, **{"content-type": "application/json"})
        assert (r.status_code, r.text) == (200, "ok")
        assert r.headers["content-type"].startswith("text/plain")
    rows = {
        str(name): (last_seen, value, state)
        for name, last_seen, value, state in conn.execute(
            "select name, last_seen, value, state from vigil.metrics"
        )
    }
    assert rows["backup"][0] == datetime(2026, 11, 22, 9, 0, 0, 123456, tzinfo=UTC)
    assert rows["backup"][1] == "1440"
    deadline = conn.execute(
        "select deadline - last_seen from vigil.metrics where name = 'backup'"
    ).fetchone()
    assert deadline == (timedelta(minutes=1440),)
    assert rows["/dev/sda1"][1:] == ("91", "alert")
    # Go's zero time means "now"; an empty value means the default deadline.
    seen = rows["container nginx"][0]
    assert isinstance(seen, datetime)
    assert abs(seen - datetime.now(UTC)) < timedelta(seconds=30)
    assert rows["container nginx"][1:] == ("", "ok")


def test_missing_timestamp_means_now(api: ApiServer, token: str, conn: Conn) -> None:
    r = post(api, b'{"host":"h","name":"n","type":"ping"}', token)
    assert r.status_code == 200
    row = conn.execute(
        "select now() - last_seen < interval '30 seconds', value from vigil.metrics"
    ).fetchone()
    assert row == (True, None)


def test_token_as_path_prefix(api: ApiServer, token: str, conn: Conn) -> None:
    r = post(api, SENDER_DISK.replace(b'"91"', b'"50"'), None, path=f"/t/{token}/metric")
    assert (r.status_code, r.text) == (200, "ok")
    assert conn.execute("select value from vigil.metrics").fetchone() == ("50",)
    used = conn.execute("select last_used_at is not null from vigil.api_tokens").fetchone()
    assert used == (True,)


@pytest.mark.parametrize("auth", [None, "Bearer nope", "Basic dXNlcjpwYXNz", "Bearer"])
def test_missing_or_wrong_token_is_401(api: ApiServer, conn: Conn, auth: str | None) -> None:
    headers = {"authorization": auth} if auth else {}
    r = httpx.post(api.url + "/metric", content=SENDER_PING, headers=headers)
    assert r.status_code == 401
    assert "token" in r.text
    assert conn.execute("select count(*) from vigil.metrics").fetchone() == (0,)


def test_revoked_token_is_refused(api: ApiServer, conn: Conn) -> None:
    token = tokens.create(conn, "old")
    assert tokens.revoke(conn, "old")
    assert post(api, SENDER_PING, token).status_code == 401
    assert post(api, SENDER_PING, None, path=f"/t/{token}/metric").status_code == 401


BAD = [
    (b'{"host":"h","name":"n","type":"ping"', "malformed JSON"),
    (b"", "malformed JSON"),
    (b"[1,2]", "invalid metric"),
    (b'{"host":"h","name":"n","type":"ping","value":5}', "Expected `str | null`, got `int`"),
    (b'{"host":"h","type":"ping"}', "missing required field `name`"),
    (b'{"host":"","name":"n","type":"ping"}', "host must be 1 to 255 characters"),
    (b'{"host":"h\\u0000","name":"n","type":"ping"}', "must not contain NUL"),
    (b'{"host":"h","name":"n","type":"cpu"}', 'unknown metric type "cpu"'),
    (b'{"host":"h\xff","name":"n","type":"ping"}', "malformed JSON: 'utf-8' codec"),
    (b'{"host":"h","name":"n","type":"ping","timestamp":"yesterday"}', "is not RFC 3339"),
    (
        b'{"host":"h","name":"n","type":"ping","timestamp":"2026-13-40T10:00:00Z"}',
        "not a valid date/time",
    ),
]


@pytest.mark.parametrize(("body", "reason"), BAD)
def test_bad_input_is_400_with_a_reason_and_stores_nothing(
    api: ApiServer, token: str, conn: Conn, body: bytes, reason: str
) -> None:
    r = post(api, body, token)
    assert r.status_code == 400, r.text
    assert reason in r.text
    assert conn.execute("select count(*) from vigil.metrics").fetchone() == (0,)
    assert conn.execute("select count(*) from vigil.metric_history").fetchone() == (0,)


def test_future_timestamp_is_400(api: ApiServer, token: str, conn: Conn) -> None:
    ahead = (datetime.now(UTC) + timedelta(minutes=11)).isoformat()
    r = post(api, f'{{"host":"h","name":"n","type":"ping","timestamp":"{ahead}"}}'.encode(), token)
    assert r.status_code == 400
    assert "future" in r.text
    near = (datetime.now(UTC) + timedelta(minutes=9)).isoformat()
    r = post(api, f'{{"host":"h","name":"n","type":"ping","timestamp":"{near}"}}'.encode(), token)
    assert r.status_code == 200


def test_body_over_the_limit_is_413(api: ApiServer, token: str, conn: Conn) -> None:
    body = b'{"host":"h","name":"n","type":"ping","value":"' + b"x" * (5 * 1024 * 1024) + b'"}'
    r = post(api, body, token)
    assert r.status_code == 413
    assert conn.execute("select count(*) from vigil.metrics").fetchone() == (0,)


def test_health_reports_database_and_mode(api: ApiServer) -> None:
    r = httpx.get(api.url + "/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "up"
    assert body["resources"][0] == {"name": "database", "status": "up", "message": "portable mode"}
    assert body["mode"] == "portable"
    assert "not available" in body["mode_reason"]


class TestTokenlessLoopback:
    @pytest.fixture
    def api_env(self) -> dict[str, str]:
        return {"VIGIL_ALLOW_TOKENLESS_LOOPBACK": "true"}

    def test_loopback_may_post_without_token(self, api: ApiServer) -> None:
        assert post(api, SENDER_PING, None).status_code == 200
        # A wrong token is still refused: the setting only waives a missing one.
        assert post(api, SENDER_PING, "wrong").status_code == 401
