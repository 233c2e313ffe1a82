"""The SQL recipes of docs/dba.md, read from the guide itself, so the tests run what the
guide prints."""

from __future__ import annotations

import re
from pathlib import Path

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "dba.md"


def guide_statements(section: str) -> list[str]:
    """The SQL statements of the ```sql blocks of a `## ` section (its `###` subsections
    included), comment lines and trailing comments left out."""
    text = GUIDE.read_text()
    start = text.index(section)
    end = text.find("\n## ", start + len(section))
    statements: list[str] = []
    for block in re.findall(r"```sql\n(.*?)```", text[start:end], re.S):
        code = "\n".join(
            line.split(" -- ")[0].rstrip()
            for line in block.splitlines()
            if not line.lstrip().startswith("--")
        )
        statements += [s.strip() for s in code.split(";") if s.strip()]
    return statements


def recipe(section: str, *words: str) -> str:
    """The one statement of the section that contains every word."""
    found = [s for s in guide_statements(section) if all(word in s for word in words)]
    assert len(found) == 1, (words, found)
    return found[0]
