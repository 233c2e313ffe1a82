"""The file follower (vigil.send.follow.Tail) on real files, polled with explicit clock
values: rotation and truncation while running and while stopped (no server)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from vigil.send.follow import MAX_LINE, Position, Tail


def drain(tail: Tail, now: float = 100.0, final: bool = False) -> list[str]:
    """Polls until nothing more comes: the lines, as text."""
    out: list[str] = []
    for i in range(50):
        lines = tail.poll(now + i, final)
        out += [line.decode() for line, _, _ in lines]
        if not lines and tail.done:
            break
    return out


def saved(tail: Tail) -> Position:
    position = Position.from_json(tail.position())
    assert position is not None
    return position


def test_rotations_while_running(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"a\r\nb\n")
    tail = Tail(log, None, settle=0.0)
    assert drain(tail) == ["a", "b"]  # CRLF endings lose the CR
    first_id = saved(tail).file_id
    # copy and truncate, with lines the follower had not read yet: read from the copy
    with log.open("ab") as f:
        f.write(b"c\npart")
    shutil.copyfile(log, tmp_path / "app.log.1")
    log.write_bytes(b"")
    with log.open("ab") as f:
        f.write(b"d\n")
    assert drain(tail) == ["c", "part", "d"]  # the copy's partial line ends with it
    assert saved(tail).file_id != first_id and saved(tail).ino == log.stat().st_ino
    # truncated with no copy anywhere: from the start
    (tmp_path / "app.log.1").unlink()
    log.write_bytes(b"ee\n")  # (a rewrite to the very same size goes unnoticed until it grows)
    assert drain(tail) == ["ee"]
    # deleted: read to its end; nothing to switch to until the path is back
    os.unlink(log)
    assert drain(tail) == [] and tail.done
    log.write_bytes(b"f\n")
    assert drain(tail) == ["f"]
    tail.close()


def test_rotations_while_stopped(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"1\n2\n")
    tail = Tail(log, None, settle=0.0)
    assert drain(tail) == ["1", "2"]
    position = saved(tail)
    tail.close()
    # renamed away, written to, and a new file: the rest of the old one, then the new one
    os.rename(log, tmp_path / "app.log-20261130")
    with (tmp_path / "app.log-20261130").open("ab") as f:
        f.write(b"3\n")
    log.write_bytes(b"4\n")
    tail = Tail(log, position, settle=0.0)
    assert drain(tail) == ["3", "4"]
    position = saved(tail)
    tail.close()
    # copied and truncated: the rest from the copy, then the file
    with log.open("ab") as f:
        f.write(b"5\n")
    shutil.copyfile(log, tmp_path / "app.log.1")
    log.write_bytes(b"6\n7\n")  # longer than before: noticed by its first bytes
    tail = Tail(log, position, settle=0.0)
    assert drain(tail) == ["5", "6", "7"]
    position = saved(tail)
    tail.close()
    # unchanged: nothing again
    tail = Tail(log, position, settle=0.0)
    assert drain(tail) == []
    tail.close()
    # the file read before is gone (rotated and deleted): the new file from its start
    os.unlink(log)
    log.write_bytes(b"8\n")
    tail = Tail(log, position, settle=0.0)
    assert drain(tail) == ["8"]
    tail.close()
    # compressed siblings are never read
    gz = tmp_path / "app.log.2.gz"
    shutil.copyfile(log, gz)
    old = Tail(log, None, settle=0.0)
    old.poll(0.0)
    position = saved(old)
    old.close()
    os.unlink(log)
    log.write_bytes(b"9\n")
    tail = Tail(log, Position(position.dev, position.ino, 0, "x", 2, position.fp), settle=0.0)
    assert drain(tail) == ["9"]
    tail.close()


def test_partial_and_long_lines(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"x" * (MAX_LINE + 10) + b"\n" + b"y" * (2 * MAX_LINE + 5))
    tail = Tail(log, None, settle=5.0)
    lines = tail.poll(0.0)
    assert [len(line) for line, _, _ in lines] == [MAX_LINE, 10, MAX_LINE, MAX_LINE]
    assert [offset for _, offset, _ in lines] == [0, MAX_LINE, MAX_LINE + 11, 2 * MAX_LINE + 11]
    assert tail.poll(1.0, final=True) == []  # the partial line waits for --partial-timeout
    assert not tail.done
    assert [line for line, _, _ in tail.poll(6.0, final=True)] == [b"y" * 5]
    assert tail.done
    # a path that is not a regular file, or missing, gives nothing
    assert Tail(tmp_path, None, 0.0).poll(0.0) == []
    missing = Tail(tmp_path / "none", None, 0.0)
    assert missing.poll(0.0) == [] and missing.done and missing.position() is None
    tail.close()
    assert Position.from_json({"dev": "x"}) is None
