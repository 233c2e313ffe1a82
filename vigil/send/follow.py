"""Following files like `tail -F`, with positions that survive restarts.

A Tail follows one path. Its Reader holds one incarnation of the file open: identified by
device and inode and by a fingerprint (SHA-256 of the first bytes, up to 1 KiB), and named
by a random file id sent with every line. A Tail notices

- rotation by rename (the path names another inode, or none): it reads the old file to its
  end, waits `settle` seconds for late writes, then opens the new file from its start;
- rotation by copy and truncate (the file got shorter, or its first bytes changed): it reads
  what it had not read yet from the copy (a sibling `PATH.1`, `PATH-20261130`, ... with the
  same first bytes), then the truncated file from its start;
- on start, a saved position whose file was rotated away meanwhile: it finds that file
  among the path's siblings (by inode and fingerprint, or by fingerprint for a copy), reads
  the rest of it, then the new file.

A line is complete at its newline. A partial last line waits for its newline; it is given
out anyway when the file was rotated away, or at exit, once nothing was added to it for
`settle` seconds. Lines longer than MAX_LINE bytes are cut into pieces of that size.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import stat
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("vigil.send")

FP_BYTES = 1024
MAX_LINE = 64 * 1024
READ_CHUNK = 1 << 20
COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".zip", ".lz4", ".z")


@dataclass
class Position:
    """What the state file keeps per path."""

    dev: int
    ino: int
    offset: int  # every byte before it has been given out as a line
    file_id: str
    fp_len: int
    fp: str

    @classmethod
    def from_json(cls, data: Any) -> Position | None:
        try:
            return cls(
                int(data["dev"]),
                int(data["ino"]),
                int(data["offset"]),
                str(data["file_id"]),
                int(data["fp_len"]),
                str(data["fp"]),
            )
        except (KeyError, TypeError, ValueError):
            return None


def new_file_id() -> str:
    return secrets.token_hex(6)


def _prefix(fd: int, n: int) -> bytes:
    return os.pread(fd, n, 0)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def matches(fd: int, pos: Position) -> bool:
    """The file's first pos.fp_len bytes are the fingerprinted ones."""
    data = _prefix(fd, pos.fp_len)
    return len(data) == pos.fp_len and _digest(data) == pos.fp


class Truncated(Exception):
    """The open file got shorter, or its first bytes changed: copied and truncated."""


