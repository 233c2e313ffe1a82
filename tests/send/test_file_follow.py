"""`vigil send file --follow`: a real sender process tailing files into a real API."""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections import Counter
from pathlib import Path

from tests.conftest import ApiServer
from tests.send.conftest import Conn, Sender, count, journal, sender_env
from tests.support.processes import wait_until

FAST = ["--poll", "0.05", "--batch-wait", "0.1", "--partial-timeout", "0.5"]


def append(path: Path, text: str) -> None:
    with path.open("a") as f:
        f.write(text)


def messages(conn: Conn) -> Counter[str]:
    return Counter(row[0] for row in journal(conn))


def test_append_rotate_partial_and_identical_lines(
    api: ApiServer, token: str, conn: Conn, tmp_path: Path, senders: list[Sender]
) -> None:
    log = tmp_path / "app.log"
    log.write_text("first\nsame\nsame\n")
    state = tmp_path / "send.json"
    env = sender_env(tmp_path, api.url, token)
    sender = Sender(
        ["file", str(log), "--follow", "--state-file", str(state), "--group", "shop", *FAST],
        env,
        tmp_path / "send.err",
    )
    senders.append(sender)
    wait_until(lambda: count(conn) == 3, what="the first 3 lines")
    assert messages(conn) == Counter({"first": 1, "same": 2})  # identical lines both kept

    # appended while running; a partial last line waits for its newline
    append(log, "second\npart-")
    wait_until(lambda: count(conn) == 4, what="the appended line")
    time.sleep(0.8)  # longer than --partial-timeout: still not sent, the file is live
    assert count(conn) == 4
    append(log, "ial\n")
    wait_until(lambda: count(conn) == 5, what="the completed line")
    assert messages(conn)["part-ial"] == 1

    # rotation by rename; the writer still appends to the old file for a moment
    os.rename(log, tmp_path / "app.log.1")
    append(tmp_path / "app.log.1", "late to the old file\n")
    log.write_text("new file\nsame\n")
    wait_until(lambda: count(conn) == 8, what="the old file's rest and the new file")

    # rotation by copy and truncate
    append(log, "before the copy\n")
    os.rename(tmp_path / "app.log.1", tmp_path / "app.log.2")
    shutil.copyfile(log, tmp_path / "app.log.1")
    with log.open("r+") as f:
        f.truncate(0)
    append(log, "after the truncate\n")
    wait_until(lambda: count(conn) == 10, what="lines around the copy and truncate")

    assert sender.stop() == 0
    rows = journal(conn)
    assert Counter(r[0] for r in rows) == Counter(
        {
            "first": 1,
            "same": 3,
            "second": 1,
            "part-ial": 1,
            "late to the old file": 1,
            "new file": 1,
            "before the copy": 1,
            "after the truncate": 1,
        }
    )
    _, fields, unit, host, _ = rows[0]
    assert unit == "shop" and fields["VIGIL_GROUP"] == "shop"
    assert fields["VIGIL_FILE"] == str(log) and fields["VIGIL_OFFSET"] == "0"
    assert host and host == fields.get("_HOSTNAME", host)
    # every line is a distinct place: (file id, offset) never repeats
    places = [(r[1]["VIGIL_FILE_ID"], r[1]["VIGIL_OFFSET"]) for r in rows]
    assert len(set(places)) == len(places)
    # three incarnations of app.log: the first, the renamed-to one, the truncated one
    assert len({r[1]["VIGIL_FILE_ID"] for r in rows}) == 3
    # nothing left in the spool, and the state file has the position
    assert not list((tmp_path / "send.json.spool").glob("*.batch"))
    assert str(log) in state.read_text()
    assert "Traceback" not in sender.stderr()


def numbered(prefix: str, n: int) -> str:
    return "".join(f"{prefix} {i:06d}\n" for i in range(n))


def test_kill_9_mid_batch_and_changes_while_stopped(
    api: ApiServer, token: str, conn: Conn, tmp_path: Path, senders: list[Sender]
) -> None:
    """Killed while sending: on restart nothing is lost and nothing is stored twice, and
    what happened to the file while it was down (appends, rotation by rename with the rest
    of the old file, copy-and-truncate) is read too."""
    log = tmp_path / "big.log"
    total = 6_000
    log.write_text(numbered("line", total))
    args = ["file", str(log), "--follow", "--state-file", str(tmp_path / "s.json"), *FAST]
    args += ["--batch-lines", "100"]
    env = sender_env(tmp_path, api.url, token)
    first = Sender(args, env, tmp_path / "1.err")
    senders.append(first)
    wait_until(lambda: count(conn) >= 600, what="the first batches")
    first.stop(signal.SIGKILL)
    stored = count(conn)
    assert 0 < stored < total, "killed mid-run"

    # while it is down: appended, then rotated by rename (the old file still written to),
    # and a new file
    append(log, numbered("down-a", 100))
    os.rename(log, tmp_path / "big.log.1")
    append(tmp_path / "big.log.1", numbered("down-b", 50))
    log.write_text(numbered("down-c", 30))

    second = Sender(args, env, tmp_path / "2.err")
    senders.append(second)
    expected = total + 180
    wait_until(lambda: count(conn) == expected, timeout=30, what="every line once")
    assert second.stop() == 0

    # while it is down: copied and truncated (the copy holds lines not read yet)
    append(log, numbered("pre-copy", 20))
    os.rename(tmp_path / "big.log.1", tmp_path / "big.log.2")
    shutil.copyfile(log, tmp_path / "big.log.1")
    with log.open("r+") as f:
        f.truncate(0)
    append(log, numbered("post-truncate", 10))
    third = Sender(args, env, tmp_path / "3.err")
    senders.append(third)
    expected += 30
    wait_until(lambda: count(conn) == expected, timeout=30, what="the copy's rest and the file")
    time.sleep(0.3)  # nothing more arrives
    assert third.stop() == 0
    rows = conn.execute("select count(*), count(distinct message) from vigil.journal").fetchone()
    assert rows == (expected, expected)  # every line once, none twice
