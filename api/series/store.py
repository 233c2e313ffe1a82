"""Batch writes of numeric points: series ids from vigil.series_ids, points by binary COPY.

A batch is built by a parser (JSON, NDJSON, Influx line protocol): every accepted point is
(series key index, microseconds since the Unix epoch, value); every rejected one an error
with its position. Valid points are stored even when others are rejected.
"""

from __future__ import annotations

from array import array
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from api.core import pgcopy
from api.core.timestamps import PG_EPOCH_US
from api.series import QUERIES
from api.series.formats.points import FIELD_OFFSETS, ROW_SIZE, ROW_TEMPLATE, SWAP, Batch

try:  # built by `pip install` where a C compiler is (see pyproject.toml)
    from api.series import _fastpoints as fastpoints
except ImportError:  # the Python path only
    fastpoints = None  # type: ignore[assignment]


def copy_payload(
    series_ids: list[int], at_us: list[int], values: list[float], at_base_us: int = 0
) -> bytes:
    """PostgreSQL binary COPY data for (series_id int8, at timestamptz, value float8); at_us
    are microseconds since the Unix time at_base_us.

    Column-wise: each column becomes a C array of big-endian 8-byte values, and each of
    its 8 byte positions is copied into every row of a template with one strided slice
    assignment (24 C loops in all instead of one struct.pack call per row).
    """
    n = len(values)
    if len(series_ids) != n or len(at_us) != n:
        raise ValueError("copy_payload: columns of different lengths")
    shift = PG_EPOCH_US - at_base_us
    columns: list[array[int] | array[float]] = [
        array("q", series_ids),
        array("q", [at - shift for at in at_us] if shift else at_us),
        array("d", values),
    ]
    rows = bytearray(ROW_TEMPLATE * n)
    for offset, column in zip(FIELD_OFFSETS, columns, strict=True):
        if SWAP:
            column.byteswap()
        data = column.tobytes()
        for byte in range(8):
            rows[offset + byte :: ROW_SIZE] = data[byte::8]
    return pgcopy.HEADER + rows + pgcopy.TRAILER


async def resolve_series(conn: AsyncConnection[tuple[object, ...]], batch: Batch) -> list[int]:
    """Series id per key index, creating new series."""
    keys = list(batch.keys)
    names = [name for name, _ in keys]
    labels = [lab for _, lab in keys]
    cur = await conn.execute(QUERIES["series_ids"], (names, labels))
    ids = [0] * len(keys)
    for ord_, id_ in await cur.fetchall():
        ids[int(str(ord_)) - 1] = int(str(id_))
    return ids


def copy_parts(batch: Batch, ids: list[int]) -> tuple[bytes | bytearray, ...]:
    """The binary COPY data of a batch, given the series id of each of its keys."""
    if batch.rows is not None:
        fastpoints.set_series_ids(batch.rows, [ids[i] for i in batch.raw_keys])
        return (pgcopy.HEADER, batch.rows, pgcopy.TRAILER)
    series_ids = [ids[i] for i in batch.series]
    return (copy_payload(series_ids, batch.at_us, batch.values, batch.at_base_us),)


async def write_batch(conn: AsyncConnection[tuple[object, ...]], batch: Batch) -> None:
    """Stores the accepted points of a batch in one transaction (series + COPY)."""
    if not batch.accepted:
        return
    async with conn.transaction():
        ids = await resolve_series(conn, batch)
        async with conn.cursor().copy(QUERIES["points_copy"]) as copy:
            for part in copy_parts(batch, ids):
                await copy.write(part)


async def fetch_averages(
    pool: AsyncConnectionPool,
    name: str,
    labels: str | None,
    granularity: str,
    start: datetime,
    end: datetime,
) -> list[tuple[Any, ...]]:
    """(bucket, avg, min, max, n) per bucket of [start, end), newest first; labels: the
    canonical JSON of one label set, or None for every series of the name together."""
    async with pool.connection() as conn:
        cur = await conn.cursor(binary=True).execute(
            QUERIES["series_averages"], (name, labels, granularity, start, end)
        )
        return await cur.fetchall()
