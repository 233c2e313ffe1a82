"""Line and branch coverage per package from the data `make test` collected (.coverage).

coverage.py's total with ``branch = true`` counts lines and branches together, and its
``fail_under`` (pyproject.toml) applies to that total. This prints lines and branches
apart, per package and in total, and exits 1 when the total line coverage is under
``--fail-under-lines``::

    python -m tests.support.coverage_summary --fail-under-lines 93
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import coverage

from vigil import PROJECT_ROOT


def figures(data_file: Path | None = None) -> dict[str, tuple[int, int, int, int]]:
    """Per package: (statements, missed statements, branches, missed branches)."""
    # data_file=None would mean no file at all: the default is .coverage in the cwd.
    cov = coverage.Coverage(data_file=str(data_file or ".coverage"))
    cov.load()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "coverage.json"
        cov.json_report(outfile=str(out))  # the numbers `coverage report` prints, per file
        files = json.loads(out.read_text())["files"]
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for name, file in files.items():
        path = Path(name)
        package = (path.relative_to(PROJECT_ROOT) if path.is_absolute() else path).parts[0]
        n = file["summary"]
        row = totals[package]
        row[0] += n["num_statements"]
        row[1] += n["missing_lines"]
        row[2] += n.get("num_branches", 0)
        row[3] += n.get("missing_branches", 0)
    return {package: (a, b, c, d) for package, (a, b, c, d) in sorted(totals.items())}


def percent(total: int, missed: int) -> float:
    return 100.0 * (total - missed) / total if total else 100.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fail-under-lines", type=float, default=0.0)
    parser.add_argument("--data-file", type=Path, default=None)
    args = parser.parse_args(argv)
    rows = figures(args.data_file)
    if not rows:
        print("no coverage data: run pytest with --cov first", file=sys.stderr)
        return 1
    total = [sum(r[i] for r in rows.values()) for i in range(4)]
    print(f"{'package':<10} {'lines':>7} {'branches':>9}")
    for package, (stmts, miss, branches, bmiss) in [*rows.items(), ("total", tuple(total))]:
        print(f"{package:<10} {percent(stmts, miss):6.1f}% {percent(branches, bmiss):8.1f}%")
    lines = percent(total[0], total[1])
    if lines < args.fail_under_lines:
        print(f"line coverage {lines:.1f}% is under {args.fail_under_lines:g}%", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
