"""The NDJSON fast path (clean_ndjson: lines decoded one by one, then the column-wise path of
JSON arrays) gives exactly the batch of the line-by-line reference parser, or steps aside
(None) when any line is not a valid point."""

from __future__ import annotations

import pytest

from api.series.formats.json import clean_ndjson, parse_json_batch, parse_ndjson_lines
from api.series.formats.points import Batch

P1 = b'{"name":"cpu","value":1.5,"timestamp":"2026-01-02T03:04:05.123456789Z"}'
P2 = b'{"name":"cpu","labels":{"b":"2","a":"1"},"value":-2,"timestamp":1767323045.25}'
P3 = (
    b'{"labels":{"a":"1","b":"2"},"name":"cpu","value":3e2,"timestamp":"2026-01-02T04:04:05+01:00"}'
)
P4 = b'{"name":"m\\u00e9m","value":0,"timestamp":"2026-01-02T03:04:05.1Z"}'
P5 = b'{"name":"cpu","value":1,"timestamp":"2026-01-02T03:04:05z"}'  # rfc3339 fallback

VALID = [
    [P1],
    [P1, P2, P3, P4],
    [b"", P1, b"   ", b"\t", P2, b""],
    [b"  " + P1 + b" \t\r", b"\r", P2 + b"\r"],
    [P1, b"\x0c", P2],  # bytes.strip() blank line: skipped by both
    [P3, P3, P1, P3],
]

# Lines that are not one JSON value each, or invalid points: the fast path must step aside.
TRICKY = [
    [P1, P5, P2],
    [P1 + b"," + P2, b'{"name":"x","value":1', b'"timestamp":"2026-01-02T03:04:05Z"}'],
    [P1 + b"," + P2],
    [b"[" + P1, P2 + b"]"],
    [P1, b'{"name":"x"', b',"value":1,"timestamp":"2026-01-02T03:04:05Z"}'],
    [P1, b'{"name":"","value":1}'],
    [P1, b'{"name":"x","value":"1"}'],
    [P1, b'{"name":"x","value":1,"timestamp":"2026-01-02T03:04:05"}'],
    [P1, b'{"name":"x","value":1,"labels":{"a":1}}'],
    [P1, b"not json"],
    [P1, b"\x0b" + P2],
    [P1, b"[]"],
    [b"", b" "],
]


def _same(a: Batch, b: Batch) -> None:
    assert (a.keys, a.series, a.values) == (b.keys, b.series, b.values)
    assert a.unix_at_us() == b.unix_at_us()
    assert (a.rejected, a.errors) == (b.rejected, b.errors)


@pytest.mark.parametrize("lines", VALID)
def test_fast_path_equals_line_parser(lines: list[bytes]) -> None:
    fast = clean_ndjson(lines)
    assert fast is not None
    assert fast.accepted == sum(1 for line in lines if line.strip())
    _same(fast, parse_ndjson_lines(lines))
    _same(parse_json_batch(b"\n".join(lines)), parse_ndjson_lines(lines))


@pytest.mark.parametrize("lines", TRICKY)
def test_fast_path_steps_aside(lines: list[bytes]) -> None:
    assert clean_ndjson(lines) is None
    if lines[0].startswith(b"["):
        return  # a body starting with [ is a JSON array, not NDJSON
    _same(parse_json_batch(b"\n".join(lines)), parse_ndjson_lines(lines))


def test_lines_never_merge() -> None:
    """A point split over two lines is two rejections, not one point."""
    batch = parse_json_batch(TRICKY[4][1] + b"\n" + TRICKY[4][2])
    assert (batch.accepted, batch.rejected) == (0, 2)
