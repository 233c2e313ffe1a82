"""docker/ checked statically (no Docker engine here): the compose file parses, its
services line up with the image and the `vigil` subcommands, and the example env file
lists exactly the settings the code reads (vigil/settings.py, found by parsing it, so a
new setting fails this test until it is documented in docker/vigil.env.example)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from vigil import PROJECT_ROOT
from vigil.cli.main import RUN_ROLES, build_parser

DOCKER = PROJECT_ROOT / "docker"
READERS = {"_read", "_int", "_float", "_bool"}
SETTING_LINE = re.compile(r"^#?([A-Z][A-Z0-9_]*)=", re.MULTILINE)


def settings_read_by_code(path: Path = PROJECT_ROOT / "vigil" / "settings.py") -> set[str]:
    """Names passed to _read/_int/_float/_bool(env, "NAME", ...) in the settings module."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in READERS
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            names.add(node.args[1].value)
    return names


def example_settings() -> list[str]:
    return SETTING_LINE.findall((DOCKER / "vigil.env.example").read_text())


def vigil_subcommands() -> set[str]:
    _, commands = build_parser()
    return set(commands)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (DOCKER / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_parser_finds_the_settings() -> None:
    found = settings_read_by_code()
    assert {"DATABASE_URL", "VIGIL_HOST", "TELEGRAM_TOKEN", "VIGIL_MAX_ATTEMPTS"} <= found
    assert len(found) >= 18


def test_example_env_lists_every_setting_the_code_reads() -> None:
    listed = example_settings()
    missing = settings_read_by_code() - set(listed)
    assert not missing, f"add to docker/vigil.env.example (with a comment): {sorted(missing)}"


def test_example_env_lists_only_settings_the_code_reads() -> None:
    listed = example_settings()
    unknown = set(listed) - settings_read_by_code()
    assert not unknown, f"not read by vigil/settings.py: {sorted(unknown)}"
    assert len(listed) == len(set(listed)), "a setting is listed twice"


def test_every_example_setting_has_a_comment_above_it() -> None:
    lines = (DOCKER / "vigil.env.example").read_text().splitlines()
    checked = 0
    for i, line in enumerate(lines):
        if SETTING_LINE.match(line):
            above = lines[i - 1] if i else ""
            assert above.startswith("# ") or SETTING_LINE.match(above), f"no comment: {line}"
            checked += 1
    assert checked == len(example_settings()) >= 18


def test_example_env_values_are_valid_settings() -> None:
    """The active lines of the example (plus a DATABASE_URL, as compose sets it) load."""
    from vigil.settings import Settings

    env = dict(
        re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", (DOCKER / "vigil.env.example").read_text(), re.M)
    )
    env["DATABASE_URL"] = "postgresql://vigil:pw@db:5432/vigil"
    settings = Settings.from_env(env)
    assert settings.host == "0.0.0.0"  # noqa: S104 (listen on all interfaces in a container)


def test_compose_services_restart_and_health(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"db", "migrate", "api", "notifier"} <= set(services)
    for name, svc in services.items():
        assert "restart" in svc, f"{name}: no restart policy"
        assert svc.get("logging", {}).get("driver") == "json-file", f"{name}: logs"
    for name in set(services) - {"migrate"}:  # long-running services
        assert services[name]["restart"] in ("always", "unless-stopped")
        check = services[name]["healthcheck"]
        assert check["test"][0] in ("CMD", "CMD-SHELL") and check["interval"], name
    assert services["migrate"]["restart"] == "no"
    assert "pg_isready" in " ".join(services["db"]["healthcheck"]["test"])
    assert "/health" in " ".join(services["api"]["healthcheck"]["test"])


def test_python_healthchecks_compile(compose: dict[str, Any]) -> None:
    """Every long-running Vigil service checks its health with a Python one-liner that
    compiles (a syntax error would only show as a container that never gets healthy)."""
    compiled = []
    for name, svc in compose["services"].items():
        test = svc.get("healthcheck", {}).get("test", [])
        if test[:3] == ["CMD", "python", "-c"]:
            code = compile(test[3], f"{name}-healthcheck", "exec")
            assert code.co_names, f"{name}: the healthcheck does nothing"
            compiled.append(name)
    assert sorted(compiled) == sorted(RUN_ROLES)


def test_db_is_the_pinned_official_timescaledb_image(compose: dict[str, Any]) -> None:
    image = compose["services"]["db"]["image"]
    assert re.fullmatch(r"timescale/timescaledb:\d+\.\d+\.\d+-pg1[5-9]", image), image
    assert "/var/lib/postgresql/data" in " ".join(compose["services"]["db"]["volumes"])


def test_vigil_services_wait_for_a_successful_migration(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    checked = set()
    for name, svc in services.items():
        if name in ("db", "migrate") or "build" not in svc:
            continue
        assert svc["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert svc["depends_on"]["db"]["condition"] == "service_healthy"
        checked.add(name)
    assert checked == set(RUN_ROLES)


def test_vigil_services_run_vigil_subcommands_in_the_container(compose: dict[str, Any]) -> None:
    commands = vigil_subcommands()
    vigil_services = {n: s for n, s in compose["services"].items() if "build" in s}
    assert {"migrate", "api", "notifier"} <= set(vigil_services)
    for name, svc in vigil_services.items():
        assert svc["build"]["dockerfile"] == "docker/Dockerfile"
        assert (DOCKER / svc["build"]["context"] / svc["build"]["dockerfile"]).is_file()
        assert svc["command"][0] in commands, f"{name}: `vigil {svc['command'][0]}` unknown"
        assert svc["env_file"] == "vigil.env"
        env = svc["environment"]
        assert env["VIGIL_HOST"] == "0.0.0.0"  # noqa: S104
        assert env["DATABASE_URL"].startswith("postgresql://vigil:${POSTGRES_PASSWORD")
        assert env["DATABASE_URL"].endswith("@db:5432/vigil")
    assert vigil_services["migrate"]["command"] == ["migrate"]


def test_compose_variables_are_in_the_compose_env_example(compose: dict[str, Any]) -> None:
    used = set(re.findall(r"\$\{([A-Z_]+)", (DOCKER / "compose.yaml").read_text()))
    documented = set(SETTING_LINE.findall((DOCKER / ".env.example").read_text()))
    assert used == documented


def test_dockerfile_runs_vigil(compose: dict[str, Any]) -> None:
    instructions = dockerfile_instructions()
    final = instructions[max(i for i, (w, _) in enumerate(instructions) if w == "FROM") :]
    assert final[0][1].startswith("python:3.11-slim")
    entrypoint = json.loads(next(r for w, r in final if w == "ENTRYPOINT"))
    cmd = json.loads(next(r for w, r in final if w == "CMD"))
    assert entrypoint == ["vigil"]
    assert cmd[0] in vigil_subcommands()
    env = " ".join(r for w, r in final if w == "ENV")
    assert "VIGIL_HOST=0.0.0.0" in env and "PYTHONUNBUFFERED=1" in env
    assert any(w == "USER" and r != "root" for w, r in final)
    assert any(w == "RUN" and "pip install ." in r for w, r in final)
    # pyproject's console script is what ENTRYPOINT runs.
    assert 'vigil = "vigil.cli.main:main"' in (PROJECT_ROOT / "pyproject.toml").read_text()


def test_dockerfile_copies_only_what_exists() -> None:
    copied = set()
    for word, rest in dockerfile_instructions():
        if word == "COPY" and not rest.startswith("--from"):
            *sources, _dest = rest.split()
            for src in sources:
                assert (PROJECT_ROOT / src).exists(), f"COPY {src}: not in the repository"
                copied.add(src)
    # What the image runs: the packages, the migrations and the SQL they apply, the pages.
    assert {"pyproject.toml", "vigil", "api", "alembic", "sql", "templates"} <= copied


def test_every_run_role_is_a_compose_service(compose: dict[str, Any]) -> None:
    """`vigil run` supervises RUN_ROLES; in Docker each role is its own service."""
    commands = {s["command"][0] for s in compose["services"].values() if "build" in s}
    missing = set(RUN_ROLES) - commands
    assert not missing, f"add a service running `vigil ROLE` to docker/compose.yaml: {missing}"
