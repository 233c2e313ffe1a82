"""parse_lines() (per-request caches of line heads and series names, inline batch add) gives
exactly the batch of the reference line-by-line parser it replaced, kept here verbatim."""

from __future__ import annotations

import random
import time

import pytest

import api.series.formats.influx
from api.series.formats.influx import PRECISIONS, LineError, _field_value, parse_line, parse_lines
from api.series.formats.points import Batch, PointError, check_at, check_value, labels_key, now_us


def reference_parse_lines(body: str, precision: str, now: int) -> Batch:
    """parse_lines as it was before its caches, with `now` given."""
    if precision not in PRECISIONS:
        raise PointError(f"precision must be one of ns, us, ms, s, m, h, not {precision!r}")
    mul, div = PRECISIONS[precision]
    batch = Batch()
    for number, raw in enumerate(body.split("\n"), start=1):
        line = raw.strip()
        if not line or line[0] == "#":
            continue
        try:
            measurement, tags, fields, timestamp = parse_line(line)
            at = now if not timestamp else check_at(int(timestamp) * mul // div, now)
            labels = labels_key(tags)
            values = [(key, _field_value(value)) for key, value in fields]
            for key, value in values:
                if value is not None:
                    name = f"{measurement}_{key}"
                    if len(name) > 255:
                        raise LineError("measurement_field is longer than 255 characters")
                    batch.add(name, labels, at, check_value(value))
        except (LineError, PointError) as exc:
            batch.reject(number, f"line {number}: {exc}")
        except ValueError:
            batch.reject(number, f"line {number}: invalid timestamp")
    return batch


NOW_NS = time.time_ns() - 60 * 10**9
TS = str(NOW_NS)
HEADS = [
    "cpu,host=a,cpu=cpu0",
    "cpu,cpu=cpu0,host=a",  # same labels, other order
    "cpu,host=a,host=b",  # duplicate tag key: the last wins
    "mem",
    "mem,host=a",
    "disk,path=/var\\ lib,host=a",  # escapes: the slow parser
    "disk,host=",  # tag without value
    "disk,=x",
    ",host=a",  # no measurement
    "m" * 250,
    "w\u00e9ird,h\u00f4st=\u00e9",
    "net," + ",".join(f"t{i}=v" for i in range(33)),  # too many labels
    "net,host=" + "v" * 300,  # label value too long
]
FIELDS = [
    "usage=1.5",
    "usage=1.5,idle=98.25",
    "used=123i,free=9u",
    "up=true,down=F,ok=TRUE",
    'msg="hello world",v=2',  # a quoted string field (slow parser)
    "v=nan",
    "v=inf",
    "v=1e400",
    "v=-0.0",
    "v=1_0",
    "v=",
    "=1",
    "v",
    "v=1,,w=2",
    "v=abc",
    "v=12ii",
    "verylongfieldname=1",
]
STAMPS = ["", TS, TS[:-3] + "999", "12x", "-5", str(NOW_NS + 3600 * 10**9), "0", TS + " extra"]


def _lines(rng: random.Random, n: int) -> list[str]:
    lines = []
    for _ in range(n):
        if rng.random() < 0.05:
            lines.append(rng.choice(["", "# comment", "   ", "garbage", "a b c d e"]))
            continue
        line = f"{rng.choice(HEADS)} {rng.choice(FIELDS)}"
        stamp = rng.choice(STAMPS)
        lines.append(f"{line} {stamp}" if stamp else line)
    return lines


@pytest.fixture(autouse=True)
def fixed_now(monkeypatch: pytest.MonkeyPatch) -> int:
    now = now_us()
    monkeypatch.setattr(api.series.formats.influx, "now_us", lambda: now)
    return now


def _same(a: Batch, b: Batch) -> None:
    assert (a.keys, a.series, a.at_us, a.values) == (b.keys, b.series, b.at_us, b.values)
    assert (a.rejected, a.errors) == (b.rejected, b.errors)


@pytest.mark.parametrize("seed", range(20))
def test_random_bodies_equal_reference(seed: int, fixed_now: int) -> None:
    rng = random.Random(seed)
    body = "\n".join(_lines(rng, 400))
    got, want = parse_lines(body, "ns"), reference_parse_lines(body, "ns", fixed_now)
    _same(got, want)
    assert want.accepted > 40 and want.rejected > 40  # both kinds well covered


@pytest.mark.parametrize("precision", ["", "n", "ns", "u", "us", "ms", "s", "m", "h"])
def test_precisions_equal_reference(precision: str, fixed_now: int) -> None:
    mul, div = PRECISIONS[precision]
    at = (NOW_NS // 1000) * div // mul
    body = "\n".join(f"cpu,host=a usage={i},idle=2i {at - i}" for i in range(50))
    _same(parse_lines(body, precision), reference_parse_lines(body, precision, fixed_now))


def test_errors_keep_line_numbers_and_order() -> None:
    body = f"cpu,host=a v=1 {TS}\ncpu,host=a v=x {TS}\ncpu,host=a v=1 zz\ncpu,host=a v=1 {TS}"
    batch = parse_lines(body, "ns")
    assert batch.accepted == 2
    assert batch.errors == [
        (2, "line 2: invalid field value 'x'"),
        (3, "line 3: invalid timestamp"),
    ]
