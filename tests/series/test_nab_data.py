"""The NAB series the series tests read (tests/support/datasets.py): the real files from
../shared/data/nab when present, else generated ones. The generated files must have the
real files' shape (recorded in datasets.NAB_SHAPES, and checked against the real files
where they are here), so a clone without the data tests the same things."""

from __future__ import annotations

import itertools
import statistics
from datetime import datetime
from pathlib import Path

import pytest

from tests.support import datasets

FILES = sorted(datasets.NAB_SHAPES)


def summary(text: str) -> tuple[str, int, datetime, float, float, float, float, float]:
    """Header, rows, first timestamp, usual interval (s), min, max, mean, stdev."""
    series = datasets.parse_nab_csv(text)
    steps = [(b[0] - a[0]).total_seconds() for a, b in itertools.pairwise(series)]
    values = [v for _, v in series]
    return (
        text.split("\n", 1)[0],
        len(series),
        series[0][0].replace(tzinfo=None),
        statistics.mode(steps),
        min(values),
        max(values),
        statistics.mean(values),
        statistics.pstdev(values),
    )


def head(shape: datasets.NabShape) -> tuple[str, int, datetime, float]:
    """The start of summary() for a file of that shape: header, rows, first timestamp and
    usual interval (s)."""
    return ("timestamp,value", shape.rows, shape.start, shape.step.total_seconds())


@pytest.mark.parametrize("file", FILES)
def test_generated_file_has_the_real_files_shape(file: str) -> None:
    shape = datasets.NAB_SHAPES[file]
    text = datasets.generated_nab_csv(file)
    assert text == datasets.generated_nab_csv(file)  # the same bytes on every run
    header, rows, first, step, low, high, mean, stdev = summary(text)
    assert (header, rows, first, step) == head(shape)
    assert shape.low <= low and high <= shape.high
    assert mean == pytest.approx(shape.mean, rel=0.25)
    assert 0.5 < stdev / shape.stdev < 2
    series = datasets.parse_nab_csv(text)
    assert len({v for _, v in series}) > shape.rows // 20  # not a constant or a short cycle
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(series) if b[0] - a[0] != shape.step]
    assert gaps == [2 * shape.step] * shape.gaps


@pytest.mark.parametrize("file", FILES)
def test_recorded_shape_is_the_real_files(file: str) -> None:
    """NAB_SHAPES describes the real file (where it is here: else the generated file
    stands in and must at least parse to the recorded row count and start)."""
    shape = datasets.NAB_SHAPES[file]
    text, real = datasets.nab_csv(file)
    header, rows, first, step, low, high, mean, stdev = summary(text)
    assert (header, rows, first, step) == head(shape)
    if real:
        assert (low, high) == (shape.low, shape.high)
        assert (mean, stdev) == pytest.approx((shape.mean, shape.stdev), rel=1e-5)


def test_the_readers_fall_back_to_generated_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no data beside the checkout, nab_series gives the generated series."""
    monkeypatch.setenv(datasets.SHARED_DATA_ENV, str(tmp_path))
    for file in FILES:
        text, real = datasets.nab_csv(file)
        assert (text, real) == (datasets.generated_nab_csv(file), False)
        assert datasets.nab_series(file) == datasets.parse_nab_csv(text)
    assert datasets.describe() == f"generated data (no {tmp_path}/nab)"
