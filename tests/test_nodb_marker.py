"""The `nodb` marker (tests/conftest.py) selects the tests that need no database, and only
them: collected with `-m nodb` in a pytest of its own (nothing is run, no server started)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PURE = [
    "tests/vigil/test_settings.py::test_defaults",
    "tests/journal/test_formats.py::test_export_format_text_binary_and_repeated_fields",
]
DATABASE = [
    "tests/auth/test_tokens_page.py::test_create_duplicate_bad_name_and_revoke",  # api
    "tests/e2e/test_cli.py::test_run_on_the_embedded_default",  # pg_cluster only
    "tests/migration/test_migrations.py::test_fingerprint_sees_a_changed_comment_default_and_function",
    "tests/series/test_series_timescale.py::test_sub_range_and_empty",  # ts_conn
    # `db` picks conn or ts_conn at run time: neither is in its static fixture closure.
    "tests/sql/test_comments.py::test_every_table_view_and_function_is_commented",
]
DATABASE_ITEMS = len(DATABASE) + 1  # the `db` test is collected once per mode


def test_nodb_selects_pure_tests_and_no_database_test() -> None:
    collect = ["--collect-only", "-q", "-p", "no:cacheprovider", "-m", "nodb"]
    res = subprocess.run(
        [sys.executable, "-m", "pytest", *collect, *PURE, *DATABASE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    selected = [line for line in res.stdout.splitlines() if "::" in line]
    assert selected == PURE
    total = len(PURE) + DATABASE_ITEMS
    assert f"{len(PURE)}/{total} tests collected ({DATABASE_ITEMS} deselected)" in res.stdout
