"""`vigil block` as the issue's contract for scripts says: `block add IP_OR_CIDR [--for
DURATION] [--reason TEXT]`, `block export --format nginx` (`deny ADDRESS;` lines), `block
remove IP_OR_CIDR`; `block list --json`, the allow list, and `rules add|edit --block-for`.
Exit codes: 0 done, 1 refused (one line on stderr), 2 usage."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from tests.support.processes import VIGIL, vigil_env
from vigil.cli.main import main

Conn = psycopg.Connection[tuple[object, ...]]


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


class Cli:
    """`vigil ...` in this process (main() with DATABASE_URL set): the same parser, handlers
    and exit codes as the console script, without a second of interpreter start per call."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    def __call__(self, *args: str) -> Result:
        self.capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's usage errors
            code = int(exc.code or 0)
        out = self.capsys.readouterr()
        return Result(code, out.out, out.err)


@pytest.fixture
def cli(conn: Conn, dsn: str, capsys: pytest.CaptureFixture[str], monkeypatch: Any) -> Cli:
    monkeypatch.setenv("DATABASE_URL", dsn)
    return Cli(capsys)


def ok(cli: Cli, *args: str) -> str:
    result = cli(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def refused(cli: Cli, *args: str, code: int = 1) -> str:
    """The one line on stderr of a command that must fail with exit code `code`."""
    result = cli(*args)
    assert result.returncode == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # one line, never a traceback
    return lines[0]


def test_the_console_script_contract(conn: Conn, dsn: str) -> None:
    """The three commands of the issue's contract, as a script runs them."""

    def vigil(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [VIGIL, "block", *args], env=vigil_env(dsn), capture_output=True, text=True,
            check=False, timeout=60,
        )  # fmt: skip

    added = vigil("add", "203.0.113.7", "--for", "1h", "--reason", "scanner")
    assert added.returncode == 0 and added.stdout.startswith("blocked 203.0.113.7 for 1h (until ")
    exported = vigil("export", "--format", "nginx")
    assert (exported.returncode, exported.stdout) == (0, "deny 203.0.113.7;\n")
    removed = vigil("remove", "203.0.113.7")
    assert (removed.returncode, removed.stdout) == (0, "unblocked 203.0.113.7\n")


def test_block_add_list_export_remove(cli: Cli, conn: Conn) -> None:
    out = ok(cli, "block", "add", "203.0.113.7", "--for", "1h", "--reason", "scanner")
    assert out.startswith("blocked 203.0.113.7 for 1h (until ")
    assert ok(cli, "block", "add", "198.51.100.0/24") == "blocked 198.51.100.0/24 (until removed)\n"
    assert ok(cli, "block", "export", "--format", "nginx") == (
        "deny 198.51.100.0/24;\ndeny 203.0.113.7;\n"
    )
    assert ok(cli, "block", "export") == ok(cli, "block", "export", "--format", "nginx")
    assert ok(cli, "block", "export", "--format", "cidr") == "198.51.100.0/24\n203.0.113.7/32\n"
    rows: list[dict[str, Any]] = json.loads(ok(cli, "block", "list", "--json"))
    assert [(r["network"], r["reason"], r["active"]) for r in rows] == [
        ("203.0.113.7", "scanner", True),
        ("198.51.100.0/24", None, True),
    ]
    assert rows[1]["expires_at"] is None and rows[0]["expires_at"].endswith("+00:00")
    assert set(rows[0]) == {
        "network", "reason", "added_by", "added_at", "updated_at", "expires_at", "rule", "active",
    }  # fmt: skip
    assert ok(cli, "block", "remove", "203.0.113.7") == "unblocked 203.0.113.7\n"
    assert refused(cli, "block", "remove", "203.0.113.7") == (
        "vigil: 203.0.113.7 is not blocked (see `vigil block list`)"
    )
    # An expired entry: gone from list and export, shown with --all.
    conn.execute(
        "update vigil.blocked_networks set added_at = now() - interval '2 hours',"
        " expires_at = now() - interval '1 hour'"
    )
    assert ok(cli, "block", "list") == "nothing is blocked\n"
    assert "(expired)" in ok(cli, "block", "list", "--all")
    assert ok(cli, "block", "export", "--format", "cidr") == ""


def test_refusals_and_usage_errors(cli: Cli) -> None:
    assert refused(cli, "block", "add", "300.1.2.3") == (
        'vigil: "300.1.2.3" is not an IP address or network '
        "(e.g. 203.0.113.7, 203.0.113.0/24 or 2001:db8::/48)"
    )
    assert refused(cli, "block", "add", "10.0.0.1/8") == (
        'vigil: "10.0.0.1/8" has bits set right of its /8 mask (did you mean 10.0.0.0/8?)'
    )
    assert "invalid choice: 'apache'" in refused(
        cli, "block", "export", "--format", "apache", code=2
    )
    assert "--for" in refused(cli, "block", "add", "192.0.2.1", "--for", "soon", code=2)


def test_allow_list(cli: Cli) -> None:
    ok(cli, "block", "add", "192.0.2.9", "--for", "1h")
    assert ok(cli, "block", "allow", "add", "192.0.2.0/24", "--reason", "office") == (
        "allowed 192.0.2.0/24: never blocked; 1 block inside it lifted\n"
    )
    assert refused(cli, "block", "add", "192.0.2.10") == (
        "vigil: 192.0.2.10 overlaps the allow list entry 192.0.2.0/24 (office): it is never "
        "blocked (remove it from the allow list first: vigil block allow remove 192.0.2.0/24)"
    )
    rows = json.loads(ok(cli, "block", "allow", "list", "--json"))
    assert [(r["network"], r["reason"]) for r in rows] == [("192.0.2.0/24", "office")]
    assert ok(cli, "block", "allow", "remove", "192.0.2.0/24").startswith("192.0.2.0/24 removed")
    assert refused(cli, "block", "allow", "remove", "192.0.2.0/24").startswith(
        "vigil: 192.0.2.0/24"
    )


def test_rules_add_and_edit_block_for(cli: Cli) -> None:
    out = ok(
        cli, "rules", "add", "noisy-ip", "--series", "http_4xx", "--agg", "max", "--window",
        "2m", "--above", "19", "--block-for", "1h",
    )  # fmt: skip
    assert "when it fires it blocks the address in label ip for 1h" in out
    rule = json.loads(ok(cli, "rules", "show", "noisy-ip", "--json"))
    assert (rule["block_for"], rule["block_label"]) == ("1h", "ip")
    out = ok(cli, "rules", "edit", "noisy-ip", "--block-for", "30m", "--block-label", "client")
    assert "blocks the address in label client for 30m" in out
    listed = {r["name"]: r for r in json.loads(ok(cli, "rules", "list", "--json"))}
    assert (listed["noisy-ip"]["block_for"], listed["noisy-ip"]["block_label"]) == (
        "30m",
        "client",
    )
    ok(cli, "rules", "edit", "noisy-ip", "--no-block")
    assert json.loads(ok(cli, "rules", "show", "noisy-ip", "--json"))["block_for"] is None
    assert "--block-for" in refused(cli, "rules", "edit", "noisy-ip", "--block-for", "0s", code=2)
