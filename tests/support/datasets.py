"""Real data sets for tests, or generated data of the same shape when they are absent.

The real data lives beside the checkout in ``../shared/data`` (see its README); a user's
clone may not have it. A test that reads it must run either way, so every reader here
returns the real file when it is there and, otherwise, a generated one of the same shape:
the same columns and text format, the same number of rows and sampling interval, values in
the same ranges, from a fixed seed (the same bytes on every run).

``VIGIL_SHARED_DATA`` overrides where the data is looked for; point it at an empty folder to
run the suite as a clone without the data does (``VIGIL_SHARED_DATA=/nonexistent pytest``).
"""

from __future__ import annotations

import csv
import io
import math
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from vigil import PROJECT_ROOT

SHARED_DATA_ENV = "VIGIL_SHARED_DATA"


def shared_data_dir() -> Path:
    """``$VIGIL_SHARED_DATA``, else ``../shared/data`` beside the checkout."""
    override = os.environ.get(SHARED_DATA_ENV)
    return Path(override) if override else PROJECT_ROOT.parent / "shared" / "data"


def nab_dir() -> Path:
    return shared_data_dir() / "nab"


# ---- NAB (Numenta Anomaly Benchmark): CSV `timestamp,value` ----

Value = Callable[[random.Random, datetime], float]


@dataclass(frozen=True)
class NabShape:
    """What a real NAB file looks like (its first timestamp, usual sampling interval, row
    count, lowest and highest value, mean and standard deviation, as measured on the file)
    and how to generate one like it: a model of its values (a function of the time, with
    noise), written with ``decimals`` places, with ``gaps`` missing samples."""

    start: datetime
    step: timedelta
    rows: int
    low: float
    high: float
    mean: float
    stdev: float
    decimals: int
    value: Value
    gaps: int = 0  # samples missing here and there (a gap of two steps each)


def _daily(at: datetime, peak_hour: float) -> float:
    """1 at the peak hour of the day, -1 twelve hours from it."""
    return math.cos((at.hour + at.minute / 60 - peak_hour) / 24 * 2 * math.pi)


def _ec2_cpu(rng: random.Random, at: datetime) -> float:
    # A busy instance near its limit with short dips (ec2_cpu_utilization_825cc2: 18.7-99.1).
    if rng.random() < 0.04:
        return rng.uniform(18.8, 60.0)
    return 93.0 + 3.0 * _daily(at, 15) + rng.gauss(0, 2.0)


def _rds_cpu(rng: random.Random, at: datetime) -> float:
    # A quiet database with a daily hump and rare spikes (rds_cpu_utilization_cc0c53: 5.2-25.1).
    if rng.random() < 0.06:
        return rng.uniform(12.0, 25.0)
    return 6.2 + 2.5 * max(0.0, _daily(at, 14)) + rng.gauss(0, 0.8)


def _disk_write(rng: random.Random, at: datetime) -> float:
    # Mostly idle, with bursts of up to half a gigabyte (ec2_disk_write_bytes_1ef3de).
    if rng.random() < 0.9:
        return 0.0
    return float(round(math.exp(rng.uniform(math.log(1e4), math.log(5.4e8))), -3))


def _taxi(rng: random.Random, at: datetime) -> float:
    # Passengers per half hour in New York: low before dawn, high in the evening (nyc_taxi).
    weekend = at.weekday() >= 5
    level = 15000 + 9000 * _daily(at, 19) - (1500 if weekend else 0)
    return float(round(level * rng.uniform(0.9, 1.1)))


# As measured on each real file: its first timestamp, sampling interval (minutes), rows, lowest
# and highest value, mean, standard deviation, decimals written and samples missing.
NAB_MEASURED = """
ec2_cpu_utilization_825cc2.csv  2014-04-10T00:04  5  4032 18.7225  99.118    89.7913 12.0772  3 2
rds_cpu_utilization_cc0c53.csv  2014-02-14T14:30  5  4032 5.19     25.1033    8.1122 3.6521   4 1
ec2_disk_write_bytes_1ef3de.csv 2014-03-01T17:34  5  4730 0.0 547457000.0 6581560.77 40381410.85 1 0
nyc_taxi.csv                    2014-07-01T00:00 30 10320 8.0      39197.0 15137.5694 6939.1596 0 0
"""
NAB_MODELS: dict[str, Value] = {
    "ec2_cpu_utilization_825cc2.csv": _ec2_cpu,
    "rds_cpu_utilization_cc0c53.csv": _rds_cpu,
    "ec2_disk_write_bytes_1ef3de.csv": _disk_write,
    "nyc_taxi.csv": _taxi,
}


def _nab_shape(line: str) -> tuple[str, NabShape]:
    """One row of NAB_MEASURED, with the file's model of its values."""
    file, start, step, rows, low, high, mean, stdev, decimals, gaps = line.split()
    numbers = (float(low), float(high), float(mean), float(stdev))
    return file, NabShape(
        datetime.fromisoformat(start),
        timedelta(minutes=int(step)),
        int(rows),
        *numbers,
        decimals=int(decimals),
        value=NAB_MODELS[file],
        gaps=int(gaps),
    )


NAB_SHAPES: dict[str, NabShape] = dict(map(_nab_shape, NAB_MEASURED.strip().splitlines()))


def generated_nab_csv(file: str) -> str:
    """A NAB file of the same shape as the real one, from a seed fixed per file name."""
    shape = NAB_SHAPES[file]
    rng = random.Random(f"vigil nab {file}")
    skipped = set(rng.sample(range(1, shape.rows - 1), shape.gaps))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["timestamp", "value"])
    at = shape.start
    for i in range(shape.rows):
        at += shape.step * (2 if i in skipped else 1 if i else 0)
        value = round(min(max(shape.value(rng, at), shape.low), shape.high), shape.decimals)
        if shape.decimals == 0:
            text = str(int(value))
        elif rng.random() < 0.05:  # the files have float artefacts too (94.79799999999999)
            text = repr(value / 3 * 3)
        else:
            text = repr(value)
        writer.writerow([at.strftime("%Y-%m-%d %H:%M:%S"), text])
    return out.getvalue()


def nab_csv(file: str) -> tuple[str, bool]:
    """The text of a NAB file and whether it is the real one (else generated)."""
    path = nab_dir() / file
    if path.is_file():
        return path.read_text(), True
    return generated_nab_csv(file), False


def parse_nab_csv(text: str) -> list[tuple[datetime, float]]:
    """`timestamp,value` rows, timestamps as UTC."""
    return [
        (datetime.fromisoformat(r["timestamp"]).replace(tzinfo=UTC), float(r["value"]))
        for r in csv.DictReader(io.StringIO(text))
    ]


def nab_series(file: str) -> list[tuple[datetime, float]]:
    """A NAB series: the real file when ../shared/data/nab has it, else generated."""
    return parse_nab_csv(nab_csv(file)[0])


def describe() -> str:
    """For the test report header: which data the tests read."""
    real = [f for f in NAB_SHAPES if (nab_dir() / f).is_file()]
    if len(real) == len(NAB_SHAPES):
        return f"real data: {nab_dir()}"
    if not real:
        return f"generated data (no {nab_dir()})"
    return f"real data for {sorted(real)} in {nab_dir()}, generated for the rest"
