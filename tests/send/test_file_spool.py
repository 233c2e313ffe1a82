"""`vigil send file` while Vigil is unreachable: spooled, retried, delivered; the spool's cap."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ApiServer, free_port, make_settings
from tests.send.conftest import Cli, Conn, Sender, count, journal, sender_env
from tests.support.processes import wait_until

FAST = ["--poll", "0.05", "--batch-wait", "0.1", "--partial-timeout", "0.3"]


def test_down_for_a_while_then_delivered(
    dsn: str, token: str, conn: Conn, tmp_path: Path, senders: list[Sender]
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "app.log"
    log.write_text("".join(f"while down {i}\n" for i in range(50)))
    state = tmp_path / "s.json"
    spool = tmp_path / "s.json.spool"
    sender = Sender(
        ["file", str(log), "--follow", "--state-file", str(state), "--batch-lines", "20", *FAST],
        sender_env(tmp_path, url, token),
        tmp_path / "send.err",
    )
    senders.append(sender)
    wait_until(lambda: len(list(spool.glob("*.batch"))) == 3, what="3 spooled batches")
    wait_until(lambda: "Vigil unreachable" in sender.stderr(), what="the warning")
    with ApiServer(make_settings(dsn, VIGIL_PORT=str(port))):
        wait_until(lambda: count(conn) == 50, timeout=40, what="the spool delivered")
        with log.open("a") as f:
            f.write("back up\n")
        wait_until(lambda: count(conn) == 51, what="a line after the outage")
        assert sender.stop() == 0
    assert not list(spool.glob("*.batch"))
    assert [r[0] for r in journal(conn)] == [f"while down {i}" for i in range(50)] + ["back up"]
    assert "Vigil reachable again" in sender.stderr()


def test_one_shot_spool_cap_and_partial_last_line(
    dsn: str, token: str, conn: Conn, tmp_path: Path, cli: Cli, caplog: pytest.LogCaptureFixture
) -> None:
    """Without --follow: read to the end (the last line has no newline: sent after the
    timeout), give up after --retry-for with the batches kept (exit 1), dropping the oldest
    past the cap; the next run delivers the rest and says what was dropped."""
    port = free_port()
    env = sender_env(tmp_path, f"http://127.0.0.1:{port}", token)
    log = tmp_path / "app.log"
    log.write_text("".join(f"line {i:03d} " + "x" * 100 + "\n" for i in range(300)) + "no newline")
    args = ["send", "file", str(log), "--state-file", str(tmp_path / "s.json"), *FAST]
    args += ["--batch-lines", "50", "--spool-max", "40k", "--retry-for", "1"]
    assert cli(args, env).returncode == 1
    assert "spool reached its cap" in caplog.text
    assert "sent on the next run" in caplog.text
    state = json.loads((tmp_path / "s.json").read_text())
    dropped = state["counters"]["dropped_lines"]
    assert 0 < dropped < 300, caplog.text
    with ApiServer(make_settings(dsn, VIGIL_PORT=str(port))):
        second = cli(args, env)
        assert second.returncode == 0, caplog.text
        rows = journal(conn)
    lines = [r[0] for r in rows if not r[0].startswith("vigil send:")]
    reports = [r for r in rows if r[0].startswith("vigil send:")]
    assert len(lines) + dropped == 301
    assert lines[-1] == "no newline"
    # the oldest were dropped: what is kept is the end of the file, in order
    assert lines[:-1] == [f"line {i:03d} " + "x" * 100 for i in range(300 - len(lines) + 1, 300)]
    assert sum(int(r[1]["VIGIL_DROPPED_LINES"]) for r in reports) == dropped
    assert reports and all(r[1]["PRIORITY"] == "4" for r in reports)
    # a third run has nothing to send
    assert cli(args, env).returncode == 0 and count(conn) == len(rows)


def test_refused_token_and_too_large_bodies(
    dsn: str, token: str, conn: Conn, tmp_path: Path, cli: Cli
) -> None:
    """A refused token stops the sender (exit 2, the spool kept); a batch over the server's
    body limit (413) is sent in halves. In this process, through the command's entry point."""
    settings = make_settings(dsn, VIGIL_PORT=str(free_port()), VIGIL_MAX_BODY_BYTES="65536")
    log = tmp_path / "big-lines.log"
    log.write_text("".join(f"{i:04d} " + "y" * 2000 + "\n" for i in range(200)))  # ~400 KB
    args = ["send", "file", str(log), "--state-file", str(tmp_path / "s.json"), "--host", "h"]
    with ApiServer(settings) as api:
        refused = cli([*args, "--token", "vgl_not-a-token"], sender_env(tmp_path, api.url, None))
        assert refused.returncode == 2
        assert "Vigil refused the token (HTTP 401" in refused.stderr
        assert len(list((tmp_path / "s.json.spool").glob("*.batch"))) == 1
        assert count(conn) == 0
        assert cli(args, sender_env(tmp_path, api.url, token)).returncode == 0
    assert [r[0][:4] for r in journal(conn)] == [f"{i:04d}" for i in range(200)]
    assert not list((tmp_path / "s.json.spool").glob("*.batch"))
