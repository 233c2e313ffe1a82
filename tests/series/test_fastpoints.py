"""The compiled decoder of batches (api/series/_fastpoints.c) equals the Python path.

For every body it takes, compiled_batch gives the same keys and byte for byte the same COPY
rows as python_json_batch (the reference that also explains rejections); every body it does
not take (None) is left to that path. Checked on listed cases, on numbers and timestamps
against msgspec / datetime, on thousands of random bodies mixing common and odd forms, and
through the API into PostgreSQL.
"""

from __future__ import annotations

import json
import math
import random
import struct
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import msgspec
import psycopg
import pytest

from api.series import _fastpoints
from api.series.formats import influx
from api.series.formats import json as series_json
from api.series.formats.json import compiled_batch, parse_json_batch, python_json_batch
from api.series.formats.points import ROW_SIZE, Batch, PointError
from api.series.store import by_series, copy_payload
from tests.conftest import ApiServer

T = TypeVar("T")
NOW_US = 1_795_000_000_000_000  # 2026-11-18T07:46:40Z: a fixed clock for "now" points
NOW = datetime.fromtimestamp(NOW_US / 1e6, UTC)
Conn = psycopg.Connection[Any]


@pytest.fixture
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both paths read the same 'now' for points without a timestamp."""
    monkeypatch.setattr(series_json, "now_us", lambda: NOW_US)
    monkeypatch.setattr(influx, "now_us", lambda: NOW_US)


def rows_by_key_index(batch: Batch) -> bytes:
    """The batch's COPY rows with each point's key index as its series id."""
    if batch.rows is not None:
        rows = bytearray(batch.rows)
        _fastpoints.set_series_ids(rows, batch.raw_keys)
        return bytes(rows)
    return copy_payload(batch.series, batch.at_us, batch.values, batch.at_base_us)[19:-2]


def outcome(parse: Callable[[], Batch]) -> tuple[Any, ...]:
    """What a parser made of a body: its keys, rows and summary, or its whole-body error."""
    try:
        batch = parse()
    except PointError as exc:
        return ("error", str(exc))
    return (batch.keys, rows_by_key_index(batch), batch.summary())


def assert_same_as_python(body: bytes) -> Batch | None:
    """compiled_batch of the body, after checking it against the Python path."""
    is_array = series_json._JSON_ARRAY.match(body) is not None
    fast = compiled_batch(body, ndjson=not is_array)
    reference = outcome(lambda: python_json_batch(body, is_array))
    if fast is not None:
        assert reference == outcome(lambda: fast), body
        assert reference[2]["rejected"] == 0
    assert outcome(lambda: parse_json_batch(body)) == reference
    return fast


P = b'{"name":"cpu","value":1.5,"timestamp":"2026-11-18T07:00:00Z"}'


def test_module_is_built() -> None:
    """make test builds it (pip install -e .; this file's import fails without it) and the
    API uses it: the benchmark figures depend on it."""
    assert _fastpoints.ROW_SIZE == ROW_SIZE == 38
    assert compiled_batch(b"[" + P + b"]", ndjson=False) is not None


TAKEN = [
    b"[" + P + b"]",
    b' \n[ {"name" : "cpu" , "value" : -0 , "timestamp" : "2026-11-18T07:00:00.123Z" } ]\r\n',
    b'[{"value":3e2,"name":"m\xc3\xa9m","labels":{"b":"2","a":"1"}},'
    b'{"name":"m\xc3\xa9m","value":1,"labels":{"a":"1","b":"2"},"timestamp":null},'
    b'{"name":"m\xc3\xa9m","value":1E-3,"labels":{ "a" : "1" , "b":"2"},"timestamp":""}]',
    b'[{"name":"x","value":1,"labels":null},{"name":"x","value":2,"labels":{}},'
    b'{"name":"x","value":3}]',
    b'[{"name":"unix","value":12345678901234567890,"timestamp":1795000000.25}]',
    b'[{"name":"unix","value":0.1,"timestamp":1795000000}]',
    b'[{"name":"frac","value":1,"timestamp":"2026-11-18T07:00:00.000001Z"}]',
    P + b"\n" + P,
    b"\n\r\n  " + P + b" \t\r\n\n" + P + b"\n",
    b'{"name":"a","value":1}\n{"name":"b","value":2,"labels":{"k":"v"}}',
    # Label texts go through the Python labels check (once per distinct text): last k wins.
    b'[{"name":"a","value":1,"labels":{"k":"v","k":"w"}}]',
]
DECLINED = [
    b"[]",
    b"",
    b"\x0b[" + P + b"]",
    b"[" + P + b"] x",
    b"[" + P + b",]",
    b"[" + P + P + b"]",
    b'[{"name":"a\\u00e9","value":1}]',  # escapes
    b'[{"name":"a","value":1,"labels":{"k":"v\\n"}}]',
    b'[{"name":"a","value":1,"extra":2}]',  # unknown key
    b'[{"name":"a","name":"b","value":1}]',  # repeated key
    b'[{"name":"","value":1}]',
    b'[{"name":"' + b"n" * 256 + b'","value":1}]',
    b'[{"name":"\xff","value":1}]',  # not UTF-8
    b'[{"name":"a\x01","value":1}]',
    b'[{"name":"a"}]',
    b'[{"value":1}]',
    b'[{"name":"a","value":"1"}]',
    b'[{"name":"a","value":true}]',
    b'[{"name":"a","value":1e400}]',
    b'[{"name":"a","value":01}]',
    b'[{"name":"a","value":1.}]',
    b'[{"name":"a","value":-}]',
    b'[{"name":"a","value":NaN}]',
    b'[{"name":"a","value":1,"labels":{"k":1}}]',
    b'[{"name":"a","value":1,"labels":{"k":{"x":"y"}}}]',
    b'[{"name":"a","value":1,"labels":["k"]}]',
    b'[{"name":"a","value":1,"timestamp":"2026-11-18T07:00:00+00:00"}]',
    b'[{"name":"a","value":1,"timestamp":"2026-11-18T07:00:00.1Z"}]',
    b'[{"name":"a","value":1,"timestamp":"2026-11-18T07:00:00"}]',
    b'[{"name":"a","value":1,"timestamp":"2026-02-29T07:00:00Z"}]',
    b'[{"name":"a","value":1,"timestamp":"2026-11-18T24:00:00Z"}]',
    b'[{"name":"a","value":1,"timestamp":"2026-11-18T07:00:60Z"}]',
    b'[{"name":"a","value":1,"timestamp":"1969-12-31T23:59:59Z"}]',  # range: Python says
    b'[{"name":"a","value":1,"timestamp":"2027-01-01T00:00:00Z"}]',
    b'[{"name":"a","value":1,"timestamp":1e300}]',
    b'[{"name":"a","value":1,"timestamp":true}]',
    b"[" + P + b",1]",
    P + b" " + P,  # NDJSON: two points on a line
    P + b"\n" + P[:-1],
    b'{"name":"a",\n"value":1}',
    b"[" + P + b"\n",
]


def taken_or_declined(taken: list[T], declined: list[T]) -> list[tuple[T, bool]]:
    """Parameters (body, taken): the compiled path takes the first bodies, leaves the others
    to the Python path; either way the result is the Python path's."""
    return [(body, True) for body in taken] + [(body, False) for body in declined]


@pytest.mark.parametrize(("body", "taken"), taken_or_declined(TAKEN, DECLINED))
@pytest.mark.usefixtures("fixed_clock")
def test_json_taken_or_declined_equal_python(body: bytes, taken: bool) -> None:
    assert (assert_same_as_python(body) is not None) == taken


def value_bits(text: bytes) -> bytes | None:
    fast = compiled_batch(b'[{"name":"v","value":' + text + b"}]", ndjson=False)
    return None if fast is None or fast.rows is None else bytes(fast.rows[30:38])


def test_numbers_equal_msgspec() -> None:
    rng = random.Random(61)
    texts = [b"0", b"-0", b"-0.0", b"-0e5", b"-0.000e-3", b"5", b"0.1", b"1e22", b"1e23"]
    texts += [b"-1", b"-7", b"9007199254740993", b"2.5e-324", b"4.9406564584124654e-324"]
    texts += [b"179769313486231570000000000000000000000000000000000000000000000000000000e235"]
    for _ in range(4000):
        kind = rng.randrange(4)
        if kind == 0:
            x = struct.unpack("<d", rng.randbytes(8))[0]
            if not math.isfinite(x):
                continue
            texts.append(repr(x).encode())
        elif kind == 1:
            digits = "".join(rng.choice("0123456789") for _ in range(rng.randrange(1, 25)))
            texts.append(str(int(digits)).encode())
        elif kind == 2:
            whole = rng.randrange(10 ** rng.randrange(1, 12))
            frac = "".join(rng.choice("0123456789") for _ in range(rng.randrange(1, 20)))
            texts.append(f"{'-' if rng.random() < 0.5 else ''}{whole}.{frac}".encode())
        else:
            mant = rng.randrange(1, 10 ** rng.randrange(1, 20))
            texts.append(f"{mant}e{rng.choice('+-')}{rng.randrange(0, 40)}".encode())
    taken = 0
    for text in texts:
        bits = value_bits(text)
        expected = msgspec.json.decode(text, type=float)
        assert expected == float(text)
        if bits is None:
            assert not math.isfinite(expected), text
            continue
        taken += 1
        assert bits == struct.pack(">d", expected), text
    assert taken > 3900


@pytest.mark.usefixtures("fixed_clock")
def test_timestamps_equal_fromisoformat() -> None:
    rng = random.Random(62)
    base = datetime(1970, 1, 1, tzinfo=UTC)
    for _ in range(3000):
        at = base + timedelta(microseconds=rng.randrange(0, NOW_US))
        text = at.strftime("%Y-%m-%dT%H:%M:%S")
        text += rng.choice(["", f".{at.microsecond // 1000:03d}", f".{at.microsecond:06d}"]) + "Z"
        number = at.timestamp() if rng.random() < 0.3 else text
        fast = assert_same_as_python(
            json.dumps([{"name": "t", "value": 1, "timestamp": number}]).encode()
        )
        assert fast is not None, text


def random_point(rng: random.Random) -> dict[str, Any] | str:
    names = ["cpu", "disk.used", "m\u00e9m", 'a"b', "n" * 255, "n" * 256, "", "\u2603", "x\ny"]
    labels = [None, {}, {"host": "h1"}, {"b": "2", "a": "1"}, {"a": "1", "b": "2"},
              {"k": "v\\"}, {"k": 1}, {f"k{i}": "v" for i in range(33)}]  # fmt: skip
    stamps = [
        None, "", "2026-11-18T07:00:00Z", "2026-11-18T07:00:00.250Z", "2026-11-18T07:00:00.5Z",
        "2026-11-18T08:00:00+01:00", "1999-12-31T23:59:59.999999Z", "2026-11-18 07:00:00Z",
        "2026-13-01T00:00:00Z", 1795000000, 1795000000.123456, -1.0, "soon",
    ]  # fmt: skip
    values: list[Any] = [0, -0.0, 1.5, 1e-310, 1.7976931348623157e308, 123456789012345678, "1"]
    point: dict[str, Any] = {}
    fields = ["name", "value", "timestamp", "labels"]
    rng.shuffle(fields)
    for f in fields:
        roll = rng.random()
        # Mostly the common forms, now and then anything (odd, invalid or missing).
        if f == "name" and roll < 0.99:
            point[f] = rng.choice(names[:3]) if roll < 0.97 else rng.choice(names)
        elif f == "value" and roll < 0.99:
            point[f] = rng.uniform(-1e6, 1e6) if roll < 0.9 else rng.choice(values)
        elif f == "timestamp" and roll < 0.9:
            point[f] = rng.choice(stamps[:4]) if roll < 0.85 else rng.choice(stamps)
        elif f == "labels" and roll < 0.7:
            point[f] = rng.choice(labels[:5]) if roll < 0.67 else rng.choice(labels)
    if rng.random() < 0.005:
        point["other"] = 1
    return point if rng.random() < 0.998 else "not a point"


@pytest.mark.usefixtures("fixed_clock")
def test_random_bodies_equal_python() -> None:
    rng = random.Random(63)
    taken = 0
    for _ in range(1500):
        points = [random_point(rng) for _ in range(rng.randrange(1, 8))]
        spaced = rng.random() < 0.3
        separators = (", ", ": ") if spaced else (",", ":")
        items = [json.dumps(p, separators=separators, ensure_ascii=False) for p in points]
        if rng.random() < 0.5:
            body = "[" + (",\n " if spaced else ",").join(items) + "]"
        else:
            body = ("\n\n" if spaced else "\n").join(items)
        taken += assert_same_as_python(body.encode()) is not None
    assert taken > 600  # the common forms are taken, so the comparison is not vacuous


@pytest.mark.usefixtures("fixed_clock")
def test_many_series_and_long_batches() -> None:
    points = [
        {
            "name": f"s{i % 3000}",
            "labels": {"host": f"h{i % 3000 % 7}"},
            "value": i,
            "timestamp": None,
        }
        for i in range(20_000)
    ]
    fast = assert_same_as_python(json.dumps(points).encode())
    assert fast is not None and len(fast.keys) == 3000 and fast.accepted == 20_000


def test_set_series_ids_checks_its_input() -> None:
    fast = compiled_batch(b"[" + P + b"]", ndjson=False)
    assert fast is not None and fast.rows is not None
    with pytest.raises(ValueError, match="no id"):
        _fastpoints.set_series_ids(bytearray(fast.rows), [])
    with pytest.raises(ValueError, match="whole COPY rows"):
        _fastpoints.set_series_ids(fast.rows + b"x", [1])
    rows = bytearray(fast.rows)
    _fastpoints.set_series_ids(rows, [2**40])
    assert struct.unpack(">q", rows[6:14]) == (2**40,)


def test_sort_rows_orders_by_series_then_time_keeping_ties() -> None:
    """The compiled sort gives the rows in the order of the Python path's by_series:
    (series_id, at), equal keys as they came (values tell them apart), negative times too."""
    rng = random.Random(7)
    series = [rng.choice([1, 2, 3, 2**40, 12]) for _ in range(3000)]
    at_us = [rng.choice([-5_000_000, 0, 1_000_000, 2_000_000, NOW_US]) for _ in range(3000)]
    values = [float(i) for i in range(3000)]  # the arrival order, to check stability
    payload = copy_payload(series, at_us, values)
    rows = bytearray(payload[19:-2])
    _fastpoints.sort_rows(rows)
    expected = copy_payload(*by_series(series, at_us, values))[19:-2]
    assert bytes(rows) == expected
    assert expected != payload[19:-2]  # it did reorder
    ordered = bytearray(expected)
    _fastpoints.sort_rows(ordered)  # already in order: unchanged
    assert bytes(ordered) == expected
    empty = bytearray()
    _fastpoints.sort_rows(empty)
    with pytest.raises(ValueError, match="whole COPY rows"):
        _fastpoints.sort_rows(bytearray(expected) + b"x")


def test_api_stores_compiled_batches(api: ApiServer, token: str, conn: Conn) -> None:
    """Through HTTP into PostgreSQL: exact times, values and series identity."""
    now = datetime.now(UTC).replace(microsecond=0)
    stamps = [now - timedelta(seconds=10 * i, microseconds=123_000 * (i % 2)) for i in range(50)]
    points = [
        {
            "name": "fast",
            "labels": {"host": "a", "dc": "x"} if i % 2 else {"dc": "x", "host": "a"},
            "timestamp": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "value": i / 7,
        }
        for i, at in enumerate(stamps)
    ]
    body = json.dumps(points).encode()
    assert compiled_batch(body, ndjson=False) is not None
    r = httpx.post(
        f"{api.url}/v1/metrics/batch", content=body, headers={"authorization": f"Bearer {token}"}
    )
    assert r.json() == {"accepted": 50, "rejected": 0, "errors": []}
    rows = conn.execute(
        "select s.name, s.labels, p.at, p.value from vigil.points p"
        " join vigil.series s on s.id = p.series_id order by p.at desc"
    ).fetchall()
    assert rows == [("fast", {"dc": "x", "host": "a"}, at, i / 7) for i, at in enumerate(stamps)]


@pytest.mark.usefixtures("fixed_clock")
def test_mutated_bodies_equal_python() -> None:
    """Valid bodies with a few bytes flipped, cut or repeated: whatever the compiled decoder
    takes still equals the Python path (and nothing crashes on the way)."""
    rng = random.Random(64)
    seeds = [b for b in TAKEN if b.lstrip().startswith(b"[")] + [b"[" + P + b"," + P + b"]"]
    alphabet = b' \t\n\r"{}[],:.-+eE0123456789\\\x00\xff\xc3nulltrueZT'
    taken = 0
    for _ in range(3000):
        body = bytearray(rng.choice(seeds))
        for _ in range(rng.randrange(1, 4)):
            at = rng.randrange(len(body))
            kind = rng.randrange(3)
            if kind == 0:
                body[at] = rng.choice(alphabet)
            elif kind == 1:
                del body[at : at + rng.randrange(1, 4)]
            else:
                body[at:at] = body[at : at + rng.randrange(1, 6)]
        taken += assert_same_as_python(bytes(body)) is not None
    assert taken > 100


# ---- InfluxDB line protocol: compiled_lines equals parse_lines ----

TS_NS = NOW_US * 1000 - 60 * 10**9


def same_lines_as_python(body: str, precision: str = "ns") -> Batch | None:
    """compiled_lines of the body, after checking it against parse_lines."""
    fast = influx.compiled_lines(body.encode(), precision)
    reference = outcome(lambda: influx.parse_lines(body, precision))
    if fast is not None:
        assert reference == outcome(lambda: fast), body
        assert reference[2]["rejected"] == 0
    assert outcome(lambda: influx.parse_body(body.encode(), precision)) == reference
    return fast


LINES_TAKEN = [
    f"cpu,host=web-1,cpu=cpu-total usage_idle=99.5,usage_user=0.25 {TS_NS}",
    f'mem,host=web-1 used=123i,available_percent=40.5,ok=true,note="a b, c=d" {TS_NS}\n'
    f"# a comment\n\n  disk,path=/var used_percent=91,free=7u,x=-0,y=-0.0,z=-5i \r\n"
    f"swap in=F,out=TRUE {TS_NS}",
    f"cpu,b=2,a=1 v=1 {TS_NS}\ncpu,a=1,b=2 v=2 {TS_NS}\ncpu,a=1,a=3 v=3 {TS_NS}",
    f'cpu,host=a only="strings" {TS_NS}\ncpu,host=a v=1e3',
]
LINES_DECLINED = [
    "",
    "# only a comment",
    f'cpu,host=a only="strings" {TS_NS}',  # no numbers: nothing to take
    f"cpu,host=a\\ b v=1 {TS_NS}",
    f"cpu,h\u00f4st=a v=1 {TS_NS}",
    f"cpu,host=a v=1  {TS_NS}",  # two spaces inside
    f"cpu, v=1 {TS_NS}",
    f"cpu,host= v=1 {TS_NS}",
    f"cpu,host v=1 {TS_NS}",
    f"cpu v=1_0 {TS_NS}",
    f"cpu v=inf {TS_NS}",
    f"cpu v=.5 {TS_NS}",
    f"cpu v=1 +{TS_NS}",
    f"cpu v=1 {TS_NS}0",  # far future
    "cpu v=1 -5",
    f"cpu v=1,{TS_NS}",
    f"cpu v=1, {TS_NS}",
    f"cpu =1 {TS_NS}",
    f'cpu v="open {TS_NS}',
    f"{'m' * 250} value=1 {TS_NS}",
    f"cpu v=1 {TS_NS}\ncpu v=x {TS_NS}",
]


@pytest.mark.parametrize(("body", "taken"), taken_or_declined(LINES_TAKEN, LINES_DECLINED))
@pytest.mark.usefixtures("fixed_clock")
def test_lines_taken_or_declined_equal_python(body: str, taken: bool) -> None:
    assert (same_lines_as_python(body) is not None) == taken


@pytest.mark.parametrize("precision", ["", "n", "ns", "u", "us", "ms", "s", "m", "h"])
@pytest.mark.usefixtures("fixed_clock")
def test_lines_precisions_equal_python(precision: str) -> None:
    mul, div = influx.PRECISIONS[precision]
    at = (NOW_US - 7_200_000_000) * div // mul
    body = "\n".join(f"cpu,host=a usage={i},idle=2i {at - i}" for i in range(50))
    assert same_lines_as_python(body, precision) is not None
    assert influx.compiled_lines(body.encode(), "weeks") is None


def test_random_lines_equal_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """The random lines of test_influx_fast (valid and invalid ones), a few per body."""
    from tests.series import test_influx_fast as lines

    now = lines.NOW_NS // 1000 + 1_000_000  # its timestamps are about now
    monkeypatch.setattr(influx, "now_us", lambda: now)
    rng = random.Random(65)
    taken = 0
    for _ in range(3000):
        taken += same_lines_as_python("\n".join(lines._lines(rng, rng.randrange(1, 3)))) is not None
    assert taken > 120  # its generator makes mostly odd lines: these are the plain ones
