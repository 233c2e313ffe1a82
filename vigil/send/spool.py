"""The state file and the spool: what `vigil send file` keeps on disk.

- The spool is a directory of sealed batches, one file each (`NNNNNNNNNNNN.batch`): a JSON
  header line (route, line count, and the reader's positions right after the batch) and
  the body to POST. A batch is written (fsync, rename) before it is sent, so its lines and
  their times never change: sending it again after a crash repeats the same bytes, which
  the server stores once.
- The state file holds the positions of the last batch the server acknowledged, written
  atomically (temporary file, fsync, rename) after the acknowledgement and before that
  batch leaves the spool.

On start, reading resumes after the newest batch in the spool if there is one, else at the
state file's positions. The spool has a size cap: past it the oldest batches are dropped
(never the newest, which holds the reading position), counted and reported.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

SUFFIX = ".batch"


def write_atomically(path: Path, data: bytes) -> None:
    """path holds data, or (after a crash) its previous content: never a mix."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Sealed:
    """A batch in the spool."""

    path: Path
    seq: int
    route: str
    lines: int
    state: dict[str, Any]
    body: bytes


class StateLocked(RuntimeError):
    """Another `vigil send` uses this state file."""


class Store:
    """The state file and its spool directory (`STATE.spool/`), locked for one process."""

    def __init__(self, state_file: Path, spool_max_bytes: int) -> None:
        self.state_file = state_file
        self.spool_dir = state_file.with_name(state_file.name + ".spool")
        self.spool_max_bytes = spool_max_bytes
        state_file.parent.mkdir(parents=True, exist_ok=True)
        self.spool_dir.mkdir(exist_ok=True)
        self._lock: TextIO = state_file.with_name(state_file.name + ".lock").open("w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise StateLocked(f"{state_file} is in use by another vigil send") from None
        try:
            self.acked: dict[str, Any] = self._read_state()
        except ValueError:
            self._lock.close()
            raise
        self._sizes: dict[Path, int] = {p: p.stat().st_size for p in self._files()}

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._lock.close()

    def _read_state(self) -> dict[str, Any]:
        try:
            data = json.loads(self.state_file.read_bytes())
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise ValueError(f"{self.state_file} is not a vigil send state file: {exc}") from None
        return data if isinstance(data, dict) else {}

    def _files(self) -> list[Path]:
        return sorted(p for p in self.spool_dir.iterdir() if p.name.endswith(SUFFIX))

    def resume_state(self) -> dict[str, Any]:
        """The reading position: after the newest spooled batch, else the acknowledged one."""
        files = self._files()
        if files:
            with contextlib.suppress(OSError, ValueError, StopIteration):
                state = self.read(files[-1]).state
                return {**self.acked, **state}
        return dict(self.acked)

    @property
    def counters(self) -> dict[str, int]:
        counters = self.acked.get("counters")
        return dict(counters) if isinstance(counters, dict) else {}

    def count(self, name: str, n: int) -> int:
        """Adds n to a persisted counter (e.g. dropped lines); returns the total."""
        counters = self.counters
        counters[name] = counters.get(name, 0) + n
        self.acked["counters"] = counters
        write_atomically(self.state_file, json.dumps(self.acked).encode())
        return counters[name]

    def pending(self) -> list[Path]:
        return list(self._sizes)

    def seal(self, route: str, lines: list[bytes], state: dict[str, Any]) -> Path:
        """Writes a batch to the spool (durably) and returns its path."""
        files = self._files()
        seq = int(files[-1].name.removesuffix(SUFFIX)) + 1 if files else 1
        header = {"route": route, "lines": len(lines), "state": state}
        path = self.spool_dir / f"{seq:012d}{SUFFIX}"
        data = json.dumps(header).encode() + b"\n" + b"\n".join(lines) + b"\n"
        write_atomically(path, data)
        self._sizes[path] = len(data)
        return path

    def read(self, path: Path) -> Sealed:
        data = path.read_bytes()
        head, _, body = data.partition(b"\n")
        header = json.loads(head)
        return Sealed(
            path,
            int(path.name.removesuffix(SUFFIX)),
            str(header["route"]),
            int(header["lines"]),
            dict(header["state"]),
            body,
        )

    def acknowledge(self, batch: Sealed) -> None:
        """The server stored batch: its positions become the state, then it leaves the spool
        (in that order: a crash in between only sends it once more)."""
        self.acked = {**self.acked, **batch.state, "counters": self.counters}
        write_atomically(self.state_file, json.dumps(self.acked).encode())
        self.discard(batch.path)

    def discard(self, path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        self._sizes.pop(path, None)

    def spooled_bytes(self) -> int:
        return sum(self._sizes.values())

    def over_cap(self) -> list[Path]:
        """The oldest batches to drop so the spool fits its cap (never the newest)."""
        total = self.spooled_bytes()
        drop: list[Path] = []
        for path in list(self._sizes)[:-1]:
            if total <= self.spool_max_bytes:
                break
            drop.append(path)
            total -= self._sizes[path]
        return drop
