"""`vigil simulate`: load for the series API, like metrics-server's simulator by default.

Default (metrics-server's simulator): 20 series metric_a..metric_t, values uniform in 20-40, each
series POSTs one point to /v1/metrics every 300 ms. Options: --rate (points/s in total),
--series, --batch-size (> 1 posts JSON arrays to /v1/metrics/batch), --concurrency,
--duration, --url, --token. Reports sent, accepted and failed points.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import string
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from vigil.settings import Settings

UPSTREAM_SERIES = 20
UPSTREAM_INTERVAL = 0.3


def series_names(count: int) -> list[str]:
    """metric_a..metric_z, then metric_aa, metric_ab, ..."""
    letters = string.ascii_lowercase
    names = []
    for i in range(count):
        suffix = ""
        n = i
        while True:
            suffix = letters[n % 26] + suffix
            n = n // 26 - 1
            if n < 0:
                break
        names.append(f"metric_{suffix}")
    return names


@dataclass
class Counts:
    sent: int = 0
    accepted: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def fail(self, points: int, reason: str) -> None:
        self.failed += points
        self.errors[reason] = self.errors.get(reason, 0) + 1

    def line(self) -> str:
        return f"sent={self.sent} accepted={self.accepted} failed={self.failed}"


def _point(name: str) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"timestamp": now, "name": name, "value": round(random.uniform(20, 40), 3)}


async def _post_one(client: httpx.AsyncClient, counts: Counts, name: str) -> None:
    counts.sent += 1
    try:
        r = await client.post("/v1/metrics", json=_point(name))
    except httpx.HTTPError as exc:
        counts.fail(1, type(exc).__name__)
        return
    if r.status_code == 201:
        counts.accepted += 1
    else:
        counts.fail(1, f"HTTP {r.status_code}")


async def _post_batch(client: httpx.AsyncClient, counts: Counts, points: list[Any]) -> None:
    counts.sent += len(points)
    try:
        r = await client.post("/v1/metrics/batch", json=points)
    except httpx.HTTPError as exc:
        counts.fail(len(points), type(exc).__name__)
        return
    if r.status_code in (200, 400) and r.headers.get("content-type", "").startswith(
        "application/json"
    ):
        body = r.json()
        accepted = int(body.get("accepted", 0))
        counts.accepted += accepted
        if accepted < len(points):
            counts.fail(len(points) - accepted, "rejected")
    else:
        counts.fail(len(points), f"HTTP {r.status_code}")


async def _upstream(client: httpx.AsyncClient, counts: Counts, args: argparse.Namespace) -> None:
    """One task per series, one POST every interval each (metrics-server's simulator)."""
    interval = args.series / args.rate if args.rate else UPSTREAM_INTERVAL
    deadline = time.monotonic() + args.duration if args.duration else float("inf")

    async def sender(name: str) -> None:
        next_at = time.monotonic()
        while time.monotonic() < deadline:
            await _post_one(client, counts, name)
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    await asyncio.gather(*(sender(name) for name in series_names(args.series)))


async def _batched(client: httpx.AsyncClient, counts: Counts, args: argparse.Namespace) -> None:
    """Points due at --rate (default: every series every 300 ms), sent in batches."""
    names = series_names(args.series)
    rate = args.rate or args.series / UPSTREAM_INTERVAL
    start = time.monotonic()
    deadline = start + args.duration if args.duration else float("inf")
    made = 0
    buffer: list[Any] = []
    in_flight: set[asyncio.Task[None]] = set()
    while True:
        now = time.monotonic()
        due = int((min(now, deadline) - start) * rate)
        for i in range(made, due):
            buffer.append(_point(names[i % len(names)]))
        made = max(made, due)
        final = now >= deadline
        while len(buffer) >= args.batch_size or (final and buffer):
            while len(in_flight) >= args.concurrency:
                _, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            chunk, buffer = buffer[: args.batch_size], buffer[args.batch_size :]
            in_flight.add(asyncio.create_task(_post_batch(client, counts, chunk)))
        if final:
            break
        await asyncio.sleep(0.02)
    if in_flight:
        await asyncio.wait(in_flight)


async def simulate(args: argparse.Namespace) -> Counts:
    counts = Counts()
    headers = {"authorization": f"Bearer {args.token}"} if args.token else {}
    limits = httpx.Limits(max_connections=max(args.series, args.concurrency) + 4)
    async with httpx.AsyncClient(
        base_url=args.url.rstrip("/"), headers=headers, timeout=30, limits=limits
    ) as client:
        reporter = asyncio.create_task(_report(counts, args.report_every))
        try:
            if args.batch_size > 1:
                await _batched(client, counts, args)
            else:
                await _upstream(client, counts, args)
        finally:
            reporter.cancel()
    return counts


async def _report(counts: Counts, every: float) -> None:
    while every > 0:
        await asyncio.sleep(every)
        print(counts.line(), flush=True)


def cmd_simulate(settings: Settings, args: argparse.Namespace) -> int:
    if args.url is None:
        args.url = f"http://{settings.host}:{settings.port}"
    args.token = args.token or os.environ.get("VIGIL_TOKEN")
    start = time.monotonic()
    try:
        counts = asyncio.run(simulate(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    took = time.monotonic() - start
    print(f"{counts.line()} seconds={took:.1f} rate={counts.accepted / max(took, 1e-9):.0f}/s")
    for reason, n in sorted(counts.errors.items()):
        print(f"  {n} failed request(s): {reason}", file=sys.stderr)
    return 0 if counts.failed == 0 else 1


def _positive(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError("must be more than 0")
        return value

    return parse


def register(subparsers: Any) -> dict[str, Any]:
    p = subparsers.add_parser(
        "simulate",
        help="send simulated series to a running Vigil (metrics-server's simulator by default)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--url", default=None, help="Vigil base URL (default VIGIL_HOST:VIGIL_PORT)")
    p.add_argument("--token", default=None, help="sender token (default: $VIGIL_TOKEN)")
    p.add_argument("--series", type=_positive(int), default=UPSTREAM_SERIES)
    p.add_argument(
        "--rate", type=_positive(float), default=None,
        help="points per second in total (default: each series every 300 ms)",
    )  # fmt: skip
    p.add_argument(
        "--batch-size", type=_positive(int), default=1,
        help="points per request; > 1 uses POST /v1/metrics/batch",
    )  # fmt: skip
    p.add_argument("--concurrency", type=_positive(int), default=4, help="batch requests in flight")
    p.add_argument(
        "--duration", type=_positive(float), default=None, help="seconds (default: until ^C)"
    )
    p.add_argument(
        "--report-every", type=float, default=5.0, help="seconds between progress lines (0 = off)"
    )
    return {"simulate": cmd_simulate}
