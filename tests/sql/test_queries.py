"""The named queries (a queries.sql per package, vigil.queries): every file loads, every
query is valid against the migrated schema, every name the code looks up is defined and
every defined query is used. Each check also proves, on a planted mistake, that it fails."""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from api.core import pgcopy
from tests.support.sql import Conn
from vigil import PROJECT_ROOT
from vigil.queries import Queries, QueryFileError, load_queries, parse_queries

PACKAGES = ("api", "notifier", "prober", "vigil")
"""Where Python talks to the database; bench/ is scanned for lookups as well."""
SCANNED = (*PACKAGES, "bench")
PLACEHOLDER = re.compile(r"%\((?P<name>\w+)\)s|%s|%%")
UTILITY = re.compile(r"\s*(copy|listen)\b", re.IGNORECASE)
SETUP = {"journal_stage_copy": ("journal_stage",), "requests_stage_copy": ("requests_stage",)}
"""Queries to run first, in the same transaction (the staging table is per session)."""
TIMESCALE_ONLY = {
    "points_copy_decimal": "create table vigil.points_data (series_id bigint not null,"
    " at timestamptz not null, m bigint, e smallint, f double precision, r double precision)",
}
"""Queries of a table that exists in TimescaleDB mode only (this lane is portable; the
TimescaleDB lane's server takes no COPY): the table as sql/60_series.sql creates it there,
made in the same rolled-back transaction (tests/series/test_decimal_values.py writes through
it into the real one)."""


def query_files() -> list[Path]:
    return sorted(path for pkg in PACKAGES for path in (PROJECT_ROOT / pkg).rglob("queries.sql"))


def package_of(path: Path) -> str:
    """The dotted package a queries.sql file belongs to (api/auth/queries.sql -> api.auth)."""
    return ".".join(path.parent.relative_to(PROJECT_ROOT).parts)


def numbered(text: str) -> str:
    """psycopg placeholders as the server's: %s -> $1, $2...; %(x)s -> one $n per name."""
    names: dict[str, int] = {}
    count = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal count
        if match[0] == "%%":
            return "%"
        key = match["name"] or f"#{count}"
        if key not in names:
            count += 1
            names[key] = count
        return f"${names[key]}"

    return PLACEHOLDER.sub(replace, text)


def check_query(conn: Conn, queries: Mapping[str, str], name: str) -> None:
    """Has the server parse and analyse the query without running it: PREPARE, then
    DEALLOCATE; COPY and LISTEN (which cannot be prepared) run in a rolled-back transaction,
    COPY with an empty stream."""
    text = queries[name]
    if UTILITY.match(text):
        with conn.transaction(force_rollback=True):
            for setup in SETUP.get(name, ()):
                conn.execute(queries[setup])
            if name in TIMESCALE_ONLY:
                conn.execute(TIMESCALE_ONLY[name].encode())
            if text.lstrip().lower().startswith("copy"):
                with conn.cursor().copy(text) as copy:
                    if "format binary" in text.lower():
                        copy.write(pgcopy.stream(()))
            else:
                conn.execute(text)
        return
    conn.execute(sql.SQL("prepare vigil_named_query as ") + sql.SQL(numbered(text)))
    conn.execute("deallocate vigil_named_query")


def invalid_queries(conn: Conn, queries: Mapping[str, str]) -> list[str]:
    """`name: SQLSTATE message` for every query the server refuses."""
    problems = []
    for name in queries:
        try:
            check_query(conn, queries, name)
        except psycopg.Error as exc:
            problems.append(f"{name}: {exc.sqlstate} {str(exc).splitlines()[0]}")
    return problems


