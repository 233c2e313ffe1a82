"""One point per series and time: a batch sent again (a sender retrying a request that was
stored but not acknowledged) or a point twice in one batch is stored once, the last value
winning, on the compiled and the Python path alike; averages follow the replaced value, also
in buckets already rolled up; vigil.put_points is the SQL side of it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from api.series.formats.influx import compiled_lines
from api.series.formats.json import compiled_batch
from tests.conftest import ApiServer

Conn = psycopg.Connection[Any]


def stored(conn: Conn) -> list[tuple[Any, ...]]:
    return conn.execute(
        "select s.name, s.labels ->> 'host', p.at, p.value from vigil.points p"
        " join vigil.series s on s.id = p.series_id order by 1, 2, 3"
    ).fetchall()


def write(api: ApiServer, token: str, body: str) -> None:
    r = httpx.post(
        f"{api.url}/write?precision=s", content=body, headers={"authorization": f"Token {token}"}
    )
    assert r.status_code == 204, r.text


def test_a_batch_sent_again_is_stored_once_and_replaces_values(
    api: ApiServer, token: str, conn: Conn
) -> None:
    t0 = int(datetime.now(UTC).timestamp()) // 60 * 60 - 600
    lines = [f"cpu,host=h{h} idle={h * 10 + i}.5 {t0 + 10 * i}" for i in range(4) for h in range(3)]
    body = "\n".join(lines)
    assert compiled_lines(body.encode(), "s") is not None
    write(api, token, body)
    first = stored(conn)
    assert len(first) == 12
    write(api, token, body)  # the retry
    assert stored(conn) == first
    # Sent again with two values changed, beside a series that is new in this batch: the
    # retry path creates it anew (its id from the failed COPY was rolled back).
    changed = [*lines[:2], f"cpu,host=h0 idle=-1 {t0}", f"cpu,host=new idle=7 {t0}"]
    write(api, token, "\n".join(changed))
    rows = stored(conn)
    at0 = datetime.fromtimestamp(t0, UTC)
    assert ("cpu_idle", "h0", at0, -1.0) in rows and ("cpu_idle", "h0", at0, 0.5) not in rows
    assert ("cpu_idle", "new", at0, 7.0) in rows and len(rows) == 13
    write(api, token, f"cpu,host=new idle=8 {t0}")  # the new series' id was cached right
    assert ("cpu_idle", "new", at0, 8.0) in stored(conn)


@pytest.mark.parametrize("path", ["compiled", "python"])
def test_a_point_twice_in_one_batch_keeps_the_last(
    api: ApiServer, token: str, conn: Conn, path: str
) -> None:
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    stamp = at.isoformat().replace("+00:00", "Z")
    # An escaped label value is outside the compiled decoder's subset: the Python path.
    host = "a" if path == "compiled" else "\\u0061"
    points = [
        {"name": "twice", "labels": {"host": host}, "timestamp": stamp, "value": v}
        for v in (1.0, 2.0, 3.0)
    ]
    points.append({"name": "other", "labels": {"host": "a"}, "timestamp": stamp, "value": 9.0})
    body = json.dumps(points).replace("\\\\u0061", "\\u0061").encode()
    assert (compiled_batch(body, ndjson=False) is not None) == (path == "compiled")
    r = httpx.post(
        f"{api.url}/v1/metrics/batch", content=body, headers={"authorization": f"Bearer {token}"}
    )
    assert r.json() == {"accepted": 4, "rejected": 0, "errors": []}
    assert stored(conn) == [("other", "a", at, 9.0), ("twice", "a", at, 3.0)]


def test_averages_follow_a_replaced_value_in_rolled_up_buckets(conn: Conn) -> None:
    now = conn.execute("select now()").fetchone()[0]  # type: ignore[index]
    at = now.replace(second=0, microsecond=0) - timedelta(minutes=30)
    sid = conn.execute(
        "select vigil.add_point('temp', 10, %s, '{\"room\": \"a\"}')", (at,)
    ).fetchone()[0]  # type: ignore[index]
    conn.execute(
        "select vigil.add_point('temp', 20, %s, '{\"room\": \"a\"}')", (at + timedelta(seconds=10),)
    )
    conn.execute("select vigil.refresh_series_rollups(%s, '{}')", (now,))

    def minute() -> Any:
        return conn.execute(
            "select avg, n from vigil.series_averages('temp', null, 'minute', %s, %s)",
            (at, at + timedelta(minutes=1)),
        ).fetchall()

    assert minute() == [(15.0, 2)]
    # The same point again, another value: replaced, also in the rolled-up minute.
    conn.execute("select vigil.add_point('temp', 40, %s, '{\"room\": \"a\"}')", (at,))
    assert minute() == [(30.0, 2)]
    conn.execute("select vigil.refresh_series_rollups(%s, '{}')", (now + timedelta(seconds=5),))
    assert minute() == [(30.0, 2)]
    assert conn.execute(
        "select count(*) from vigil.points where series_id = %s", (sid,)
    ).fetchone() == (2,)


def test_put_points(conn: Conn) -> None:
    sid = conn.execute("select id from vigil.series_ids('{p}', '{\"{}\"}')").fetchone()[0]  # type: ignore[index]
    at = datetime(2026, 11, 30, 12, tzinfo=UTC)
    put = "select vigil.put_points(%s::bigint[], %s::timestamptz[], %s::float8[])"
    assert conn.execute(put, ([sid, sid], [at, at], [1.0, 2.0])).fetchone() == (1,)
    assert conn.execute(put, ([sid], [at], [2.0])).fetchone() == (0,)  # the same: no write
    assert conn.execute(put, ([sid], [at], [5.0])).fetchone() == (1,)
    assert conn.execute("select value from vigil.points").fetchall() == [(5.0,)]
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="different lengths"):
        conn.execute(put, ([sid], [at, at], [1.0]))
    with pytest.raises(psycopg.errors.UniqueViolation):  # a plain insert may not add a twin
        conn.execute("insert into vigil.points values (%s, %s, 6)", (sid, at))
