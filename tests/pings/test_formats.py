"""The pure parsers of ping URLs and pushes, and cron schedules across DST changes."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest

from api.pings.formats.healthchecks import (
    PingError,
    body_text,
    canonical_uuid,
    parse_ping,
    parse_push,
)
from api.pings.schedule import ScheduleError, check_cron, next_cron

U = "0b7e6c1e-2f3a-4a52-9d5e-6a1b2c3d4e5f"
RID = "5f2a4f0c-7c0e-4c41-9f77-3f0a8ad1a2b3"


@pytest.mark.parametrize(
    ("segments", "kind", "status"),
    [
        ([U], "success", None),
        ([U, "start"], "start", None),
        ([U, "fail"], "fail", None),
        ([U, "log"], "log", None),
        ([U, "0"], "success", 0),
        ([U, "1"], "fail", 1),
        ([U, "255"], "fail", 255),
    ],
)
def test_uuid_urls(segments: list[str], kind: str, status: int | None) -> None:
    ping = parse_ping(segments, {})
    assert (ping.secret, ping.kind, ping.exit_status, ping.ping_key) == (U, kind, status, None)


def test_slug_urls_rid_and_create() -> None:
    ping = parse_ping(["key_abc", "db-backup", "fail"], {"rid": RID, "create": "1"})
    assert (ping.secret, ping.ping_key, ping.slug, ping.kind) == (
        None,
        "key_abc",
        "db-backup",
        "fail",
    )
    assert ping.rid == UUID(RID) and ping.create
    assert not parse_ping(["key_abc", "db-backup"], {"create": "yes"}).create
    assert parse_ping([U.upper()], {}).secret == U  # UUIDs are case-insensitive


@pytest.mark.parametrize(
    ("segments", "query", "status", "text"),
    [
        ([U, "256"], {}, 400, "invalid url format"),
        ([U], {"rid": "not-a-uuid"}, 400, "invalid uuid format"),
        ([U, "nope"], {}, 404, "not found"),
        ([U, "start", "x"], {}, 404, "not found"),
        (["not-a-uuid"], {}, 404, "not found"),
        (["key", "slug", "bogus"], {}, 404, "not found"),
        ([], {}, 404, "not found"),
    ],
)
def test_bad_urls_answer_as_healthchecks(
    segments: list[str], query: dict[str, str], status: int, text: str
) -> None:
    with pytest.raises(PingError) as caught:
        parse_ping(segments, query)
    assert (caught.value.status, caught.value.text) == (status, text)


def test_uptime_kuma_push_query() -> None:
    push = parse_push({"status": "up", "msg": "OK", "ping": "12.5"})
    assert (push.up, push.msg, push.ping_ms) == (True, "OK", 12.5)
    assert parse_push({}) == parse_push({"status": "up", "msg": "OK"})  # Kuma's defaults
    down = parse_push({"status": "pending", "ping": "nan"})  # any status but up is down
    assert (down.up, down.msg, down.ping_ms) == (False, "OK", None)
    assert parse_push({"ping": "abc"}).ping_ms is None
    assert canonical_uuid("plain-token") is None


def test_body_text_is_cut_at_the_limit_and_made_storable() -> None:
    assert body_text(b"", 10) is None
    assert body_text(b"x" * 20, 10) == "x" * 10
    assert body_text(b"a\x00b\xff", 10) == "a\ufffdb\ufffd"
    assert body_text("é".encode() * 3, 5) == "éé\ufffd"  # a character cut in two


def test_cron_keeps_wall_clock_time_across_dst_changes() -> None:
    # 09:00 in Berlin is 08:00 UTC in winter and 07:00 UTC in summer.
    spring = next_cron("0 9 * * *", "Europe/Berlin", datetime(2026, 3, 28, 8, 0, 30, tzinfo=UTC))
    assert spring == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)
    autumn = next_cron("0 9 * * *", "Europe/Berlin", datetime(2026, 10, 24, 7, 0, 30, tzinfo=UTC))
    assert autumn == datetime(2026, 10, 25, 8, 0, tzinfo=UTC)
    assert next_cron("*/15 * * * *", "UTC", datetime(2026, 1, 1, 0, 0, tzinfo=UTC)) == datetime(
        2026, 1, 1, 0, 15, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("expr", "tz"), [("0 3 * *", "UTC"), ("61 * * * *", "UTC"), ("0 3 * * *", "Mars/Olympus")]
)
def test_bad_schedules_are_refused(expr: str, tz: str) -> None:
    with pytest.raises(ScheduleError):
        check_cron(expr, tz)