def lookups(source: str, filename: str = "<source>") -> Iterator[tuple[str, str | None, int]]:
    """(package, query name or None when not a literal, line) of every lookup in a module's
    source: a subscript of a name imported as `from PACKAGE import QUERIES [as ALIAS]`."""
    tree = ast.parse(source, filename)
    aliases = {
        alias.asname or alias.name: node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
        if alias.name == "QUERIES"
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
            package = aliases.get(node.value.id)
            if package is None:
                continue
            key = node.slice
            name = key.value if isinstance(key, ast.Constant) else None
            yield package, name if isinstance(name, str) else None, node.lineno


def lookup_problems(source: str, filename: str = "<source>") -> list[str]:
    problems = []
    for package, name, line in lookups(source, filename):
        path = PROJECT_ROOT.joinpath(*package.split("."), "queries.sql")
        if name is None:
            problems.append(f"{filename}:{line}: look queries up by a literal name")
        elif not path.exists():
            problems.append(f"{filename}:{line}: {package} has no queries.sql")
        elif name not in load_queries(path):
            problems.append(f"{filename}:{line}: no query {name!r} in {package}")
    return problems


def python_sources() -> list[Path]:
    return sorted(
        path
        for top in SCANNED
        for path in (PROJECT_ROOT / top).rglob("*.py")
        if "node_modules" not in path.parts
    )


def test_every_queries_file_loads_and_is_its_packages_queries() -> None:
    files = query_files()
    assert {package_of(p) for p in files} >= {
        "api.auth", "api.core", "api.heartbeats", "api.journal", "api.series", "api.uptime",
        "notifier", "prober", "vigil",
    }  # fmt: skip
    for path in files:
        loaded = load_queries(path)
        assert len(loaded) > 0, path
        package = importlib.import_module(package_of(path))
        assert isinstance(package.QUERIES, Queries), path
        assert dict(package.QUERIES) == dict(loaded), path


def test_every_named_query_is_valid_against_the_schema(conn: Conn) -> None:
    problems = [
        f"{package_of(path)}: {problem}"
        for path in query_files()
        for problem in invalid_queries(conn, load_queries(path))
    ]
    assert problems == []


def test_the_validity_check_fails_on_a_wrong_query(conn: Conn, tmp_path: Path) -> None:
    path = tmp_path / "queries.sql"
    path.write_text(
        "-- name: fine\nselect vigil.token_revoke(%s);\n\n"
        "-- name: wrong_column\nselect no_such_column from vigil.tokens where id = %(id)s;\n\n"
        "-- name: wrong_copy\ncopy vigil.no_such_table (a) from stdin (format binary);\n"
    )
    problems = invalid_queries(conn, load_queries(path))
    assert [p.split(":")[0] for p in problems] == ["wrong_column", "wrong_copy"]
    assert "42703" in problems[0] and "42P01" in problems[1]


def test_names_looked_up_in_code_are_defined_and_every_query_is_used() -> None:
    problems: list[str] = []
    used: set[tuple[str, str | None]] = set()
    for path in python_sources():
        source = path.read_text()
        filename = str(path.relative_to(PROJECT_ROOT))
        problems += lookup_problems(source, filename)
        used |= {(package, name) for package, name, _ in lookups(source, filename)}
    assert problems == []
    unused = [
        f"{package_of(path)}: {name}"
        for path in query_files()
        for name in load_queries(path)
        if (package_of(path), name) not in used
    ]
    assert unused == [], "remove the queries no code runs"


def test_the_lookup_check_fails_on_an_unknown_or_computed_name() -> None:
    source = (
        "from vigil import QUERIES as SHARED\n"
        "from api.core import QUERIES\n"
        "SHARED['token_list']\n"
        "SHARED['no_such_query']\n"
        "QUERIES[name]\n"
    )
    assert lookup_problems(source) == [
        "<source>:4: no query 'no_such_query' in vigil",
        "<source>:5: look queries up by a literal name",
    ]


def test_placeholders_become_the_servers_numbered_parameters() -> None:
    assert numbered("select %s, %s, 100%%") == "select $1, $2, 100%"
    assert numbered("where (%(a)s::text is null or x = %(a)s) and y = %(b)s") == (
        "where ($1::text is null or x = $1) and y = $2"
    )


def test_a_file_documents_its_queries_and_sends_only_the_sql() -> None:
    queries = parse_queries(
        "-- The file's own description.\n\n"
        "-- name: first\n-- What it does,\n-- on two lines.\nselect 1\n  from x;\n\n"
        "-- a note between blocks\n"
        "-- name: second\nselect %s;\n"
    )
    assert dict(queries) == {"first": "select 1\n  from x", "second": "select %s"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-- name: a\nselect 1;\n-- name: a\nselect 2;\n", ":3: query 'a' is already defined"),
        ("select 1;\n-- name: a\nselect 2;\n", ":1: SQL before the first `-- name: query_name`"),
        ("-- name: a\n-- only a comment\n-- name: b\nselect 1;\n", ":1: query 'a' has no SQL"),
        ("-- name:\nselect 1;\n", ":1: '' is not a query name"),
        ("-- name: Bad-Name\nselect 1;\n", ":1: 'Bad-Name' is not a query name"),
        ("-- name a\nselect 1;\n", ":1: write a heading as `-- name: query_name`"),
    ],
)  # fmt: skip
def test_a_malformed_file_is_refused_when_loaded(text: str, message: str) -> None:
    with pytest.raises(QueryFileError, match=re.escape(message)):
        parse_queries(text)


def test_an_unknown_name_says_which_file_and_what_it_has(tmp_path: Path) -> None:
    path = tmp_path / "queries.sql"
    path.write_text("-- name: one\nselect 1;\n-- name: two\nselect 2;\n")
    queries = load_queries(path)
    with pytest.raises(
        KeyError, match=r"no query named 'three' in .*queries\.sql \(it has: one, two\)"
    ):
        queries["three"]
    with pytest.raises(TypeError):
        queries["one"] = "select 3"  # type: ignore[index]
