"""The journal browser (GET /journal) and its live tail (GET /journal/tail).

Filters are query parameters (`start`, `end` as YYYY-MM-DDTHH:MM, `page`,
`pageSize`, `container`, `host`, `filter`) plus `unit`, `priority`, `order`
(newest|oldest), `tz` (the viewer's IANA zone for start/end, filled in by journal.js) and
the keyset cursors `after` / `before` (`<ISO time>,<id>`). `page` is accepted for old
bookmarks and ignored: paging is by keyset, never OFFSET. Log text is untrusted: it is
autoescaped, and control, bidi and invisible characters are shown as visible escapes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg
from litestar import Request, get
from litestar.response import Template
from markupsafe import Markup, escape

from api.auth.sessions import operator_guard
from api.core.db import http_error, read_pool_of
from api.core.pages import render
from api.journal import QUERIES

PAGE_SIZES = (50, 100, 200, 500)
DEFAULT_PAGE_SIZE = 100
PRIORITIES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
FILTER_KEYS = (
    "start",
    "end",
    "host",
    "container",
    "unit",
    "priority",
    "filter",
    "pageSize",
    "order",
    "tz",
)
MAX_FIELD = 200

# C0 and C1 controls except tab and newline, DEL, bidi controls, zero-width characters,
# line/paragraph separators and the BOM.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]"
)


def visible(text: str) -> Markup:
    """HTML-escaped text in which invisible and direction-changing characters are shown
    as `\\xNN` / `\\uNNNN` (so a line cannot hide or reorder what it shows)."""
    parts: list[Markup] = []
    last = 0
    for m in _INVISIBLE.finditer(text):
        code = ord(m.group(0))
        name = f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
        parts += [
            escape(text[last : m.start()]),
            Markup('<span class="esc">{}</span>').format(name),
        ]
        last = m.end()
    parts.append(escape(text[last:]))
    return Markup("").join(parts)


class FilterError(ValueError):
    """A filter value the page cannot use; the message is shown to the operator."""


@dataclass
class Filters:
    """The page's filters, parsed from the query string."""

    raw: dict[str, str] = field(default_factory=dict)
    start: datetime | None = None
    end: datetime | None = None
    host: str | None = None
    container: str | None = None
    unit: str | None = None
    priority: int | None = None
    text: str | None = None
    page_size: int = DEFAULT_PAGE_SIZE
    newest_first: bool = True

    def query(self, **extra: str) -> str:
        params = {k: v for k, v in self.raw.items() if v} | extra
        return urlencode(params)


def _zone(name: str) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise FilterError(f"unknown time zone {name!r}") from None


def _local_time(value: str, zone: ZoneInfo | None, label: str, end: bool) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise FilterError(f"{label} must be YYYY-MM-DDTHH:MM, e.g. 2026-03-01T14:30") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone or UTC)
    if end and len(value) <= 16:  # a whole minute is inclusive
        parsed += timedelta(minutes=1, microseconds=-1)
    return parsed


def digits(text: str) -> bool:
    """0-9 only (str.isdigit alone admits other scripts' digits, which int() refuses)."""
    return text.isascii() and text.isdigit()


def parse_filters(params: dict[str, str]) -> Filters:
    raw = {k: params.get(k, "").strip() for k in FILTER_KEYS}
    f = Filters(raw=raw)
    zone = _zone(raw["tz"])
    f.start = _local_time(raw["start"], zone, "start", end=False)
    f.end = _local_time(raw["end"], zone, "end", end=True)
    f.host = raw["host"][:MAX_FIELD] or None
    f.container = raw["container"][:MAX_FIELD] or None
    f.unit = raw["unit"][:MAX_FIELD] or None
    f.text = raw["filter"][:MAX_FIELD] or None
    if raw["priority"]:
        if not digits(raw["priority"]) or int(raw["priority"]) > 7:
            raise FilterError("priority must be 0 (emerg) to 7 (debug)")
        f.priority = int(raw["priority"])
    if raw["pageSize"]:
        if not digits(raw["pageSize"]) or not 1 <= int(raw["pageSize"]) <= 1000:
            raise FilterError("page size must be 1 to 1000")
        f.page_size = int(raw["pageSize"])
    f.newest_first = raw["order"] != "oldest"
    return f


def parse_cursor(value: str) -> tuple[datetime, int] | None:
    if not value:
        return None
    at, _, ident = value.rpartition(",")
    try:
        return datetime.fromisoformat(at), int(ident)
    except ValueError:
        raise FilterError("bad page cursor; start again from the first page") from None


def cursor_of(row: dict[str, Any]) -> str:
    at: datetime = row["at"]
    return f"{at.isoformat()},{row['id']}"


