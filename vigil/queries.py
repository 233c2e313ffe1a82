"""Named SQL queries: the statements a package runs, kept in its `queries.sql`.

A file is a sequence of blocks, each headed by a name line and optionally followed by
comment lines that say what the query does:

    -- name: token_revoke
    -- Revokes the active token of that name; true when there was one.
    select vigil.token_revoke(%s);

Comments and blank lines before the first block describe the file. Each package loads its
file once, at import: `QUERIES = load_queries(Path(__file__).with_name("queries.sql"))`,
and runs `conn.execute(QUERIES["token_revoke"], (name,))`. Parameters are psycopg's
(`%s`, `%(name)s`; a literal percent sign is `%%`). The SQL text is sent as written, without
the documentation lines, the comments after the statement and a final semicolon (the
statement itself comes first: the PGlite test server recognises COPY by its first word).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType

NAME_LINE = re.compile(r"--\s*name\s*:\s*(?P<name>\S*)\s*")
"""A block's heading; the name must match QUERY_NAME."""
QUERY_NAME = re.compile(r"[a-z][a-z0-9_]*")


class QueryFileError(ValueError):
    """A queries file that cannot be used: a block without a name, a name given twice, a
    name without SQL. The message names the file and line."""


class Queries(Mapping[str, str]):
    """The named queries of one file, read-only: name -> SQL text."""

    def __init__(self, path: Path, queries: Mapping[str, str]) -> None:
        self.path = path
        self._queries = MappingProxyType(dict(queries))

    def __getitem__(self, name: str) -> str:
        try:
            return self._queries[name]
        except KeyError:
            raise KeyError(
                f"no query named {name!r} in {self.path} (it has: {', '.join(self._queries)})"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._queries)

    def __len__(self) -> int:
        return len(self._queries)

    def __repr__(self) -> str:
        return f"<Queries {self.path}: {len(self)} queries>"


def parse_queries(text: str, source: str = "<queries>") -> dict[str, str]:
    """Name -> SQL of every block in `text` (see the module documentation)."""
    queries: dict[str, str] = {}
    first_line: dict[str, int] = {}
    name: str | None = None
    body: list[str] = []
    in_doc = False

    def finish() -> None:
        if name is None:
            return
        while body and (not body[-1].strip() or body[-1].lstrip().startswith("--")):
            body.pop()  # blank lines and comments before the next heading belong to no query
        sql = "\n".join(body).strip().removesuffix(";").rstrip()
        if not sql:
            raise QueryFileError(f"{source}:{first_line[name]}: query {name!r} has no SQL")
        queries[name] = sql

    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        heading = NAME_LINE.fullmatch(stripped)
        if heading is None and re.match(r"--\s*name\b", stripped):
            raise QueryFileError(f"{source}:{number}: write a heading as `-- name: query_name`")
        if heading is not None:
            finish()
            name = heading["name"]
            if not QUERY_NAME.fullmatch(name):
                raise QueryFileError(
                    f"{source}:{number}: {name!r} is not a query name (lowercase, digits, _)"
                )
            if name in first_line:
                raise QueryFileError(
                    f"{source}:{number}: query {name!r} is already defined "
                    f"on line {first_line[name]}"
                )
            first_line[name] = number
            body, in_doc = [], True
        elif name is None:
            if stripped and not stripped.startswith("--"):
                raise QueryFileError(
                    f"{source}:{number}: SQL before the first `-- name: query_name` heading"
                )
        elif in_doc and stripped.startswith("--"):
            continue  # the query's documentation
        else:
            in_doc = False
            body.append(line.rstrip())
    finish()
    return queries


def load_queries(path: Path) -> Queries:
    """The named queries of the file at `path`; QueryFileError when it is malformed."""
    return Queries(path, parse_queries(path.read_text(encoding="utf-8"), str(path)))
