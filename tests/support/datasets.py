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


# ---- loghub samples (../shared/data/loghub/NAME_2k.log): system logs as text lines ----

LOGHUB_FILES = ("Linux", "OpenSSH", "HDFS", "Apache")
LOGHUB_LINES = 2000


def _ip(rng: random.Random) -> str:
    return ".".join(str(rng.randint(1, 254)) for _ in range(4))


def _syslog(at: datetime, host: str, ident: str, pid: int | None, message: str) -> str:
    tag = ident if pid is None else f"{ident}[{pid}]"
    return f"{at:%b} {at.day:2d} {at:%H:%M:%S} {host} {tag}: {message}"


def _linux(rng: random.Random) -> list[str]:
    # Linux_2k.log: a RedHat box "combo" (Jun 14 - Jul 27 2005): sshd/su pam_unix, ftpd,
    # logrotate, kernel and syslogd lines, in bursts of a few seconds hours apart.
    at, out = datetime(2005, 6, 14, 15, 16, 1), list[str]()
    users = ("cyrus", "news", "root", "test")
    while len(out) < LOGHUB_LINES:
        at += timedelta(seconds=rng.choice((0, 1, 2, 5, 60, 3600, 5 * 3600)))
        kind, pid = rng.random(), rng.randint(1000, 32000)
        if kind < 0.45:  # a run of failed logins from one address
            rhost, user = _ip(rng), rng.choice(("", "  user=root", "  user=guest"))
            for _ in range(rng.randint(1, 6)):
                if rng.random() < 0.3:
                    out.append(_syslog(at, "combo", "sshd(pam_unix)", pid,
                                       "check pass; user unknown"))  # fmt: skip
                out.append(_syslog(at, "combo", "sshd(pam_unix)", pid,
                                   "authentication failure; logname= uid=0 euid=0"
                                   f" tty=NODEVssh ruser= rhost={rhost}{user}"))  # fmt: skip
                pid += rng.randint(1, 3)
        elif kind < 0.65:
            user = rng.choice(users)
            out.append(_syslog(at, "combo", "su(pam_unix)", pid,
                               f"session opened for user {user} by (uid=0)"))  # fmt: skip
            at += timedelta(seconds=rng.randint(0, 3))
            out.append(_syslog(at, "combo", "su(pam_unix)", pid, f"session closed for user {user}"))
        elif kind < 0.8:
            stamp = f"{at:%a %b %d %H:%M:%S %Y}"
            out.append(_syslog(at, "combo", "ftpd", pid,
                               f"connection from {_ip(rng)} () at {stamp}"))  # fmt: skip
        elif kind < 0.88:
            out.append(_syslog(at, "combo", "logrotate", None, "ALERT exited abnormally with [1]"))
        elif kind < 0.95:
            out.append(_syslog(at, "combo", "kernel", None,
                               rng.choice(("klogd 1.4.1, log source = /proc/kmsg started.",
                                           "Memory: 125312k/129720k available",
                                           "usbcore: registered new driver hub"))))  # fmt: skip
        else:
            out.append(_syslog(at, "combo", "syslogd 1.4.1", None, "restart."))
    return out[:LOGHUB_LINES]


def _openssh(rng: random.Random) -> list[str]:
    # OpenSSH_2k.log: sshd on "LabSZ" (Dec 10 2017): brute-force sessions, a few of them a
    # second, each a handful of lines under one pid; now and then a real login.
    at, out = datetime(2017, 12, 10, 6, 55, 46), list[str]()
    names = ("admin", "oracle", "test", "webmaster", "support", "pi", "git", "ftpuser")
    while len(out) < LOGHUB_LINES:
        at += timedelta(seconds=rng.choice((0, 0, 1, 1, 2, 3, 8, 30, 600)))
        pid, ip, port = rng.randint(24000, 32000), _ip(rng), rng.randint(30000, 65000)

        def say(message: str, at: datetime = at, pid: int = pid) -> None:
            out.append(_syslog(at, "LabSZ", "sshd", pid, message))

        kind = rng.random()
        if kind < 0.08:
            say(f"Accepted password for fztu from {ip} port {port} ssh2")
            say("pam_unix(sshd:session): session opened for user fztu by (uid=0)")
        elif kind < 0.45:
            user = rng.choice(names)
            if rng.random() < 0.3:
                say(f"reverse mapping checking getaddrinfo for ns.{user}.example.com [{ip}]"
                    " failed - POSSIBLE BREAK-IN ATTEMPT!")  # fmt: skip
            say(f"Invalid user {user} from {ip}")
            say(f"input_userauth_request: invalid user {user} [preauth]")
            say("pam_unix(sshd:auth): check pass; user unknown")
            say("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh"
                f" ruser= rhost={ip} ")  # fmt: skip
            say(f"Failed password for invalid user {user} from {ip} port {port} ssh2")
            say(f"Received disconnect from {ip}: 11: Bye Bye [preauth]")
        else:
            say("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh"
                f" ruser= rhost={ip}  user=root")  # fmt: skip
            for _ in range(rng.randint(1, 5)):
                say(f"Failed password for root from {ip} port {port} ssh2")
                port += 1
            if rng.random() < 0.5:
                say("message repeated 5 times: [ Failed password for root from"
                    f" {ip} port {port} ssh2]")  # fmt: skip
            say(f"Connection closed by {ip} [preauth]")
    return out[:LOGHUB_LINES]


