"""Test fixtures: a real PostgreSQL server started by the tests, one fresh database per test.

The server is a private cluster from the machine's own binaries (vigil.cluster, the same
code as the embedded default); databases are cloned from a template migrated once with
Alembic, by pytest-postgresql's DatabaseJanitor.
"""

from __future__ import annotations

import shutil
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import psycopg
import pytest
import uvicorn
from pytest_postgresql.janitor import DatabaseJanitor

from api.app import create_app
from tests.support.fake_oidc import FakeOidc
from tests.support.fake_telegram import FakeTelegram
from vigil.cluster import SUPERUSER, Cluster
from vigil.migrate import upgrade
from vigil.settings import Settings

pytest_plugins = ("tests.support.timescale",)  # TimescaleDB lane + shared `db` fixture
TEMPLATE = "vigil_template"


# The fixtures that reach a database (the PostgreSQL cluster, the PGlite + TimescaleDB lane,
# or an API server on one). A test whose fixture closure has none of them is marked `nodb`
# (`pytest -m nodb` runs the pure tests in seconds). `db` is listed itself: it picks `conn` or
# `ts_conn` at run time (getfixturevalue), so they are not in its static closure.
DATABASE_FIXTURES = frozenset(
    {
        "pg_cluster",
        "dsn",
        "conn",
        "token",
        "api",
        "google_api",
        "api_limit",
        "pglite",
        "ts_empty",
        "ts_dsn",
        "ts_conn",
        "db",
    }
)


def needs_database(fixturenames: Iterable[str]) -> bool:
    return not DATABASE_FIXTURES.isdisjoint(fixturenames)


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not needs_database(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.nodb)


def pytest_report_header() -> str:
    """Which data the tests that read ../shared/data use (real, or generated of its shape)."""
    from tests.support import datasets

    return f"shared data: {datasets.describe()}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    root = Path(tempfile.mkdtemp(prefix="vigil-test-pg-"))
    root.chmod(0o755)  # the server runs as the unprivileged postgres user when we are root
    cluster = Cluster(
        root / "pg",
        free_port(),
        dbname="postgres",
        conf={"fsync": "off", "full_page_writes": "off", "max_connections": "300"},
    )
    cluster.start()
    janitor = DatabaseJanitor(
        user=SUPERUSER, host="127.0.0.1", port=cluster.port, dbname=TEMPLATE, as_template=True
    )
    janitor.init()
    upgrade(cluster.dsn(TEMPLATE))
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def new_database(cluster: Cluster, template: str | None = None) -> Iterator[str]:
    """A database of its own on `cluster`, empty or a copy of `template`, dropped at the end:
    its DSN."""
    name = ("t_" if template else "m_") + uuid.uuid4().hex[:12]
    janitor = DatabaseJanitor(
        user=SUPERUSER,
        host="127.0.0.1",
        port=cluster.port,
        dbname=name,
        template_dbname=template,
    )
    janitor.init()
    try:
        yield cluster.dsn(name)
    finally:
        janitor.drop()


@pytest.fixture
def dsn(pg_cluster: Cluster) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    with new_database(pg_cluster, TEMPLATE) as url:
        yield url


@pytest.fixture
def conn(dsn: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(dsn, autocommit=True) as c:
        yield c


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    fake = FakeTelegram()
    try:
        yield fake
    finally:
        fake.down()


def make_settings(dsn: str, **env: str) -> Settings:
    base = {"DATABASE_URL": dsn, "VIGIL_DATA_DIR": tempfile.gettempdir()}
    return Settings.from_env({**base, **env})


class ApiServer:
    """A real API server on a thread of the test process: the app of `settings` on uvicorn,
    or on `config` (e.g. api.core.server.uvicorn_config, as `python -m api` serves it)."""

    def __init__(self, settings: Settings, config: uvicorn.Config | None = None) -> None:
        self.settings = settings
        config = config or uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=settings.port,
            log_level="warning",
            access_log=False,
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{settings.port}"

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("API server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def api_env() -> dict[str, str]:
    """Extra settings for the `api` fixture; override in a test module."""
    return {}


@pytest.fixture
def api(dsn: str, api_env: dict[str, str]) -> Iterator[ApiServer]:
    settings = make_settings(dsn, VIGIL_PORT=str(free_port()), **api_env)
    with ApiServer(settings) as server:
        yield server


@pytest.fixture
def oidc() -> Iterator[FakeOidc]:
    """A fake OpenID provider (stands in for Google)."""
    fake = FakeOidc()
    try:
        yield fake
    finally:
        fake.close()


@pytest.fixture
def google_api(dsn: str, oidc: FakeOidc) -> Iterator[ApiServer]:
    """The API with Google sign-in pointed at the fake provider (real authlib code path)."""
    port = free_port()
    settings = make_settings(
        dsn,
        VIGIL_PORT=str(port),
        GOOGLE_CLIENT_ID=oidc.client_id,
        GOOGLE_CLIENT_SECRET=oidc.client_secret,
        GOOGLE_CALLBACK_URL=f"http://127.0.0.1:{port}/auth/google/callback",
        GOOGLE_DISCOVERY_URL=oidc.discovery_url,
        SESSION_SECRET="test-session-secret-0123456789",
    )
    with ApiServer(settings) as server:
        yield server


@pytest.fixture
def token(conn: psycopg.Connection[tuple[object, ...]]) -> str:
    from vigil import tokens

    return tokens.create(conn, "test-sender")


def venv_bin(name: str) -> str:
    """A console script of the running venv (e.g. vigil)."""
    return str(Path(sys.executable).parent / name)


ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's Chromium, headless, driven by Playwright (its own browser download is not
    used). Yields a playwright Browser. Per module, not per session: Playwright's sync API
    keeps an event loop running in the main thread while it is open, and tests that call
    asyncio.run() (tests/faults) must not find one."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path="/usr/bin/chromium",
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context and page (Playwright Page); screenshots go to test-artifacts/."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
