"""Public reads are served from the process for READ_TTL seconds and take turns."""

from __future__ import annotations

import asyncio

import pytest

from api.public import routes


def test_a_read_is_reused_until_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(routes, "clock", lambda: clock[0])
    monkeypatch.setattr(routes, "READ_TTL", 30.0)
    reads: list[str] = []

    async def read() -> str:
        reads.append("x")
        return f"value {len(reads)}"

    async def scenario() -> list[str]:
        got = [await routes.cached(("status", "acme"), read)]
        clock[0] += 29
        got.append(await routes.cached(("status", "acme"), read))
        got.append(await routes.cached(("status", "other"), read))
        clock[0] += 2
        got.append(await routes.cached(("status", "acme"), read))
        return got

    assert asyncio.run(scenario()) == ["value 1", "value 1", "value 2", "value 3"]


def test_at_most_a_few_reads_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    running, most = [0], [0]

    async def read() -> int:
        running[0] += 1
        most[0] = max(most[0], running[0])
        await asyncio.sleep(0.01)
        running[0] -= 1
        return 1

    async def scenario() -> None:
        monkeypatch.setattr(routes, "_slots", asyncio.Semaphore(routes.PUBLIC_READS))
        await asyncio.gather(*(routes.cached(("badge", str(i)), read) for i in range(10)))

    asyncio.run(scenario())
    assert most[0] == routes.PUBLIC_READS
