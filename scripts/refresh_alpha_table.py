"""Re-derive the α study's table in docs/results.md from the committed record.

Imports results/alpha-study.json into an empty database in a temporary workspace, runs
``xlbench sweep show 1 --format md`` there and puts its output, unchanged, between the
``<!-- alpha-table:start … -->`` and ``<!-- alpha-table:end -->`` markers of docs/results.md
(tests/compare/test_alpha_study_record.py checks that every row it prints is in the document).
The prose around the table (the verdict) is written by a person from what the table says.

    python scripts/refresh_alpha_table.py [--check]   # --check: exit 1 if the document would change
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "results" / "alpha-study.json"
DOC = ROOT / "docs" / "results.md"
BLOCK = re.compile(r"(<!-- alpha-table:start[^>]*-->\n)(.*?)(<!-- alpha-table:end -->)", re.S)


def sweep_markdown() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if k not in ("XLBENCH_DB", "COLUMNS")}
        env["XLBENCH_HOME"] = tmp
        for args in (["import", str(RECORD)], ["sweep", "show", "1", "--format", "md"]):
            res = subprocess.run([sys.executable, "-m", "xlbench", *args], capture_output=True, text=True, env=env)
            if res.returncode != 0:
                sys.exit(f"xlbench {' '.join(args)} failed: {res.stderr.strip()}")
        return res.stdout.strip() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    text = DOC.read_text(encoding="utf-8")
    if not BLOCK.search(text):
        sys.exit(f"{DOC}: no alpha-table markers")
    new = BLOCK.sub(lambda m: m.group(1) + sweep_markdown() + m.group(3), text, count=1)
    if new == text:
        print(f"{DOC.name}: the table already matches the record")
        return 0
    if args.check:
        print(f"{DOC.name}: the table differs from the record")
        return 1
    DOC.write_text(new, encoding="utf-8")
    print(f"{DOC.name}: table re-derived from {RECORD.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
