"""Batch writes of numeric points: series ids from vigil.series_ids, points by binary COPY.

A batch is built by a parser (JSON, NDJSON, Influx line protocol): every accepted point is
(series key index, microseconds since the Unix epoch, value); every rejected one an error
with its position. Valid points are stored even when others are rejected.
"""

from __future__ import annotations

import itertools
import math
import struct
from array import array
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from psycopg.errors import UniqueViolation
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

    Valid while the epoch read with each batch (QUERIES["series_forgotten"], one tiny query
    instead of vigil.series_ids for every key) stays the same: vigil.series_forgotten,
    advanced by every delete or truncate of series (a deleted series may come back under a
    new id) and started at a random value by each install (a schema or cluster recreated
    from scratch); the database's oid (a database dropped and recreated under the same
    name, e.g. from a template, whose copied values match); and the highest series id issued
    must not fall below the one seen before (ids restarted, a backup restored). Bounded:
    cleared when it reaches `limit` keys.
    """

    def __init__(self, limit: int = 1_000_000) -> None:
        self.limit = limit
        self.ids: dict[tuple[str, str], int] = {}
        self.epoch: tuple[str, int, int] | None = None
        self.top = 0  # the highest series id issued, as last read
        self.decimal: bool | None = None  # the points layout (decimal_layout), once known

    def validate(self, database: str, forgotten: int, database_oid: int, top: int) -> None:
        epoch = (database, forgotten, database_oid)
        if epoch != self.epoch or top < self.top or len(self.ids) >= self.limit:
            self.ids.clear()
            self.epoch = epoch
            self.decimal = None
        self.top = top


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
    forgotten, database_oid, top = (int(str(v)) for v in row) if row else (0, 0, 0)
    cache.validate(database, forgotten, database_oid, top)
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


def by_series(
    series_ids: list[int], at_us: list[int], values: list[float]
) -> tuple[list[int], list[int], list[float]]:
    """The points in (series_id, at) order, equal keys as they came: batches mostly arrive
    sliced by time (each series' newest point, then the next), and PostgreSQL inserts rows
    in series order into the (series_id, at) index leaf by leaf, ~25 % less server CPU per
    point at 1,000 series per 5,000 points (the compiled path: _fastpoints.sort_rows)."""
    keys = list(zip(series_ids, at_us, strict=True))
    if all(a <= b for a, b in itertools.pairwise(keys)):
        return series_ids, at_us, values
    order = sorted(range(len(keys)), key=keys.__getitem__)
    return (
        [series_ids[i] for i in order],
        [at_us[i] for i in order],
        [values[i] for i in order],
    )


def copy_parts(
    batch: Batch, ids: list[int], decimal: bool = False, scales: dict[int, int] | None = None
) -> tuple[bytes | bytearray, ...]:
    """The binary COPY data of a batch, given the series id of each of its keys; with
    `decimal`, rows of vigil.points_data (TimescaleDB mode, see decimal_rows and its
    `scales`)."""
    if batch.rows is not None:
        fastpoints.set_series_ids(batch.rows, [ids[i] for i in batch.raw_keys])
        fastpoints.sort_rows(batch.rows)
        rows: bytes | bytearray = batch.rows
    else:
        series_ids, at_us, values = by_series(
            [ids[i] for i in batch.series], batch.at_us, batch.values
        )
        payload = copy_payload(series_ids, at_us, values, batch.at_base_us)
        if not decimal:
            return (payload,)
        rows = payload[len(pgcopy.HEADER) : len(payload) - len(pgcopy.TRAILER)]
    if decimal:
        rows = decimal_rows(rows, {} if scales is None else scales)
    return (pgcopy.HEADER, rows, pgcopy.TRAILER)


POW10_EXACT = tuple(10.0**e for e in range(16))  # exact: every 10^e up to 10^22 is a float
TWO_53 = float(2**53)
MAX_SCALE = 6  # values needing more decimal digits (float noise like 94.79799999999999): f


def to_decimal(value: float) -> tuple[int, int] | None:
    """(m, e) with value == m / 10^e exactly (|m| < 2^53, the smallest 0 <= e <= 15), or
    None: how vigil.points_data stores a value (vigil._decimal_encode in SQL, the same
    rule). m / 10^e is one correctly rounded division of exact numbers, so the check per
    value is exact; -0.0, NaN, infinities and values like 1/3 stay floats."""
    if not abs(value) < TWO_53 or (value == 0 and math.copysign(1.0, value) < 0):
        return None
    for e, p in enumerate(POW10_EXACT):
        x = value * p
        if not abs(x) < TWO_53:
            return None
        m = round(x)  # half to even, like C's rint() and PostgreSQL's round(float8)
        if m / p == value:
            return m, e
    return None


RESIDUAL_MAX = 2.0**-40  # relative: a few units in the last place

# The scale state of a series (the int kept per series id in `scales`): the scale in bits
# 0-2; in bits 3-22 and 23-42 two counters of recent values, each decayed by 1/256 per value
# of the series and raised by EVIDENCE per value: `up` counts values needing more digits
# than the scale, `down` values needing exactly the scale. The scale rises (to the digits of
# the value that tipped it) once `up` reaches RAISE_AT (values needing more digits are ~3 %
# of the recent ones, or ~8 of them came close together) and falls by one digit once `down`
# is under LOWER_AT (under ~1 % of the recent values need it). A state under 8 is a bare
# scale, taken as freshly set.
EVIDENCE = 256
COUNTER_MAX = (1 << 20) - 1
RAISE_AT = 8 * EVIDENCE
LOWER_AT = 2 * EVIDENCE
FRESH = 4 * EVIDENCE  # `down` after the scale changed: ~150 values without need lower it


def series_scale(state: int) -> int:
    """The scale (0..MAX_SCALE) of a series' state in `scales`."""
    return min(state & 7, MAX_SCALE)


def _residual(value: float, scale: int) -> tuple[int, float] | None:
    """(m, r) with value == m / 10^scale + r exactly, r a few units in the last place."""
    x = value * POW10_EXACT[scale]
    if value != 0 and abs(x) < TWO_53:
        m = round(x)
        d = m / POW10_EXACT[scale]
        r = value - d
        if r != 0 and d + r == value and abs(r) <= abs(value) * RESIDUAL_MAX:
            return m, r
    return None


def scaled_decimal(
    series_id: int, value: float, scales: dict[int, int]
) -> tuple[int, int, float | None] | None:
    """The (m, e, r) the API stores for a value of a series (value == m / 10^e + r, r None
    for 0), or None (a float). TimescaleDB compresses m with delta-of-delta, which a change
    of e (m jumping by powers of ten) costs dearly, so the values of a series are written
    with one e, its scale: the digits its values usually need (up to MAX_SCALE), kept in
    `scales` (see EVIDENCE), not the most any value had: a rare value with more digits is
    written at its own e (two jumps of m, ~10-20 bytes) instead of making every later m 10x
    larger (~0.4 bytes a point). A value a few units in the last place from a decimal (float
    noise such as 94.79799999999999) is that decimal and the residual r, exact by Sterbenz's
    lemma and checked as vigil._decimal adds it: at the scale, or else at the fewest more
    digits that fit. Any (m, e) reads back exactly (checked per value); the scale only
    steers compression. The same as the compiled decimal_rows."""
    state = scales.get(series_id)
    dec = to_decimal(value)
    if dec is not None and dec[1] > MAX_SCALE:
        dec = None
    if state is None:
        scale, up, down = (dec[1] if dec else 0), 0, FRESH
    else:
        state = max(state, 0)
        scale = series_scale(state)
        up, down = (state >> 3) & COUNTER_MAX, (state >> 23) & COUNTER_MAX
        if state < 8:
            down = FRESH
        up -= (up + 255) >> 8
        down -= (down + 255) >> 8
    out: tuple[int, int, float | None] | None = None
    need = -1  # the digits the value needs, when it is a decimal or noise next to one
    if dec is not None:
        m, e = dec
        need = e
        factor = 10 ** (scale - e) if e <= scale else 0
        if factor and abs(m) * factor < TWO_53 and (m * factor) / POW10_EXACT[scale] == value:
            out = (m * factor, scale, None)
        else:
            out = (m, e, None)
    else:
        for k in range(scale, MAX_SCALE + 1):
            res = _residual(value, k)
            if res is not None:
                # It needs the fewest digits it is noise next to (k or fewer).
                need = next(j for j in range(k + 1) if _residual(value, j) is not None)
                out = (res[0], k, res[1])
                break
    if state is None and need > scale:  # a new series: its first value's digits
        scale, need = need, scale
    if need > scale:
        up = min(up + EVIDENCE, COUNTER_MAX)
        if up >= RAISE_AT:
            scale, up, down = need, 0, FRESH
    elif need == scale:
        down = min(down + EVIDENCE, COUNTER_MAX)
    if scale > 0 and down < LOWER_AT:
        scale, up, down = scale - 1, 0, FRESH
    scales[series_id] = scale | up << 3 | down << 23
    return out


_DECIMAL_ROW = struct.Struct(">iqihii")
_RESIDUAL_ROW = struct.Struct(">iqihiid")
_FLOAT_ROW = struct.Struct(">iiidi")


def decimal_rows(rows: bytes | bytearray, scales: dict[int, int]) -> bytes:
    """COPY rows (series_id, at, value) as rows of vigil.points_data
    (series_id, at, m, e, f, r): (m, e, null, r) as scaled_decimal finds them, else
    (null, null, value, null)."""
    if fastpoints is not None:
        return fastpoints.decimal_rows(rows, scales)
    if len(rows) % ROW_SIZE:
        raise ValueError("rows are not whole COPY rows")
    out = bytearray()
    for off in range(0, len(rows), ROW_SIZE):
        (series_id,) = struct.unpack_from(">q", rows, off + FIELD_OFFSETS[0])
        (value,) = struct.unpack_from(">d", rows, off + FIELD_OFFSETS[2])
        out += b"\x00\x06"
        out += rows[off + 2 : off + FIELD_OFFSETS[2] - 4]
        dec = scaled_decimal(series_id, value, scales)
        if dec is None:
            out += _FLOAT_ROW.pack(-1, -1, 8, value, -1)
        elif dec[2] is None:
            out += _DECIMAL_ROW.pack(8, dec[0], 2, dec[1], -1, -1)
        else:
            out += _RESIDUAL_ROW.pack(8, dec[0], 2, dec[1], -1, 8, dec[2])
    return bytes(out)


_SCALES: dict[str, dict[int, int]] = {}


def series_scales(conn: AsyncConnection[tuple[object, ...]]) -> dict[int, int]:
    """The scale state per series id (see EVIDENCE) this process writes a database's values
    with (any scale reads back exactly; it only steers compression). Bounded: cleared at a
    million series."""
    info = conn.info
    database = f"{info.host}:{info.port}/{info.dbname}"
    scales = _SCALES.setdefault(database, {})
    if len(scales) >= 1_000_000:
        scales.clear()
    return scales


async def decimal_layout(conn: AsyncConnection[tuple[object, ...]]) -> bool:
    """Whether the database stores points in vigil.points_data (TimescaleDB mode); asked
    once per database and process, again when the series-id cache's epoch changed (a
    database or schema created anew). Call after resolve_series (which checks the epoch)."""
    cache = _cache(conn)[0]
    if cache.decimal is None:
        cur = await conn.execute(QUERIES["points_layout"])
        row = await cur.fetchone()
        cache.decimal = bool(row and row[0])
    return cache.decimal


_ROW_COLUMNS = struct.Struct(">6xq4xq4xd")  # a COPY row: series_id, at (PostgreSQL us), value
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def point_columns(
    batch: Batch, copied_ids: list[int], ids: list[int]
) -> tuple[list[int], list[datetime], list[float]]:
    """The points of a batch as columns (series id, time, value) for vigil.put_points, after
    copy_parts wrote its rows with the series ids `copied_ids` (per key, as then resolved)
    and the keys now have `ids` (series created in a rolled-back transaction get new ones)."""
    if batch.rows is not None:  # copy_parts put copied_ids into the rows
        new_id = dict(zip(copied_ids, ids, strict=True))
        rows = list(_ROW_COLUMNS.iter_unpack(batch.rows))
        return (
            [new_id[r[0]] for r in rows],
            [_PG_EPOCH + timedelta(microseconds=r[1]) for r in rows],
            [r[2] for r in rows],
        )
    unix = datetime(1970, 1, 1, tzinfo=UTC)
    return (
        [ids[i] for i in batch.series],
        [unix + timedelta(microseconds=at) for at in batch.unix_at_us()],
        list(batch.values),
    )


async def write_batch(conn: AsyncConnection[tuple[object, ...]], batch: Batch) -> None:
    """Stores the accepted points of a batch in one transaction (series + COPY); series ids
    known to this process are not looked up again (SeriesIdCache).

    One point per series and time: when the batch holds a point already stored (a sender
    retrying a batch that was stored but not acknowledged) or holds one twice, the COPY
    fails on the unique (series_id, at) index and the batch is written again through
    vigil.put_points, which replaces such points (the last value wins)."""
    if not batch.accepted:
        return
    created: dict[tuple[str, str], int] = {}
    ids: list[int] = []
    try:
        async with conn.transaction():
            ids = await resolve_series(conn, batch, created)
            decimal = await decimal_layout(conn)
            query = QUERIES["points_copy_decimal"] if decimal else QUERIES["points_copy"]
            async with conn.cursor().copy(query) as copy:
                scales = series_scales(conn) if decimal else None
                for part in copy_parts(batch, ids, decimal, scales):
                    await copy.write(part)
    except UniqueViolation:
        created.clear()
        async with conn.transaction():
            fresh = await resolve_series(conn, batch, created)
            await conn.execute(QUERIES["points_put"], point_columns(batch, ids, fresh))
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
