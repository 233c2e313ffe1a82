"""Values stored as decimals (TimescaleDB mode, vigil.points_data): the compiled encoder, the
Python one and SQL's vigil._decimal_encode agree on every value, a series' values share one
scale, and every stored value reads back as the identical float8 (portable lane: the
functions exist in both modes)."""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import struct
import time
from typing import Any

import psycopg
import pytest

from api.core import pgcopy
from api.series import _fastpoints, store
from api.series.formats.influx import parse_lines
from api.series.store import (
    MAX_SCALE,
    copy_payload,
    decimal_rows,
    scaled_decimal,
    series_scale,
    to_decimal,
)
from tests.series import cases

VALUES = [
    0.0, -0.0, 0.1, -5.5, 91.958, 1 / 3, 1e300, -1e-300, 5e-324, 1e-7, 3.14159265358979,
    123456789.123, 2.0**53, 2.0**53 - 1, 2.0**60, 1e15, 1e16, 0.30000000000000004,
    math.inf, -math.inf, math.nan, 12.5, 99.99999999999999,
    9007199254740.0,  # series 2 at scale 3 (123456789.123): m * 1000 just under 2^53
]  # fmt: skip


def all_values() -> list[float]:
    return VALUES + [v for _, v in cases.nab_series("rds_cpu_utilization_cc0c53.csv")]


def test_to_decimal_reads_back_exactly() -> None:
    for v in all_values():
        dec = to_decimal(v)
        if dec is None:
            continue
        m, e = dec
        assert abs(m) < 2**53 and 0 <= e <= 15
        assert m / 10.0**e == v and math.copysign(1.0, m / 10.0**e) == math.copysign(1.0, v)
        assert e == 0 or m % 10 != 0  # the smallest e
    assert to_decimal(91.958) == (91958, 3)
    assert to_decimal(1 / 3) is None and to_decimal(-0.0) is None
    assert to_decimal(math.nan) is None and to_decimal(2.0**60) is None


def test_compiled_rows_equal_python_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    values = all_values()
    series = [i % 3 for i in range(len(values))]
    payload = copy_payload(series, [1_000_000 * i for i in range(len(values))], values)
    rows = payload[len(pgcopy.HEADER) : len(payload) - len(pgcopy.TRAILER)]
    compiled_scales = {7: 2, 1: 1}
    compiled = _fastpoints.decimal_rows(rows, compiled_scales)
    assert decimal_rows(rows, {7: 2, 1: 1}) == compiled  # the compiled path, where built
    monkeypatch.setattr(store, "fastpoints", None)
    python_scales = {7: 2, 1: 1}
    assert decimal_rows(rows, python_scales) == compiled
    assert compiled_scales == python_scales and compiled_scales[7] == 2 and len(python_scales) == 4
    assert max(series_scale(s) for s in python_scales.values()) <= MAX_SCALE


def nab_mix(seed: int, n: int) -> tuple[list[int], list[float]]:
    """n points of 8 series cycling through the NAB files (rare longer decimals, float noise)
    with odd values mixed in, in batch order (series interleaved)."""
    files = ("ec2_cpu_utilization_825cc2.csv", "rds_cpu_utilization_cc0c53.csv")
    nab = [[v for _, v in cases.nab_series(f)] for f in files]
    odd = [0.0, -0.0, 1 / 3, 1e300, math.nan, math.inf, 2.0**53, 1e15, 0.1234567, 12.34567,
           94.79799999999999, 1e-7, 5e-324, 1.5, 123456.7]  # fmt: skip
    rng = random.Random(seed)
    series, values = [], []
    for i in range(n):
        s = rng.randrange(8)
        series.append(s)
        if rng.random() < 0.05:
            values.append(rng.choice(odd))
        else:
            vals = nab[s % 2]
            values.append(vals[(i * 7 + seed) % len(vals)])
    return series, values