class Reader:
    """One open incarnation of a file, read from pos.offset."""

    def __init__(self, fd: int, pos: Position, now: float) -> None:
        self.fd = fd
        self.pos = pos
        self.buf = bytearray()  # bytes read after pos.offset, not given out yet
        self.last_growth = now

    @classmethod
    def open(cls, path: Path, now: float, pos: Position | None = None) -> Reader | None:
        """path opened at pos (its identity taken over), or from its start; None if it
        does not exist (or is not a regular file)."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError, PermissionError) as exc:
            if isinstance(exc, PermissionError):
                log.warning("cannot read %s: %s", path, exc)
            return None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            log.warning("%s is not a regular file", path)
            return None
        if pos is None:
            head = _prefix(fd, FP_BYTES)
            pos = Position(st.st_dev, st.st_ino, 0, new_file_id(), len(head), _digest(head))
        else:
            pos = Position(st.st_dev, st.st_ino, pos.offset, pos.file_id, pos.fp_len, pos.fp)
        return cls(fd, pos, now)

    def close(self) -> None:
        os.close(self.fd)

    def identity(self) -> tuple[int, int]:
        return self.pos.dev, self.pos.ino

    def _check_prefix(self, size: int) -> None:
        pos = self.pos
        want = min(size, FP_BYTES)
        head = _prefix(self.fd, max(want, pos.fp_len))
        if len(head) < pos.fp_len or _digest(head[: pos.fp_len]) != pos.fp:
            raise Truncated
        if want > pos.fp_len:
            pos.fp_len, pos.fp = want, _digest(head[:want])

    def read(
        self, now: float, limit: int = READ_CHUNK, max_lines: int = 1 << 30
    ) -> list[tuple[bytes, int]]:
        """Up to max_lines complete lines added since the last call (with their offsets),
        reading at most limit bytes; raises Truncated."""
        if b"\n" not in self.buf:  # no complete line left from the last call: read more
            start = self.pos.offset + len(self.buf)
            size = os.fstat(self.fd).st_size
            if size < start:
                raise Truncated
            if size == start:
                return []
            self._check_prefix(size)
            data = os.pread(self.fd, min(limit, size - start), start)
            if not data:
                return []
            self.last_growth = now
            self.buf += data
        lines: list[tuple[bytes, int]] = []
        buf = self.buf
        begin = 0
        while len(lines) < max_lines:
            nl = buf.find(b"\n", begin)
            if nl < 0:
                while len(buf) - begin >= MAX_LINE:  # no newline in sight: cut
                    lines.append((bytes(buf[begin : begin + MAX_LINE]), self.pos.offset + begin))
                    begin += MAX_LINE
                break
            lines.extend(self._pieces(bytes(buf[begin:nl]), self.pos.offset + begin))
            begin = nl + 1
        del buf[:begin]
        self.pos.offset += begin
        return lines

    @staticmethod
    def _pieces(line: bytes, offset: int) -> list[tuple[bytes, int]]:
        if line.endswith(b"\r"):
            line = line[:-1]
        if len(line) <= MAX_LINE:
            return [(line, offset)]
        return [(line[i : i + MAX_LINE], offset + i) for i in range(0, len(line), MAX_LINE)]

    def flush_partial(self) -> list[tuple[bytes, int]]:
        """Every line still held, the partial last one included."""
        lines = self.read(self.last_growth) if b"\n" in self.buf else []
        if self.buf:
            lines.append((bytes(self.buf), self.pos.offset))
            self.pos.offset += len(self.buf)
            self.buf.clear()
        return lines


def _siblings(path: Path) -> list[Path]:
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return []
    return sorted(
        (Path(e.path) for e in entries if e.name != path.name and not e.name.endswith(".tmp")),
        key=lambda p: p.name,
    )


def find_rotated(path: Path, pos: Position) -> Path | None:
    """Where the incarnation at pos went: a sibling with its inode and first bytes (renamed),
    else one named after path with its first bytes and at least pos.offset bytes (copied)."""
    by_name: list[Path] = []
    for sibling in _siblings(path):
        try:
            st = sibling.stat()
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode) or sibling.name.lower().endswith(COMPRESSED):
            continue
        if (st.st_dev, st.st_ino) == (pos.dev, pos.ino):
            if _same_start(sibling, pos):
                return sibling
        elif sibling.name.startswith(path.name) and st.st_size >= pos.offset:
            by_name.append(sibling)
    for sibling in by_name:
        if _same_start(sibling, pos):
            return sibling
    return None


def _same_start(path: Path, pos: Position) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        return matches(fd, pos)
    finally:
        os.close(fd)


Line = tuple[bytes, int, str]  # the line, its byte offset, the file id


class Tail:
    """Follows one path (see the module docstring)."""

    def __init__(self, path: Path, saved: Position | None, settle: float) -> None:
        self.path = path
        self.saved = saved  # the position to resume from, until the file is opened
        self.settle = settle
        self.reader: Reader | None = None
        self.rotated = False  # the reader is no longer the file at path
        self.started = False
        self.eof = False  # the last poll found nothing new

    def position(self) -> dict[str, Any] | None:
        if self.reader is not None:
            return asdict(self.reader.pos)
        return asdict(self.saved) if self.saved else None

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
            self.reader = None

    @property
    def done(self) -> bool:
        """Nothing more to read for now: at the end of the file at path, no partial line."""
        if self.reader is None:  # missing; or between a rotated file and the new one
            return self.started and not self.path.exists()
        if not self.eof or self.reader.buf:
            return False
        return not self.rotated or not self.path.exists()  # a deleted file: nothing to switch to

    def _start(self, now: float) -> None:
        self.started = True
        saved = self.saved
        if saved is None:
            self.reader = Reader.open(self.path, now)
            return
        try:
            st = self.path.stat()
        except OSError:
            st = None
        if st is not None and (st.st_dev, st.st_ino) == (saved.dev, saved.ino):
            reader = Reader.open(self.path, now, saved)
            if reader is not None:
                if st.st_size >= saved.offset and matches(reader.fd, saved):
                    self.reader = reader
                    return
                reader.close()
        rotated = find_rotated(self.path, saved)
        if rotated is not None and rotated.stat().st_size > saved.offset:
            log.info("%s: reading the rest of %s (rotated while stopped)", self.path, rotated)
            self.reader = Reader.open(rotated, now, saved)
            self.rotated = self.reader is not None
            if self.rotated:
                return
        elif rotated is None:
            log.warning(
                "%s: the file read before (inode %d) is gone; reading the file now at this path "
                "from its start",
                self.path,
                saved.ino,
            )
        self.reader = Reader.open(self.path, now)

    def _truncated(self, now: float) -> list[tuple[bytes, int]]:
        """Copied and truncated: read the rest from the copy, then the file from its start."""
        assert self.reader is not None
        old = self.reader
        copy = find_rotated(self.path, old.pos)
        if copy is not None and (reader := Reader.open(copy, now, old.pos)) is not None:
            old.close()
            if os.fstat(reader.fd).st_size > old.pos.offset:
                log.info("%s: truncated; reading the rest from %s", self.path, copy)
                self.reader, self.rotated = reader, True
                return []
            reader.close()
            lines: list[tuple[bytes, int]] = []
        else:
            lines = old.flush_partial()
            old.close()
            log.info("%s: truncated; reading it from its start", self.path)
        self.reader, self.rotated = Reader.open(self.path, now), False
        return lines

    def poll(
        self, now: float, final: bool = False, limit: int = READ_CHUNK, max_lines: int = 1 << 30
    ) -> list[Line]:
        """Lines added since the last poll. final: exiting, give out a partial line that
        waited `settle` seconds."""
        if not self.started:
            self._start(now)
        elif self.reader is None:
            self.reader, self.rotated = Reader.open(self.path, now), False
        reader = self.reader
        if reader is None:
            self.eof = True
            return []
        file_id = reader.pos.file_id
        try:
            lines = reader.read(now, limit, max_lines)
        except Truncated:
            lines = self._truncated(now)
            self.eof = False
            return [(line, offset, file_id) for line, offset in lines]
        self.eof = not lines and reader.last_growth < now
        if not self.rotated:
            try:
                st = self.path.stat()
                moved = (st.st_dev, st.st_ino) != reader.identity()
            except OSError:
                moved = True  # deleted or renamed away: tail -F waits for it to come back
            if moved:
                self.rotated = True
                self.eof = False
                return [(line, offset, file_id) for line, offset in lines]
        if not lines and now - reader.last_growth >= self.settle:
            if self.rotated:  # the old file is finished: on to the file at path
                if self.path.exists() or reader.buf:
                    lines = reader.flush_partial()
                    reader.close()
                    self.reader, self.rotated = None, False
                    self.eof = False
            elif final:
                lines = reader.flush_partial()
        return [(line, offset, file_id) for line, offset in lines]
