"""The dashboard's system panel shows the roles of `vigil run` with their restarts (from the
supervisor's status file), and nothing of the kind when the API runs on its own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ApiServer
from tests.support.login import login_client
from vigil.supervisor import STATUS_ENV


def test_roles_and_restarts_in_the_system_panel(
    api: ApiServer, dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with login_client(api.url, dsn, "ann@example.com") as client:
        alone = client.get("/dashboard/live")
        assert alone.status_code == 200
        assert 'class="role"' not in alone.text
        status = tmp_path / "run-status.json"
        roles = [
            {"name": "api", "status": "up", "restarts": 0, "started_at": "2026-11-30T10:00:00"},
            {"name": "notifier", "status": "restarting", "restarts": 3},
        ]
        status.write_text(json.dumps({"roles": roles}))
        monkeypatch.setenv(STATUS_ENV, str(status))
        page = client.get("/dashboard/live").text
    assert page.count('class="role"') == 2
    assert "Notifier" in page and "restarting, 3 restarts" in page
    assert ">API<" in page
