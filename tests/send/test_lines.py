"""Line formats and configuration of `vigil send` (no server, no database)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from vigil.cli.main import main
from vigil.send.client import ConfigError, resolve
from vigil.send.deliver import encode
from vigil.send.lines import Source, Stamp, auto_line, json_line, text_line, us_of
from vigil.send.spool import Store

SRC = Source("/var/log/app.log", "abc123", "web-1", "shop")
READ = us_of(datetime(2026, 11, 30, 12, 0, tzinfo=UTC))
STAMP = Stamp(READ, local=UTC)


def test_text_line_times_and_bytes() -> None:
    route, e = text_line(b"plain words", 42, SRC, STAMP)
    assert route == "/journal"
    assert e["__REALTIME_TIMESTAMP"] == str(READ)  # no time in the line: read time
    assert e["MESSAGE"] == "plain words"
    assert (e["_HOSTNAME"], e["_SYSTEMD_UNIT"], e["VIGIL_GROUP"]) == ("web-1", "shop", "shop")
    assert (e["VIGIL_FILE"], e["VIGIL_FILE_ID"], e["VIGIL_OFFSET"]) == (SRC.path, "abc123", "42")
    _, e = text_line(b"2026-11-30T10:00:01.5+01:00 started", 0, SRC, STAMP)
    assert e["__REALTIME_TIMESTAMP"] == str(us_of(datetime(2026, 11, 30, 9, 0, 1, 500000, UTC)))
    _, e = text_line(b"2026-11-30 10:00:01,250 INFO x", 0, SRC, STAMP)  # no zone: local
    assert e["__REALTIME_TIMESTAMP"] == str(us_of(datetime(2026, 11, 30, 10, 0, 1, 250000, UTC)))
    # syslog: no year; the latest not in the future
    _, e = text_line(b"Dec  2 08:00:00 host sshd[1]: x", 0, SRC, STAMP)
    assert e["__REALTIME_TIMESTAMP"] == str(us_of(datetime(2025, 12, 2, 8, 0, tzinfo=UTC)))
    _, e = text_line(b"Nov 29 23:59:59 host cron: y", 0, SRC, STAMP)
    assert e["__REALTIME_TIMESTAMP"] == str(us_of(datetime(2026, 11, 29, 23, 59, 59, tzinfo=UTC)))
    # --now: the read time, whatever the line says
    _, e = text_line(b"Nov 29 23:59:59 host cron: y", 0, SRC, Stamp(READ, now=True, local=UTC))
    assert e["__REALTIME_TIMESTAMP"] == str(READ)
    # not UTF-8: journald's byte array, which the server decodes losslessly
    _, e = text_line(b"bad \xff byte", 0, SRC, STAMP)
    assert e["MESSAGE"] == list(b"bad \xff byte")
    # an impossible date is no time
    _, e = text_line(b"2026-13-45T99:00:00Z x", 0, SRC, STAMP)
    assert e["__REALTIME_TIMESTAMP"] == str(READ)


def test_json_lines() -> None:
    line = json.dumps(
        {"time": "2026-11-30T11:00:00Z", "level": "ERROR", "msg": "boom", "user": {"id": 7}}
    ).encode()
    _, e = json_line(line, 9, SRC, STAMP)
    assert e["__REALTIME_TIMESTAMP"] == str(us_of(datetime(2026, 11, 30, 11, tzinfo=UTC)))
    assert (e["MESSAGE"], e["PRIORITY"], e["user"], e["level"]) == ("boom", "3", {"id": 7}, "ERROR")
    assert "msg" not in e
    # epoch numbers: seconds, milliseconds
    for ts in (1796032800, 1796032800000, 1796032800.25):
        _, e = json_line(json.dumps({"ts": ts, "message": "m"}).encode(), 0, SRC, STAMP)
        assert abs(int(e["__REALTIME_TIMESTAMP"]) - 1796032800_000000) <= 250_000
    # a journald entry keeps its host and unit; VIGIL_ fields are ours
    entry = {"__REALTIME_TIMESTAMP": "1796032800000000", "_HOSTNAME": "db-1", "MESSAGE": "j",
             "_SYSTEMD_UNIT": "pg.service", "VIGIL_OFFSET": "999"}  # fmt: skip
    _, e = json_line(json.dumps(entry).encode(), 5, SRC, STAMP)
    assert (e["_HOSTNAME"], e["_SYSTEMD_UNIT"], e["VIGIL_OFFSET"]) == ("db-1", "pg.service", "5")
    assert e["__REALTIME_TIMESTAMP"] == "1796032800000000"
    # "logs" would look like metrics-sender's batch in a one-line body: renamed
    _, e = json_line(b'{"logs": "x", "message": "m"}', 0, SRC, STAMP)
    assert "logs" not in e and e["LOGS"] == "x"
    # not an object, or not JSON: a text line
    assert json_line(b"[1, 2]", 0, SRC, STAMP)[1]["MESSAGE"] == "[1, 2]"
    assert json_line(b"{broken", 0, SRC, STAMP)[1]["MESSAGE"] == "{broken"
    # no message member: the whole line
    assert json_line(b'{"a": 1}', 0, SRC, STAMP)[1]["MESSAGE"] == '{"a": 1}'
    # auto: objects as JSON, the rest as text
    assert auto_line(b' {"msg": "hi"}', 0, SRC, STAMP)[1]["MESSAGE"] == "hi"
    assert auto_line(b"hi {x}", 0, SRC, STAMP)[1]["MESSAGE"] == "hi {x}"
    # a lone surrogate from a \\ud800 escape still encodes (as an escape)
    _, e = json_line(b'{"msg": "a\\ud800b"}', 0, SRC, STAMP)
    assert b"\\ud800" in encode(e)


def test_local_time_zone() -> None:
    plus2 = timezone(timedelta(hours=2))
    _, e = text_line(b"2026-11-30 10:00:00 x", 0, SRC, Stamp(READ, local=plus2))
    assert e["__REALTIME_TIMESTAMP"] == str(us_of(datetime(2026, 11, 30, 8, tzinfo=UTC)))


def test_configuration_order(tmp_path: Path) -> None:
    config = tmp_path / "config" / "vigil" / "send.toml"
    config.parent.mkdir(parents=True)
    config.write_text('url = "http://file:8080/"\ntoken = "from-file"\n')
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    assert resolve(None, None, env=env) == resolve(None, None, env=env)
    t = resolve(None, None, env=env)
    assert (t.url, t.token) == ("http://file:8080", "from-file")
    env |= {"VIGIL_URL": "http://env:1", "VIGIL_TOKEN": "from-env"}
    t = resolve(None, None, env=env)
    assert (t.url, t.token) == ("http://env:1", "from-env")
    t = resolve("https://flag", "from-flag", env=env)
    assert (t.url, t.token) == ("https://flag", "from-flag")
    secret = tmp_path / "token"
    secret.write_text("from-token-file\n")
    t = resolve(None, None, env={"VIGIL_URL": "http://x", "VIGIL_TOKEN_FILE": str(secret)})
    assert t.token == "from-token-file"
    assert t.headers()["Authorization"] == "Bearer from-token-file"
    with pytest.raises(ConfigError, match="no Vigil URL"):
        resolve(None, None, env={"HOME": str(tmp_path)})
    with pytest.raises(ConfigError, match="http:// or https://"):
        resolve("ftp://x", None, env={})
    with pytest.raises(ConfigError, match="not found"):
        resolve(None, None, config=str(tmp_path / "nope.toml"), env={})
    bad = tmp_path / "bad.toml"
    bad.write_text("url = ")
    with pytest.raises(ConfigError, match="cannot read"):
        resolve(None, None, config=str(bad), env={})


def test_file_dry_run_prints_and_keeps_nothing(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in [k for k in os.environ if k.startswith("VIGIL_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    log = tmp_path / "app.log"
    log.write_text('one\n{"msg": "two", "level": "warn"}\n')
    state = tmp_path / "s.json"
    args = ["send", "file", str(log), "--dry-run", "--host", "h", "--state-file", str(state)]
    assert main(args) == 0
    out = capfd.readouterr().out.splitlines()
    assert out[0] == "POST /journal (2 lines)"
    first, second = (json.loads(line) for line in out[1:])
    assert (first["MESSAGE"], first["_HOSTNAME"], first["VIGIL_OFFSET"]) == ("one", "h", "0")
    assert (second["MESSAGE"], second["PRIORITY"], second["VIGIL_OFFSET"]) == ("two", "4", "4")
    assert not state.exists() and not (tmp_path / "state").exists()
    # no URL needed for a dry run; without one, a real run says what to set
    assert main(["send", "file", str(log), "--state-file", str(state)]) == 2
    assert "no Vigil URL: give --url, set VIGIL_URL" in capfd.readouterr().err


def test_the_sender_never_loads_server_code() -> None:
    """vigil.send is a client: no server package, no database driver, no web framework."""
    server = ["api", "notifier", "prober", "psycopg", "psycopg_pool", "litestar", "sqlalchemy"]
    code = (
        "import sys, vigil.send.cli\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({server!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert (
        "psycopg"
        in subprocess.run(  # the check can fail: the CLI's main module does load it
            [sys.executable, "-c", code.replace("vigil.send.cli", "vigil.cli.main")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )


def test_one_state_file_one_sender(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in [k for k in os.environ if k.startswith("VIGIL_")]:
        monkeypatch.delenv(key)
    state = tmp_path / "s.json"
    log = tmp_path / "a.log"
    log.write_text("x\n")
    holder = Store(state, 1 << 20)
    try:
        args = ["send", "file", str(log), "--state-file", str(state), "--url", "http://127.0.0.1:9"]
        assert main(args) == 2
        assert f"{state} is in use by another vigil send" in capfd.readouterr().err
    finally:
        holder.close()
    state.write_text("not json")
    assert main([*args, "--retry-for", "0.1"]) == 2
    assert "is not a vigil send state file" in capfd.readouterr().err