def _row(r: tuple[Any, ...]) -> dict[str, Any]:
    ident, at, host, unit, container, priority, message, fields = r
    everything = dict(fields)
    if "MESSAGE" not in everything:
        everything["MESSAGE"] = message
    return {
        "id": ident,
        "at": at,
        "iso": at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "utc": at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC",
        "host": visible(host or ""),
        "unit": visible(unit or ""),
        "container": visible(container or ""),
        "priority": priority,
        "priority_name": PRIORITIES[priority] if priority is not None else "",
        "message": visible(message),
        "fields": visible(
            json.dumps(dict(sorted(everything.items())), indent=1, ensure_ascii=False)
        ),
    }


async def _search(request: Request[Any, Any, Any], f: Filters, **kw: Any) -> list[dict[str, Any]]:
    params = {
        "from": f.start,
        "to": f.end,
        "host": f.host,
        "unit": f.unit,
        "container": f.container,
        "priority": f.priority,
        "text": f.text,
        "after_at": None,
        "after_id": None,
        "newest_first": f.newest_first,
        "limit": f.page_size,
        "tail_id": None,
    } | kw
    async with read_pool_of(request.app).connection() as conn:
        rows = await (await conn.execute(QUERIES["journal_search"], params)).fetchall()
    return [_row(r) for r in rows]


@get("/journal", guards=[operator_guard], include_in_schema=False)
async def journal_page(request: Request[Any, Any, Any]) -> Template:
    params = {k: str(v) for k, v in request.query_params.items()}
    try:
        f = parse_filters(params)
        after = parse_cursor(params.get("after", ""))
        before = parse_cursor(params.get("before", ""))
    except FilterError as exc:
        return render(
            request,
            "journal/journal.html",
            status_code=400,
            error=str(exc),
            f=Filters(raw={k: params.get(k, "") for k in FILTER_KEYS}),
            rows=[],
            priorities=PRIORITIES,
            page_sizes=PAGE_SIZES,
        )
    size = f.page_size
    try:
        rows: list[dict[str, Any]] = []
        if before:
            # the previous page: walk the other way from the first row shown, then flip
            rows = await _search(
                request,
                f,
                after_at=before[0],
                after_id=before[1],
                newest_first=not f.newest_first,
                limit=size + 1,
            )
        if before and len(rows) > size:
            rows, has_newer, has_older = list(reversed(rows[:size])), True, True
        else:
            # first page (also when "newer" reached the start), or the page after a cursor
            cursor = after if not before else None
            rows = await _search(
                request,
                f,
                after_at=cursor[0] if cursor else None,
                after_id=cursor[1] if cursor else None,
                limit=size + 1,
            )
            has_newer, has_older = cursor is not None, len(rows) > size
            rows = rows[:size]
    except psycopg.Error as exc:
        error = http_error(exc)
        return render(
            request,
            "journal/journal.html",
            status_code=error.status_code,
            error=(
                "the database is unavailable, retry in a moment"
                if error.status_code == 503
                else f"these filters cannot be used: {error.detail}"
            ),
            f=f,
            rows=[],
            priorities=PRIORITIES,
            page_sizes=PAGE_SIZES,
        )
    tail = params.get("tail") == "1" and f.newest_first and not (after or before)
    newest_id = max((r["id"] for r in rows), default=0)
    return render(
        request,
        "journal/journal.html",
        f=f,
        rows=rows,
        priorities=PRIORITIES,
        page_sizes=sorted({*PAGE_SIZES, f.page_size}),
        newer_url=("/journal?" + f.query(before=cursor_of(rows[0])))
        if has_newer and rows
        else None,
        older_url=("/journal?" + f.query(after=cursor_of(rows[-1])))
        if has_older and rows
        else None,
        first_url="/journal?" + f.query(),
        tail=tail,
        tail_url="/journal/tail?" + f.query(since=str(newest_id)),
        tail_toggle="/journal?" + (f.query() if tail else f.query(tail="1")),
    )


@get("/journal/tail", guards=[operator_guard], include_in_schema=False)
async def journal_tail(request: Request[Any, Any, Any]) -> Template:
    """Lines that arrived after id `since` (htmx polls this every 2 s in live-tail mode)."""
    params = {k: str(v) for k, v in request.query_params.items()}
    try:
        f = parse_filters(params)
        since = int(params.get("since", "0") or 0)
        if not 0 <= since < 2**63:
            raise ValueError("since out of range")
    except (FilterError, ValueError):
        return render(request, "journal/tail.html", status_code=400, rows=[], tail_url="")
    rows = await _search(request, f, tail_id=since, newest_first=True, limit=500)
    newest = max([since, *(r["id"] for r in rows)])
    return render(
        request,
        "journal/tail.html",
        rows=rows,
        tail_url="/journal/tail?" + f.query(since=str(newest)),
    )


ROUTES = [journal_page, journal_tail]
