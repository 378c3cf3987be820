"""Run-time state stays out of the source tree: every folder xlbench writes in a workspace is
ignored by git when the workspace is the checkout itself (the README's main command runs there)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import REPO
from xlbench import paths


@pytest.mark.skipif(shutil.which("git") is None or not (REPO / ".git").exists(), reason="needs a git checkout")
def test_every_state_path_is_ignored_in_the_checkout(monkeypatch):
    monkeypatch.setenv("XLBENCH_HOME", str(REPO))
    monkeypatch.delenv("XLBENCH_CACHE", raising=False)
    state = [
        paths.default_db_url().removeprefix("sqlite:///"),
        paths.default_db_url().removeprefix("sqlite:///") + "-wal",
        paths.logs_dir(create=False) / "run-1.log",
        paths.cache_dir("embeddings", "abc", "x.vecs.npy"),
        paths.cache_dir("models", "multilingual-e5-small", "model.safetensors"),
        paths.runs_dir() / "run-1" / "checkpoint-00010" / "model.safetensors",
    ]
    rel = [str(p).removeprefix(str(REPO) + "/") for p in map(str, state)]
    out = subprocess.run(["git", "-C", str(REPO), "check-ignore", "--no-index", *rel], capture_output=True, text=True)
    assert sorted(out.stdout.split()) == sorted(rel), f"not ignored: {sorted(set(rel) - set(out.stdout.split()))}"
    # the migrations beside the database file stay tracked
    tracked = subprocess.run(["git", "-C", str(REPO), "check-ignore", "--no-index", "db/migrations/env.py"],
                             capture_output=True, text=True)
    assert tracked.returncode == 1
