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
from psycopg.pq import TransactionStatus
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


class SeriesIdCache:
    """Series ids of (name, canonical labels) keys already resolved, per database.

    Valid while vigil.series_forgotten (advanced by every delete or truncate of series)
    keeps the value it had when the ids were read: a deleted series may come back under a
    new id. Checking it costs one tiny query per batch instead of vigil.series_ids for every
    key. Bounded: cleared when it reaches `limit` keys.
    """

    def __init__(self, limit: int = 1_000_000) -> None:
        self.limit = limit
        self.ids: dict[tuple[str, str], int] = {}
        self.epoch: tuple[str, int] | None = None

    def validate(self, database: str, forgotten: int) -> None:
        epoch = (database, forgotten)
        if epoch != self.epoch or len(self.ids) >= self.limit:
            self.ids.clear()
            self.epoch = epoch


_CACHES: dict[str, SeriesIdCache] = {}


def _cache(conn: AsyncConnection[tuple[object, ...]]) -> tuple[SeriesIdCache, str]:
    info = conn.info
    database = f"{info.host}:{info.port}/{info.dbname}"
    cache = _CACHES.get(database)
    if cache is None:
        cache = _CACHES[database] = SeriesIdCache()
    return cache, database


async def resolve_series(
    conn: AsyncConnection[tuple[object, ...]],
    batch: Batch,
    created: dict[tuple[str, str], int] | None = None,
) -> list[int]:
    """Series id per key index, creating new series; known keys from the process's cache.

    Ids read from the database go into `created` when given (the caller adds them to the
    cache once its transaction committed: a rolled-back series has no id), else into the
    cache at once.
    """
    cache, database = _cache(conn)
    cur = await conn.execute(QUERIES["series_forgotten"])
    row = await cur.fetchone()
    cache.validate(database, int(str(row[0])) if row else 0)
    keys = list(batch.keys)
    known = cache.ids
    ids = [known.get(key, 0) for key in keys]
    missing = [i for i, id_ in enumerate(ids) if not id_]
    if missing:
        fresh = known if created is None else created
        names = [keys[i][0] for i in missing]
        labels = [keys[i][1] for i in missing]
        cur = await conn.execute(QUERIES["series_ids"], (names, labels))
        for ord_, id_ in await cur.fetchall():
            i = missing[int(str(ord_)) - 1]
            ids[i] = fresh[keys[i]] = int(str(id_))
    return ids


def copy_parts(batch: Batch, ids: list[int]) -> tuple[bytes | bytearray, ...]:
    """The binary COPY data of a batch, given the series id of each of its keys."""
    if batch.rows is not None:
        fastpoints.set_series_ids(batch.rows, [ids[i] for i in batch.raw_keys])
        return (pgcopy.HEADER, batch.rows, pgcopy.TRAILER)
    series_ids = [ids[i] for i in batch.series]
    return (copy_payload(series_ids, batch.at_us, batch.values, batch.at_base_us),)


async def write_batch(conn: AsyncConnection[tuple[object, ...]], batch: Batch) -> None:
    """Stores the accepted points of a batch in one transaction (series + COPY); series ids
    known to this process are not looked up again (SeriesIdCache)."""
    if not batch.accepted:
        return
    created: dict[tuple[str, str], int] = {}
    async with conn.transaction():
        ids = await resolve_series(conn, batch, created)
        async with conn.cursor().copy(QUERIES["points_copy"]) as copy:
            for part in copy_parts(batch, ids):
                await copy.write(part)
    # Only once committed: inside a caller's transaction a rollback could still undo them.
    if created and conn.info.transaction_status == TransactionStatus.IDLE:
        _cache(conn)[0].ids.update(created)


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
