"""Where xlbench keeps its state: the workspace, its database and its caches.

The workspace is ``$XLBENCH_HOME`` or the current directory. Inside it, all run-time state:
``db/xlbench.sqlite`` (default database), ``db/logs/`` (background workers' output), ``cache/``
(embeddings, built models, downloads) and ``runs/`` (checkpoints and fine-tuned models). When the
workspace is the source checkout, .gitignore covers each of them (tests/test_paths.py checks it).
"""

from __future__ import annotations

import os
from pathlib import Path


def workspace() -> Path:
    return Path(os.environ.get("XLBENCH_HOME") or os.getcwd()).resolve()


def default_db_url() -> str:
    return f"sqlite:///{workspace() / 'db' / 'xlbench.sqlite'}"


def cache_dir(*parts: str) -> Path:
    root = Path(os.environ.get("XLBENCH_CACHE") or workspace() / "cache")
    return root.joinpath(*parts)


def logs_dir(*, create: bool = True) -> Path:
    """Where background workers write their output (``run-<id>.log``), created on demand."""
    folder = workspace() / "db" / "logs"
    if create:
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def runs_dir() -> Path:
    """Checkpoints and fine-tuned models, one ``run-<id>`` folder per training run."""
    return workspace() / "runs"


def run_dir(run_id: int) -> Path:
    """A run's own folder in this workspace (checkpoints, model, tracker files); never a stored path."""
    return runs_dir() / f"run-{run_id}"


def plugins_dir(explicit: str | None = None) -> Path:
    return Path(explicit or os.environ.get("XLBENCH_PLUGINS_DIR") or workspace() / "plugins")
