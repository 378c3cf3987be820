"""The headless core never pulls in the terminal app, and `--help` stays light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import xlbench

PACKAGE = Path(xlbench.__file__).parent


def test_headless_modules_do_not_import_textual():
    code = ("import sys\n"
            "import xlbench.core.evaluate, xlbench.core.train, xlbench.core.compare, xlbench.runs.jobs.training\n"
            "import xlbench.runs.jobs.evaluation, xlbench.runs.worker, xlbench.runs.queue, xlbench.store.store, xlbench.compare_tables\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'textual_plotext')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_no_module_outside_tui_imports_textual():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if "tui" in path.relative_to(PACKAGE).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(n.split(".")[0] in ("textual", "textual_plotext") or n.startswith("xlbench.tui") for n in names):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    # the CLI may open the app, lazily, inside the two commands that do
    assert sorted(offenders) == sorted(o for o in offenders if o.startswith(("cli.py", "commands/training.py"))), offenders


def test_every_package_is_listed_for_non_editable_installs():
    import tomllib

    listed = set(tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.relative_to(PACKAGE.parent).parts[:-1]) for p in PACKAGE.rglob("__init__.py")}
    assert found <= listed, found - listed
