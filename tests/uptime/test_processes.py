"""End to end with real processes: `vigil service add|list|remove`, `vigil prober` and
`vigil notifier` -> the fake Telegram, as a local target goes down and comes back."""

from __future__ import annotations

import subprocess
from pathlib import Path

import psycopg

from tests.support.fake_telegram import FakeTelegram
from tests.support.processes import VIGIL, vigil_env, vigil_process, wait_until
from tests.support.targets import Target


def state(dsn: str) -> str:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("select state from vigil.services where name = 'web'").fetchone()
    return str(row[0]) if row else ""


def vigil(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [VIGIL, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_cli_prober_notifier(dsn: str, telegram: FakeTelegram, tmp_path: Path) -> None:
    env = vigil_env(
        dsn,
        **telegram.env(),
        VIGIL_PROBER_TICK_SECONDS="0.1",
    )
    with Target() as target:
        added = vigil(
            env, "service", "add", "web", target.base + "/switch",
            "--interval", "1", "--timeout", "1", "--retries", "1", "--allow-internal",
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        assert "service 'web' added" in added.stdout
        bad = vigil(env, "service", "add", "bad", "ftp://files.example/")
        assert bad.returncode == 1
        assert "is not an http(s) URL (give a URL like" in bad.stderr
        dup = vigil(env, "service", "add", "web", "http://example.com/")
        assert dup.returncode == 1 and "exists already" in dup.stderr

        with (
            vigil_process("prober", env, tmp_path / "prober.log"),
            vigil_process("notifier", env, tmp_path / "notifier.log"),
        ):
            wait_until(lambda: state(dsn) == "up", 20, "web up")
            before = len(target.requests)
            target.switch_ok = False
            assert telegram.wait_for(1) == ["Alert: web - down (HTTP 500)"]
            # Two failed checks (one retry) before down.
            assert len(target.requests) - before == 2
            target.switch_ok = True
            texts = telegram.wait_for(2)
            assert texts[1].startswith("OK again: web (down for ")
        listing = vigil(env, "service", "list").stdout
        assert "web" in listing and "up" in listing and "[internal ok]" in listing
    removed = vigil(env, "service", "remove", "web")
    assert removed.returncode == 0 and "removed" in removed.stdout
    assert vigil(env, "service", "remove", "web").returncode == 1
    logs = (tmp_path / "prober.log").read_text()
    assert target.base not in logs  # URLs are never logged
    # State changes are logged at INFO (failed checks without a change only at DEBUG).
    assert "service 'web': up -> down (HTTP 500)" in logs
