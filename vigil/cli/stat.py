"""`vigil stat [HOST] [--history DURATION] [--json]`: a terminal summary of the hosts, or of one
host — heartbeat and disk states, the latest CPU, memory, load and disk values of its series,
request and error rates, firing alerts — with sparklines over a past period on request.

Each view is one statement (vigil/cli/stat.sql) returning one JSON document; this module
recognises the series (Telegraf, node_exporter, collectd names) and formats the document.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from vigil.cli.alerting.common import ago
from vigil.cluster import database_url
from vigil.durations import parse_duration
from vigil.queries import load_queries
from vigil.settings import Settings

QUERIES = load_queries(Path(__file__).with_name("stat.sql"))
Doc = dict[str, Any]

BUCKETS = 40
"""Sparkline width: buckets over the --history period (fewer for periods under 40 minutes)."""
MAX_HISTORY = timedelta(days=400)
STALE = timedelta(hours=1)
"""The overview leaves out series values older than this (a host that stopped sending)."""
BARS = "▁▂▃▄▅▆▇█"
NO_JIT = "-c jit=off"

# Recognised series ------------------------------------------------------------------------
# name -> (kind, label, how the value is read): "value" as it is, "idle" as 100 - value.
# Pairs (node_exporter) are a ratio of two series with the same labels: 100 * (1 - a / b).
DIRECT: dict[str, tuple[str, str, str]] = {
    "cpu_usage_idle": ("cpu", "cpu", "idle"),  # Telegraf cpu (cpu=cpu-total)
    "cpu_percent_idle": ("cpu", "cpu", "idle"),  # collectd cpu, ValuesPercentage true
    "cpu_usage_user": ("cpu", "cpu user", "value"),
    "cpu_percent_user": ("cpu", "cpu user", "value"),
    "mem_used_percent": ("mem", "mem", "value"),  # Telegraf mem
    "memory_percent_used": ("mem", "mem", "value"),  # collectd memory, ValuesPercentage true
    "system_load1": ("load", "load1", "value"),  # Telegraf system
    "node_load1": ("load", "load1", "value"),  # node_exporter
    "load_load_shortterm": ("load", "load1", "value"),  # collectd load
    "disk_used_percent": ("disk", "disk", "value"),  # Telegraf disk (label path)
}
PAIRS: dict[tuple[str, str], tuple[str, str]] = {
    ("node_memory_MemAvailable_bytes", "node_memory_MemTotal_bytes"): ("mem", "mem"),
    ("node_filesystem_avail_bytes", "node_filesystem_size_bytes"): ("disk", "disk"),
}
COLLECTD_DF = re.compile(r"df_(?P<mount>.+)_percent_bytes_used")
"""collectd df with ValuesPercentage true: df-root/percent_bytes-used."""
PATTERNS = ("df\\_%\\_percent\\_bytes\\_used",)
NAMES = tuple(sorted({*DIRECT, *(name for pair in PAIRS for name in pair)}))
PSEUDO_FS = frozenset({"tmpfs", "devtmpfs", "overlay", "squashfs", "ramfs", "nsfs", "autofs"})
KIND_ORDER = ("cpu", "mem", "load", "disk")
PERCENT_KINDS = frozenset({"cpu", "mem", "disk"})
NUMBER = re.compile(r"\s*([-+]?\d+(?:\.\d+)?)\s*%?\s*")


@dataclass
class Reading:
    """One value shown for a host: CPU, memory, load or a disk's use, from one series (or a
    pair), with its history when asked for."""

    kind: str
    label: str
    value: float | None
    at: datetime | None
    source: str
    history: list[float | None] | None = field(default=None)

    @property
    def unit(self) -> str:
        return "%" if self.kind in PERCENT_KINDS else ""

    def json(self) -> Doc:
        return {
            "kind": self.kind,
            "label": self.label,
            "value": self.value,
            "unit": self.unit,
            "at": self.at.isoformat() if self.at else None,
            "source": self.source,
            **({"history": self.history} if self.history is not None else {}),
        }


def _time(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _history(value: object) -> list[float | None] | None:
    if not isinstance(value, list):
        return None
    return [_float(v) for v in value]


def _disk_label(labels: dict[str, str]) -> str:
    where = labels.get("path") or labels.get("mountpoint") or labels.get("device")
    return f"disk {where}" if where else "disk"


def readings(series: Iterable[Doc]) -> list[Reading]:
    """What the recognised series of one host say, in display order (cpu, mem, load, disk;
    then by label). Each doc has name, labels, value, at and, with --history, history."""
    found: list[Reading] = []
    by_key: dict[tuple[str, str], Doc] = {}
    for s in series:
        name, labels = str(s["name"]), dict(s.get("labels") or {})
        by_key[(name, json.dumps(labels, sort_keys=True))] = s
        value, at, history = _float(s.get("value")), _time(s.get("at")), _history(s.get("history"))
        if name in DIRECT:
            kind, label, how = DIRECT[name]
            if kind == "disk":
                label = _disk_label(labels)
            if how == "idle":
                value = None if value is None else 100.0 - value
                history = (
                    None if history is None else [None if v is None else 100.0 - v for v in history]
                )
            found.append(Reading(kind, label, value, at, name, history))
        elif (match := COLLECTD_DF.fullmatch(name)) is not None:
            found.append(Reading("disk", f"disk {match['mount']}", value, at, name, history))
    for (part, whole), (kind, label) in PAIRS.items():
        for (name, key), s in by_key.items():
            if name != part or (t := by_key.get((whole, key))) is None:
                continue
            labels = dict(s.get("labels") or {})
            if kind == "disk":
                if labels.get("fstype") in PSEUDO_FS:
                    continue
                label = _disk_label(labels)
            value = _ratio(_float(s.get("value")), _float(t.get("value")))
            hist_a, hist_b = _history(s.get("history")), _history(t.get("history"))
            history = (
                None
                if hist_a is None or hist_b is None
                else [_ratio(a, b) for a, b in zip(hist_a, hist_b, strict=False)]
            )
            at = max((x for x in (_time(s.get("at")), _time(t.get("at"))) if x), default=None)
            found.append(Reading(kind, label, value, at, f"{part} / {whole}", history))
    found.sort(key=lambda r: (KIND_ORDER.index(r.kind), r.label != r.kind, r.label))
    return found


def _ratio(part: float | None, whole: float | None) -> float | None:
    """Used share in percent of a (free, size) pair: 100 * (1 - part / whole)."""
    if part is None or not whole:
        return None
    return 100.0 * (1.0 - part / whole)


def metric_number(text: object) -> float | None:
    """The number a heartbeat report carries ("71", "71.5 %"), else None."""
    if not isinstance(text, str) or (match := NUMBER.fullmatch(text)) is None:
        return None
    return float(match[1])


# Formatting --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Style:
    """ANSI colours, or none (not a terminal, or NO_COLOR set)."""

    on: bool

    @classmethod
    def for_stream(cls, stream: Any) -> Style:
        isatty = getattr(stream, "isatty", None)
        return cls(bool(isatty and isatty()) and not os.environ.get("NO_COLOR"))

    def _wrap(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.on and text else text

    def red(self, text: str) -> str:
        return self._wrap("31", text)

    def green(self, text: str) -> str:
        return self._wrap("32", text)

    def yellow(self, text: str) -> str:
        return self._wrap("33", text)

    def bold(self, text: str) -> str:
        return self._wrap("1", text)

    def dim(self, text: str) -> str:
        return self._wrap("2", text)

    def state(self, state: str) -> str:
        return self.red("ALERT") if state == "alert" else self.green(state)


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def visible_len(text: str) -> int:
    return len(ANSI.sub("", text))


def columns(rows: Sequence[Sequence[str]], indent: str = "") -> list[str]:
    """Aligned columns (padding by visible width, so colours keep the alignment)."""
    if not rows:
        return []
    widths = [max(visible_len(r[i]) for r in rows if i < len(r)) for i in range(len(rows[0]))]
    return [
        indent
        + "  ".join(
            c + " " * (w - visible_len(c)) for c, w in zip(r, widths, strict=False)
        ).rstrip()
        for r in rows
    ]


def sparkline(values: Sequence[float | None], lo: float | None = None) -> str:
    """One bar per value (▁ lowest .. █ highest, between lo or the minimum and the maximum;
    ▄ throughout when the values are all the same, ▁ when they are all 0); a space where
    there is no value."""
    present = [v for v in values if v is not None]
    if not present:
        return " " * len(values)
    low = min(present) if lo is None else min(lo, *present)
    high = max(present)
    span = high - low
    bars: list[str] = []
    for v in values:
        if v is None:
            bars.append(" ")
        elif span == 0:
            bars.append(BARS[0] if high == 0 else BARS[3])  # flat: mid-height, unless zero
        else:
            bars.append(BARS[min(len(BARS) - 1, int((v - low) / span * len(BARS)))])
    return "".join(bars)


def num(value: float | None, unit: str = "") -> str:
    """A value for people: 71.2 %, 0.52 (two decimals under 10, one under 1000, else none)."""
    if value is None:
        return "-"
    digits = 2 if unit != "%" and abs(value) < 10 else 1 if abs(value) < 1000 else 0
    text = f"{value:.{digits}f}"
    return f"{text} {unit}".rstrip() if unit == "%" else text


def rates(requests: Doc | None) -> tuple[float, float | None, float | None]:
    """Requests per minute, 5xx share and 4xx share (percent; None without requests)."""
    req = requests or {}
    n = float(req.get("n") or 0)
    minutes = float(req.get("minutes") or 5)
    if not n:
        return 0.0, None, None
    return (
        n / minutes,
        100.0 * float(req.get("e5xx") or 0) / n,
        100.0 * float(req.get("e4xx") or 0) / n,
    )


def heartbeat_summary(metrics: Iterable[Doc], style: Style) -> tuple[str, str]:
    """`3 ok` / `2 ok, 1 ALERT` of the deadline metrics; the worst threshold (disk) report."""
    ok = alert = 0
    worst: tuple[float, str, str] | None = None
    for m in metrics:
        if m.get("kind") == "deadline" and m.get("state") == "alert":
            alert += 1
        elif m.get("kind") == "deadline":
            ok += 1
        else:
            value = metric_number(m.get("value"))
            key = (1 if m.get("state") == "alert" else 0, value if value is not None else -1.0)
            if worst is None or key > (1 if worst[2] == "alert" else 0, worst[0]):
                worst = (key[1], str(m.get("name")), str(m.get("state")))
    parts = ([f"{ok} ok"] if ok else []) + ([style.red(f"{alert} ALERT")] if alert else [])
    disk = "-"
    if worst is not None:
        text = f"{num(worst[0], '%') if worst[0] >= 0 else '?'} {worst[1]}"
        disk = style.red(text) if worst[2] == "alert" else text
    return ", ".join(parts) or "-", disk


def render_overview(doc: Doc, style: Style) -> str:
    """The overview: a line per host (heartbeats, fullest disk, CPU, memory, load, requests
    per minute and 5xx share of the last 5 minutes, firing alerts), a requests sparkline
    with --history."""
    now = _time(doc.get("now")) or datetime.now(UTC)
    hosts: list[Doc] = doc.get("hosts") or []
    if not hosts:
        return "no hosts known yet (no heartbeats, series, requests or journal lines)"
    history = doc.get("since") is not None
    rows = [["HOST", "HEARTBEATS", "DISK", "CPU", "MEM", "LOAD", "REQ/MIN", "5XX", "ALERTS"]]
    if history:
        rows[0].append("REQUESTS " + (doc.get("period") or ""))
    for h in hosts:
        beats, disk = heartbeat_summary(h.get("metrics") or [], style)
        fresh = [r for r in readings(h.get("series") or []) if r.at and now - r.at <= STALE]
        first = {
            k: next((r for r in fresh if r.kind == k and r.label in (k, "load1")), None)
            for k in KIND_ORDER
        }
        disks = [r for r in fresh if r.kind == "disk" and r.value is not None]
        if disks:
            top = max(disks, key=lambda r: r.value or 0.0)
            disk = (
                f"{num(top.value, '%')} {top.label.removeprefix('disk ')}" if disk == "-" else disk
            )
        per_min, e5, _ = rates(h.get("requests"))
        firing = int(h.get("alerts") or 0)
        row = [
            style.bold(str(h["host"])),
            beats,
            disk,
            num(first["cpu"].value, "%") if first["cpu"] else "-",
            num(first["mem"].value, "%") if first["mem"] else "-",
            num(first["load"].value) if first["load"] else "-",
            f"{per_min:.1f}" if per_min else "-",
            "-" if e5 is None else (style.red if e5 >= 5 else str)(f"{e5:.1f} %"),
            style.red(str(firing)) if firing else "0",
        ]
        if history:
            counts = _history((h.get("requests") or {}).get("history"))
            row.append(sparkline(counts or [], lo=0.0))
        rows.append(row)
    return "\n".join(columns(rows))


def render_host(doc: Doc, style: Style) -> str:
    """The host view: a section per kind of data the host has (heartbeats, disks, series,
    requests, journal), then its firing alerts; sparklines when the doc has a history."""
    host = str(doc["host"])
    if not doc.get("known"):
        return f"no data for {host}"
    now = _time(doc.get("now")) or datetime.now(UTC)
    since = _time(doc.get("since"))
    title = style.bold(host) + style.dim(f"  at {now.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC")
    if since is not None:
        title += style.dim(f", history since {since.astimezone(UTC):%Y-%m-%d %H:%M} UTC")
    return "\n".join(
        [
            title,
            *_metric_lines(doc.get("metrics") or [], now, since, style),
            *_series_lines(readings(doc.get("series") or []), now, since, style),
            *_request_lines(doc.get("requests") or {}, now, since, style),
            *_journal_lines(doc.get("journal") or {}, now, style),
            *_alert_lines(doc.get("alerts") or [], now, style),
        ]
    )


def _metric_lines(
    metrics: list[Doc], now: datetime, since: datetime | None, style: Style
) -> list[str]:
    """Heartbeats (deadline metrics) and disks (threshold metrics): state, value, last seen;
    with a history, reports per bucket (heartbeats) or the average value (disks)."""
    lines: list[str] = []
    for kind, title in (("deadline", "heartbeats"), ("threshold", "disks")):
        chosen = [m for m in metrics if m.get("kind") == kind]
        if not chosen:
            continue
        lines.append(style.bold(title))
        rows = []
        for m in chosen:
            state = str(m.get("state"))
            row = [str(m["name"]), style.state(state)]
            if kind == "threshold":
                value = metric_number(m.get("value"))
                row.append(num(value, "%") if value is not None else str(m.get("value") or "-"))
                row.append(style.dim(f"(alert {m.get('op')} {num(_float(m.get('threshold')))})"))
            row.append(f"seen {ago(_time(m.get('last_seen')), now)} ago")
            row.append(f"since {ago(_time(m.get('since')), now)}" if state == "alert" else "")
            if since is not None:
                if kind == "threshold":
                    row.append(sparkline(_history(m.get("history")) or []))
                else:
                    row.append(sparkline(_history(m.get("reports")) or [], lo=0.0))
            rows.append(row)
        lines += columns(rows, "  ")
    return lines


def _series_lines(
    found: list[Reading], now: datetime, since: datetime | None, style: Style
) -> list[str]:
    """CPU, memory, load and disk use: latest value, its age (dim when stale), the source
    series; with a history, the sparkline and its range."""
    if not found:
        return []
    rows = []
    for r in found:
        stale = r.at is None or now - r.at > STALE
        row = [
            r.label,
            num(r.value, r.unit),
            (style.dim if stale else str)(f"{ago(r.at, now)} ago"),
        ]
        if since is not None:
            row += [sparkline(r.history or []), style.dim(_range(r.history or []))]
        row.append(style.dim(r.source))
        rows.append(row)
    return [style.bold("series"), *columns(rows, "  ")]


def _request_lines(requests: Doc, now: datetime, since: datetime | None, style: Style) -> list[str]:
    """Requests per minute and the 5xx and 4xx shares of the last 5 minutes; with a history,
    sparklines of requests per minute and of the 5xx share."""
    if requests.get("last_at") is None:
        return []
    per_min, e5, e4 = rates(requests)
    row = [
        f"{per_min:.1f}/min",
        "5xx " + ("-" if e5 is None else (style.red if e5 >= 5 else str)(f"{e5:.1f} %")),
        "4xx " + ("-" if e4 is None else f"{e4:.1f} %"),
        f"last {ago(_time(requests.get('last_at')), now)} ago",
    ]
    lines = [style.bold("requests") + style.dim(" (last 5 min)"), *columns([row], "  ")]
    history = requests.get("history")
    if since is not None and isinstance(history, dict):
        counts = [float(v or 0) for v in history.get("n") or []]
        errors = [float(v or 0) for v in history.get("e5xx") or []]
        width = (now - since).total_seconds() / 60 / max(1, len(counts))
        per = [c / width for c in counts]
        share = [100.0 * e / c if c else None for c, e in zip(counts, errors, strict=False)]
        lines += columns(
            [
                ["req/min", sparkline(per, lo=0.0), style.dim(f"0..{max(per, default=0.0):.1f}")],
                ["5xx %", sparkline(share, lo=0.0), style.dim(_range(share))],
            ],
            "  ",
        )
    return lines


def _journal_lines(journal: Doc, now: datetime, style: Style) -> list[str]:
    """Journal lines per minute and errors (priority 3 or more urgent) of the last 5 minutes."""
    if journal.get("last_at") is None:
        return []
    errors = int(journal.get("errors") or 0)
    row = [
        f"{float(journal.get('n') or 0) / float(journal.get('minutes') or 5):.1f} lines/min",
        "errors " + (style.red(str(errors)) if errors else "0"),
        f"last {ago(_time(journal.get('last_at')), now)} ago",
    ]
    return [style.bold("journal") + style.dim(" (last 5 min)"), *columns([row], "  ")]


def _alert_lines(alerts: list[Doc], now: datetime, style: Style) -> list[str]:
    """The host's firing alerts: rule, severity, since when, value, instance, and why its
    notifications are withheld (silenced, maintenance) if they are."""
    rows = []
    for a in alerts:
        severity = str(a.get("severity"))
        value = _float(a.get("value"))
        rows.append(
            [
                (style.red if severity == "critical" else style.yellow)(str(a.get("rule"))),
                severity,
                f"since {ago(_time(a.get('since')), now)}",
                "value "
                + (f"{value:.6g}" if value is not None else str(a.get("value_text") or "-")),
                str(a.get("instance") or ""),
                style.dim(str(a.get("withheld") or "")),
            ]
        )
    return [style.bold("firing alerts") + f" ({len(alerts)})", *columns(rows, "  ")]


def _range(values: Sequence[float | None]) -> str:
    present = [v for v in values if v is not None]
    return f"{num(min(present))}..{num(max(present))}" if present else ""


# The views ----------------------------------------------------------------------------------


def history_plan(period: timedelta) -> tuple[int, str]:
    """Buckets and the rollup tier read for a --history period: 40 buckets (one a minute for
    periods under 40 minutes), from the finest tier no coarser than a bucket."""
    minutes = period.total_seconds() / 60
    buckets = max(1, min(BUCKETS, int(minutes)))
    width = period / buckets
    granularity = (
        "day" if width >= timedelta(days=1) else "hour" if width >= timedelta(hours=1) else "minute"
    )
    return buckets, granularity


def overview(conn: psycopg.Connection[Any], now: datetime, period: timedelta | None = None) -> Doc:
    """The document of `vigil stat`: one statement."""
    since = None if period is None else now - period
    buckets = history_plan(period)[0] if period else 0
    row = conn.execute(
        QUERIES["overview"],
        {
            "now": now,
            "since": since,
            "buckets": buckets,
            "names": list(NAMES),
            "patterns": list(PATTERNS),
        },
    ).fetchone()
    assert row is not None
    doc: Doc = row[0]
    return doc


def host_view(
    conn: psycopg.Connection[Any], host: str, now: datetime, period: timedelta | None = None
) -> Doc:
    """The document of `vigil stat HOST`: one statement."""
    buckets, granularity = history_plan(period) if period else (0, "minute")
    row = conn.execute(
        QUERIES["host"],
        {
            "host": host,
            "now": now,
            "since": None if period is None else now - period,
            "buckets": buckets,
            "granularity": granularity,
            "names": list(NAMES),
            "patterns": list(PATTERNS),
        },
    ).fetchone()
    assert row is not None
    doc: Doc = row[0]
    return doc


def with_readings(doc: Doc) -> Doc:
    """The document for --json: each host's recognised values added as `readings`."""
    if "hosts" in doc:
        return {
            **doc,
            "hosts": [
                {**h, "readings": [r.json() for r in readings(h.get("series") or [])]}
                for h in doc["hosts"]
            ],
        }
    return {**doc, "readings": [r.json() for r in readings(doc.get("series") or [])]}


