"""Cron schedules of push checks: the next expected ping time of a cron expression in a time
zone (cronsim, the evaluator Healthchecks uses). Lateness is decided in SQL from the deadline
this gives (vigil.push_ping)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError


class ScheduleError(ValueError):
    """A cron expression or time zone that cannot be used; the message says why."""


def zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown time zone {tz!r} (use an IANA name such as UTC)") from None


def check_cron(expr: str, tz: str = "UTC") -> None:
    """Raises ScheduleError unless `expr` is a 5-field cron expression that has a next time."""
    next_cron(expr, tz, datetime(2000, 1, 1, tzinfo=UTC))


def next_cron(expr: str, tz: str, after: datetime) -> datetime:
    """The first time of `expr` in `tz` strictly after `after` (aware), in UTC. Across a DST
    change the wall-clock time is kept (09:00 Europe/Berlin is 08:00 UTC in winter, 07:00 in
    summer); cronsim's rules apply to times that a change skips or repeats."""
    if len(expr.split()) != 5:
        raise ScheduleError(f"{expr!r} is not a cron expression of 5 fields (e.g. '0 3 * * *')")
    local = after.astimezone(zone(tz))
    try:
        return next(CronSim(expr, local)).astimezone(UTC)
    except (CronSimError, StopIteration) as exc:
        raise ScheduleError(f"{expr!r} is not a valid cron expression ({exc})") from None
