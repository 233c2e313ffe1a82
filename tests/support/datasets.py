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


NAB_SHAPES: dict[str, NabShape] = {
    "ec2_cpu_utilization_825cc2.csv": NabShape(
        start=datetime(2014, 4, 10, 0, 4),
        step=timedelta(minutes=5),
        rows=4032,
        low=18.7225,
        high=99.118,
        mean=89.7913,
        stdev=12.0772,
        decimals=3,
        value=_ec2_cpu,
        gaps=2,
    ),
    "rds_cpu_utilization_cc0c53.csv": NabShape(
        start=datetime(2014, 2, 14, 14, 30),
        step=timedelta(minutes=5),
        rows=4032,
        low=5.19,
        high=25.1033,
        mean=8.1122,
        stdev=3.6521,
        decimals=4,
        value=_rds_cpu,
        gaps=1,
    ),
    "ec2_disk_write_bytes_1ef3de.csv": NabShape(
        start=datetime(2014, 3, 1, 17, 34),
        step=timedelta(minutes=5),
        rows=4730,
        low=0.0,
        high=547457000.0,
        mean=6581560.77,
        stdev=40381410.85,
        decimals=1,
        value=_disk_write,
    ),
    "nyc_taxi.csv": NabShape(
        start=datetime(2014, 7, 1),
        step=timedelta(minutes=30),
        rows=10320,
        low=8.0,
        high=39197.0,
        mean=15137.5694,
        stdev=6939.1596,
        decimals=0,
        value=_taxi,
    ),
}


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