def connect(url: str) -> psycopg.Connection[Any]:
    """An autocommit connection for the views, without JIT compilation: the planner's cost
    of a view (a lateral per host and series over the partitions) passes jit_above_cost
    while running it takes milliseconds; compiling would take seconds."""
    options = conninfo_to_dict(url).get("options")
    return psycopg.connect(url, autocommit=True, options=f"{options or ''} {NO_JIT}".strip())


def cmd_stat(settings: Settings, args: argparse.Namespace) -> int:
    period: timedelta | None = None
    if args.history is not None:
        try:
            period = parse_duration(args.history)
        except ValueError as exc:
            print(f"vigil: --history: {exc}", file=sys.stderr)
            return 2
        if not timedelta(minutes=1) <= period <= MAX_HISTORY:
            print("vigil: --history must be between 1m and 400d", file=sys.stderr)
            return 2
    now = datetime.now(UTC)
    try:
        with database_url(settings) as url, connect(url) as conn:
            if args.host:
                doc = host_view(conn, args.host, now, period)
            else:
                doc = overview(conn, now, period)
    except psycopg.Error as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        print(f"vigil: database error: {reason}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(with_readings(doc), indent=2, ensure_ascii=False))
        return 0
    style = Style.for_stream(sys.stdout)
    if period is not None and not args.host:
        doc = {**doc, "period": args.history}
    print(render_host(doc, style) if args.host else render_overview(doc, style))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> dict[str, Any]:
    stat = sub.add_parser(
        "stat",
        help="a terminal summary of the hosts, or of one host (heartbeats, disks, CPU, memory, "
        "load, requests, firing alerts)",
    )
    stat.add_argument("host", nargs="?", metavar="HOST", help="one host (default: every host)")
    stat.add_argument(
        "--history",
        metavar="DURATION",
        help="sparklines over the last DURATION (e.g. 1h, 24h, 7d)",
    )
    stat.add_argument("--json", action="store_true", help="the view as one JSON document")
    return {"stat": cmd_stat}