def _hdfs(rng: random.Random) -> list[str]:
    # HDFS_2k.log: a Hadoop cluster (081109-081111): blocks allocated, received, stored (with
    # their size, mostly the 64 MiB block size), served and deleted; a few WARNs.
    at, out = datetime(2008, 11, 9, 20, 35, 18), list[str]()
    while len(out) < LOGHUB_LINES:
        at += timedelta(seconds=rng.randint(0, 90))
        block = f"blk_{rng.randint(-(2**63), 2**63 - 1)}"
        node, peer = f"10.251.{rng.randint(0, 255)}.{rng.randint(1, 254)}", _ip(rng)
        size = 67108864 if rng.random() < 0.7 else rng.randint(1000, 67108863)
        kind = rng.random()
        if kind < 0.25:
            component = "dfs.DataNode$PacketResponder"
            message = f"PacketResponder {rng.randint(0, 2)} for block {block} terminating"
        elif kind < 0.45:
            component = "dfs.FSNamesystem"
            message = (f"BLOCK* NameSystem.addStoredBlock: blockMap updated: {node}:50010"
                       f" is added to {block} size {size}")  # fmt: skip
        elif kind < 0.6:
            component = "dfs.DataNode$PacketResponder"
            message = f"Received block {block} of size {size} from /{peer}"
        elif kind < 0.75:
            component = "dfs.DataNode$DataXceiver"
            message = (f"Receiving block {block} src: /{peer}:{rng.randint(30000, 60000)}"
                       f" dest: /{node}:50010")  # fmt: skip
        elif kind < 0.85:
            component = "dfs.FSNamesystem"
            message = (f"BLOCK* NameSystem.allocateBlock: /user/root/rand/_temporary/_task_"
                       f"200811092030_0001_m_{rng.randint(0, 1999):06d}_0/part-"
                       f"{rng.randint(0, 1999):05d}. {block}")  # fmt: skip
        elif kind < 0.95:
            component = "dfs.FSDataset"
            message = f"Deleting block {block} file /mnt/hadoop/dfs/data/current/subdir7/{block}"
        else:
            level = "WARN"
            component = "dfs.DataNode$DataXceiver"
            message = f"{node}:50010:Got exception while serving {block} to /{peer}:"
            out.append(f"{at:%y%m%d %H%M%S} {rng.randint(1, 400)} {level} {component}: {message}")
            continue
        out.append(f"{at:%y%m%d %H%M%S} {rng.randint(1, 400)} INFO {component}: {message}")
    return out


def _apache(rng: random.Random) -> list[str]:
    # Apache_2k.log: an Apache 2 error log (Dec 04 2005 on): mod_jk/jk2_init notices and
    # errors in bursts, forbidden directory indexes.
    at, out = datetime(2005, 12, 4, 4, 47, 44), list[str]()
    while len(out) < LOGHUB_LINES:
        at += timedelta(seconds=rng.choice((0, 0, 1, 1, 2, 60, 200, 3000)))
        child, slot = rng.randint(1000, 9000), rng.randint(6, 12)
        level, message = rng.choice(
            (
                ("notice", f"jk2_init() Found child {child} in scoreboard slot {slot}"),
                ("notice", f"jk2_init() Found child {child} in scoreboard slot {slot}"),
                ("notice", "workerEnv.init() ok /etc/httpd/conf/workers2.properties"),
                ("error", f"mod_jk child workerEnv in error state {rng.randint(6, 9)}"),
                ("error", f"[client {_ip(rng)}] Directory index forbidden by rule: /var/www/html/"),
                ("error", f"jk2_init() Can't find child {child} in scoreboard"),
                ("error", f"mod_jk child init 1 -{rng.randint(1, 2)}"),
            )
        )
        out.append(f"[{at:%a %b %d %H:%M:%S %Y}] [{level}] {message}")
    return out


LOGHUB_MODELS: dict[str, Callable[[random.Random], list[str]]] = {
    "Linux": _linux,
    "OpenSSH": _openssh,
    "HDFS": _hdfs,
    "Apache": _apache,
}


def generated_loghub(name: str) -> str:
    """2,000 lines in the format of a loghub sample, from a seed fixed per file name."""
    return "\n".join(LOGHUB_MODELS[name](random.Random(f"vigil loghub {name}"))) + "\n"


def loghub_path(name: str) -> Path:
    return shared_data_dir() / "loghub" / f"{name}_2k.log"


def loghub_text(name: str) -> str:
    """A loghub sample (Linux, OpenSSH, HDFS, Apache): the real file when
    ../shared/data/loghub has it, else generated lines in the same format."""
    path = loghub_path(name)
    if path.is_file():
        return path.read_text(encoding="utf-8", errors="replace")
    return generated_loghub(name)
