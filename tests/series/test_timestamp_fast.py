"""The whole-second timestamp fast path equals datetime.fromisoformat (the general path) for
every text it accepts, and refuses everything else."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from api.core.timestamps import PG_EPOCH_US
from api.series.formats.json import general_at_us, parse_json_batch, whole_second_pg_us

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ACCEPTED = [
    "1970-01-01T00:00:00Z",
    "1999-12-31T23:59:59Z",
    "2000-01-01T00:00:00Z",
    "2024-02-29T12:34:56Z",
    "2026-11-22T10:00:00Z",
    "2100-03-01T00:00:01Z",
    "0001-01-01T00:00:00Z",  # accepted here; the range check rejects it later
]
REFUSED = [
    "2026-02-29T00:00:00Z",  # no such day
    "2026-13-01T00:00:00Z",
    "2026-11-22T24:00:00Z",
    "2026-11-22T23:60:00Z",
    "2026-11-22T23:59:60Z",  # leap second: fromisoformat refuses it too
    "2026-11-22T10:00:00z",
    "2026-11-22t10:00:00Z",
    "2026-11-22 10:00:00Z",
    "2026-11-22T10:00:0.Z",
    "2026-11-22T1:00:00ZZ",
    "\uff12026-11-22T10:00:00Z",  # a full-width digit
    "2026-11-22T10:00:0\u0663Z",  # an Arabic-Indic digit
    "2026-11-22T10:00:00+00",
    "+026-11-22T10:00:00Z",
    "2026-11-22T10:00:00",
    "2026-11-22T10:00:00.1Z",
    "",
]


@pytest.mark.parametrize("text", ACCEPTED)
def test_accepted_equal_fromisoformat(text: str) -> None:
    assert whole_second_pg_us([text]) == general_at_us([text], 0, PG_EPOCH_US)


@pytest.mark.parametrize("text", REFUSED)
def test_refused(text: str) -> None:
    with pytest.raises((KeyError, ValueError)):
        whole_second_pg_us([text])


def test_random_seconds_equal_fromisoformat() -> None:
    rng = random.Random(6)
    base = datetime(1970, 1, 1, tzinfo=UTC)
    texts = [
        (base + timedelta(seconds=rng.randrange(0, 4_102_444_800))).strftime("%Y-%m-%dT%H:%M:%SZ")
        for _ in range(20_000)
    ]
    assert whole_second_pg_us(texts) == general_at_us(texts, 0, PG_EPOCH_US)  # type: ignore[arg-type]
    unix = general_at_us(texts, 0)  # type: ignore[arg-type]
    assert unix is not None
    assert [at + PG_EPOCH_US for at in whole_second_pg_us(texts)] == unix  # type: ignore[arg-type]


def test_mixed_batch_takes_the_general_path() -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    texts = [
        (now - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        (now - timedelta(minutes=4)).isoformat(),  # +00:00 offset
        (now - timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%S.123456789Z"),
    ]
    body = "[" + ",".join(f'{{"name":"a","value":1,"timestamp":"{t}"}}' for t in texts) + "]"
    batch = parse_json_batch(body.encode())
    assert batch.rejected == 0
    assert batch.unix_at_us() == [
        int((now - timedelta(minutes=m) - EPOCH).total_seconds()) * 1_000_000 + extra
        for m, extra in ((5, 0), (4, 0), (3, 123456))
    ]