@pytest.mark.parametrize("seed", range(6))
def test_compiled_scale_states_equal_python_ones(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over long mixed batches, with states carried from batch to batch (fresh, bare scales,
    counters, garbage), the compiled and the Python encoder write the same rows and leave
    the same state per series; every row reads back as the value sent."""
    series, values = nab_mix(seed, 12_000)
    start = {} if seed % 2 else {0: 3, 1: 0, 2: 6, 3: 5 | 700 << 3 | 3000 << 23, 4: -5, 5: 7}
    compiled_scales, python_scales = dict(start), dict(start)
    for lo in range(0, len(values), 4000):  # three batches, the state carried over
        part = copy_payload(series[lo : lo + 4000], list(range(4000)), values[lo : lo + 4000])
        rows = part[len(pgcopy.HEADER) : len(part) - len(pgcopy.TRAILER)]
        compiled = _fastpoints.decimal_rows(rows, compiled_scales)
        monkeypatch.setattr(store, "fastpoints", None)
        assert decimal_rows(rows, python_scales) == compiled
        monkeypatch.setattr(store, "fastpoints", _fastpoints)
        assert compiled_scales == python_scales
        assert read_rows(compiled) == [
            v if not math.isnan(v) else "nan" for v in values[lo : lo + 4000]
        ]
    assert {s: series_scale(v) for s, v in python_scales.items() if s < 8 and s % 2} == {
        1: 4, 3: 4, 5: 4, 7: 4
    }  # rds_cpu's values: a sixth of them (real) or most (generated) need 4 digits  # fmt: skip


def read_rows(rows: bytes) -> list[float | str]:
    """The values of vigil.points_data COPY rows as vigil._decimal computes them (NaN as
    "nan", to compare)."""
    out: list[float | str] = []
    off = 0
    while off < len(rows):
        off += 2 + 12 + 12  # field count, series_id, at
        fields: list[bytes | None] = []
        for _ in range(4):
            (size,) = struct.unpack_from(">i", rows, off)
            off += 4
            fields.append(None if size < 0 else rows[off : off + size])
            off += max(size, 0)
        m, e, f, r = fields
        if f is not None:
            (v,) = struct.unpack(">d", f)
        else:
            assert m is not None and e is not None
            v = struct.unpack(">q", m)[0] / 10.0 ** struct.unpack(">h", e)[0]
            v += struct.unpack(">d", r)[0] if r is not None else 0.0
        out.append("nan" if math.isnan(v) else v)
    return out


def test_a_series_keeps_the_scale_its_values_usually_need() -> None:
    """The values of a series are written with one e, the digits they usually need: m moves
    smoothly instead of jumping by powers of ten when a value has fewer digits, and a rare
    value with more digits is written at its own e without raising the scale for the values
    after it."""
    scales: dict[int, int] = {}
    got = [scaled_decimal(1, v, scales) for v in (91.958, 92.0, 5.5, 91.9583, 91.95, 0.1234567)]
    assert got == [
        (91958, 3, None), (92000, 3, None), (5500, 3, None), (919583, 4, None),
        (91950, 3, None), None,
    ]  # fmt: skip
    assert series_scale(scales[1]) == 3
    assert [scaled_decimal(2, v, scales) for v in (1e15, 2.5)] == [
        (10**15, 0, None), (25, 1, None)
    ]  # fmt: skip
    assert scaled_decimal(2, 1e15, scales) == (10**15, 0, None)
    assert series_scale(scales[2]) == 0


def test_the_scale_rises_when_more_digits_are_usual_and_falls_when_unused() -> None:
    scales: dict[int, int] = {}
    for _ in range(100):
        scaled_decimal(1, 91.95, scales)
    assert series_scale(scales[1]) == 2
    # One value in five needs 4 digits: the scale rises within a few of them.
    got = [scaled_decimal(1, 91.9583 if i % 5 == 0 else 91.958, scales) for i in range(60)]
    assert series_scale(scales[1]) == 4
    assert got[-1] == (919580, 4, None) and got[0] == (919583, 4, None)
    assert got[1] == (91958, 3, None)  # before the rise: its own e, above the scale
    # Now only whole numbers: the scale falls one digit at a time, to 0, and stays there.
    scales_seen = set()
    for _ in range(5000):
        scaled_decimal(1, 92.0, scales)
        scales_seen.add(series_scale(scales[1]))
    assert series_scale(scales[1]) == 0 and scales_seen == {0, 1, 2, 3, 4}
    # Rare longer decimals (every 200th value, like NAB's ec2_cpu) never raise it.
    for i in range(4000):
        scaled_decimal(1, 92.25 if i % 200 == 7 else 92.0, scales)
        assert series_scale(scales[1]) == 0


@pytest.mark.parametrize(
    ("file", "scales"),
    [("ec2_cpu_utilization_825cc2.csv", {3}), ("rds_cpu_utilization_cc0c53.csv", {3, 4}),
     ("nyc_taxi.csv", {0})],
)  # fmt: skip
def test_nab_series_keep_their_usual_digits(file: str, scales: set[int]) -> None:
    """A NAB series written twice over (its values cycled): the scale follows the digits
    most of its recent values need, never the rare longest (ec2_cpu: 3, though 5 values have
    4; rds_cpu: 4 where a sixth of the values have 4 digits, 3 in its stretches without
    them, never 5, which one value has), and changes seldom."""
    values = [v for _, v in cases.nab_series(file)]
    state: dict[int, int] = {}
    seen = []
    for v in values + values:
        got = scaled_decimal(1, v, state)
        seen.append(series_scale(state[1]))
        assert got is None or got[0] / 10.0 ** got[1] + (got[2] or 0.0) == v
    second = seen[len(values) :]
    assert set(second) <= scales and max(scales) in second
    assert sum(a != b for a, b in itertools.pairwise(second)) <= 4


def test_float_noise_is_a_decimal_and_an_exact_residual() -> None:
    """94.79799999999999 (17 digits, one unit in the last place from 94.798): stored as
    94798 / 10^3 and the residual, which adds back exactly; zero and far values stay floats."""
    scales = {1: 3}
    noise = 94.79799999999999
    got = scaled_decimal(1, noise, scales)
    assert got is not None and got[:2] == (94798, 3) and got[2] is not None
    assert got[0] / 10.0**3 + got[2] == noise and got[2] != 0
    assert series_scale(scales[1]) == 3
    # Below the digits the noise needs: the fewest that fit, the scale unchanged.
    scales = {1: 1}
    got = scaled_decimal(1, noise, scales)
    assert got is not None and got[:2] == (94798, 3) and got[2] is not None
    assert got[0] / 10.0**3 + got[2] == noise and series_scale(scales[1]) == 1
    scales = {1: 3}
    for v in (93.72200000000001, 0.30000000000000004, -7.1000000000000005):
        got = scaled_decimal(1, v, scales)
        assert got is not None and got[0] / 10.0 ** got[1] + (got[2] or 0.0) == v
    assert scaled_decimal(1, 1 / 3, scales) is None
    assert scaled_decimal(1, -0.0, scales) is None


def test_sql_encoder_agrees_and_copy_reads_back(conn: psycopg.Connection[Any]) -> None:
    values = [v for v in all_values() if not math.isnan(v)]
    got = conn.execute(
        "select (d).m, (d).e, (d).f from unnest(%s::float8[]) with ordinality as u (v, i)"
        " cross join lateral (select vigil._decimal_encode(u.v) as d) x order by u.i",
        (values,),
    ).fetchall()
    for v, (m, e, f) in zip(values, got, strict=True):
        dec = to_decimal(v)
        assert (m, e) == (dec if dec else (None, None)), v
        assert (f is None) == (dec is not None), v
    # The API's rows COPYed into a table of vigil.points_data's columns read back the same.
    conn.execute(
        "create temp table d (series_id bigint, at timestamptz, m bigint, e smallint, f float8,"
        " r float8)"
    )
    payload = copy_payload(list(range(len(values))), [1_000_000 * i for i in range(len(values))],
                           values)  # fmt: skip
    rows = decimal_rows(payload[len(pgcopy.HEADER) : len(payload) - len(pgcopy.TRAILER)], {})
    with conn.cursor().copy("copy d from stdin (format binary)") as copy:
        copy.write(pgcopy.HEADER + rows + pgcopy.TRAILER)
    back = conn.execute(
        "select float8send(vigil._decimal(m, e, f, r)) from d order by series_id"
    ).fetchall()
    assert [bytes(r[0]) for r in back] == [struct.pack(">d", v) for v in values]


def test_api_batch_copies_encoded_rows_where_points_are_decimal(dsn: str) -> None:
    """store.write_batch on a database with vigil.points_data (TimescaleDB mode's layout; the
    test lane's server has no COPY, so its columns are made here as a plain table): the
    batch is COPYed there encoded, one scale per series, and reads back identical."""
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(
            "create table vigil.points_data (series_id bigint not null,"
            " at timestamptz not null, m bigint, e smallint, f double precision,"
            " r double precision)"
        )
    now_s = int(time.time())
    sent = [
        ("web", 92.0), ("web", 91.958), ("web", 1 / 3), ("web", 94.79799999999999),
        ("db", 5.5), ("db", 1e300),
    ]  # fmt: skip
    body = "\n".join(f"cpu,host={h} usage={v!r} {now_s - 100 + i}" for i, (h, v) in enumerate(sent))
    batch = parse_lines(body, "s")
    assert batch.accepted == len(sent)
    store._CACHES.clear()

    async def write() -> None:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as ac:
            await store.write_batch(ac, batch)

    try:
        asyncio.run(write())
    finally:
        store._CACHES.clear()  # the next database of that name may be portable
    with psycopg.connect(dsn, autocommit=True) as c:
        rows = c.execute(
            "select s.labels ->> 'host', p.m, p.e, vigil._decimal(p.m, p.e, p.f, p.r)"
            "  from vigil.points_data p join vigil.series s on s.id = p.series_id order by p.at"
        ).fetchall()
        assert c.execute("select count(*) from vigil.points").fetchone() == (0,)
    assert [(r[0], r[3]) for r in rows] == sent
    assert [(r[1], r[2]) for r in rows] == [
        (92, 0),
        (91958, 3),
        (None, None),
        (94798, 3),
        (55, 1),
        (None, None),
    ]
