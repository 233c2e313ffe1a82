"""Groups concurrent POST /metric requests into one database call.

Each request waits for its own result, so a 200 still means "committed". While one
batch is in the database the next requests queue up and go together in the next call:
one round trip and one commit (one WAL flush) for many reports, which is what lets
single-report senders approach the framework's own request rate.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import psycopg
from litestar import Litestar
from psycopg_pool import AsyncConnectionPool

from api.core.db import status_of
from api.heartbeats import QUERIES

MAX_BATCH = 500
WRITERS = 1


@dataclass(frozen=True)
class Report:
    host: str
    name: str
    type: str
    value: str | None
    at: datetime | None


class RejectedReport(Exception):
    """The database refused this report (e.g. unknown type); the message says why."""


class WriterUnavailable(Exception):
    """The report could not be stored for a reason that is not the sender's (503)."""


class MetricWriter:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool
        self._queue: asyncio.Queue[tuple[Report, asyncio.Future[str]]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run()) for _ in range(WRITERS)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        while not self._queue.empty():
            _, future = self._queue.get_nowait()
            if not future.done():
                future.set_exception(WriterUnavailable("shutting down"))

    async def write(self, report: Report) -> str:
        """Stores the report; returns the metric's resulting state."""
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        await self._queue.put((report, future))
        return await future

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            pending = [(r, f) for r, f in batch if not f.cancelled()]
            if pending:
                await self._write(pending)

    async def _write(self, batch: list[tuple[Report, asyncio.Future[str]]]) -> None:
        reports = [r for r, _ in batch]
        try:
            async with self._pool.connection() as conn:
                cur = await conn.execute(
                    QUERIES["ingest_metrics"],
                    (
                        [r.host for r in reports],
                        [r.name for r in reports],
                        [r.type for r in reports],
                        [r.value for r in reports],
                        [r.at for r in reports],
                    ),
                )
                rows = await cur.fetchall()
        except psycopg.Error as exc:
            if len(batch) > 1 and status_of(exc) != 503:
                # One report the database refuses must not fail the others of its group:
                # each is written alone, so only the refused one gets the error.
                for item in batch:
                    await self._write([item])
                return
            self._fail(batch, exc)
            return
        except Exception as exc:
            self._fail(batch, WriterUnavailable(type(exc).__name__))
            return
        for ord_, state, error in rows:
            future = batch[ord_ - 1][1]
            if future.done():
                continue
            if error is not None:
                future.set_exception(RejectedReport(error))
            else:
                future.set_result(state)
        self._fail(batch, WriterUnavailable("no result for this report"))

    @staticmethod
    def _fail(batch: list[tuple[Report, asyncio.Future[str]]], exc: Exception) -> None:
        """Answers every future of the batch that is still waiting."""
        for _, future in batch:
            if not future.done():
                future.set_exception(exc)


@contextlib.asynccontextmanager
async def writer_lifespan(app: Litestar) -> AsyncIterator[None]:
    writer = MetricWriter(app.state.pool)
    app.state.metric_writer = writer
    writer.start()
    try:
        yield
    finally:
        await writer.stop()
