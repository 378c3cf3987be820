"""Evaluation sharded across torchrun ranks (2 CPU processes, gloo): each rank encodes its share of
the unique texts into the embedding cache, rank 0 scores and writes; the metrics are those of one
process, and a rank killed mid-encode leaves its flushed vectors for the next attempt."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.helpers import wait_for, xlbench
from tests.jobs.test_torchrun import free_port
from xlbench.store.store import Store

LANGS = "ar,de,en,es,zh"


def torchrun_eval(model: Path, json_out: Path, env: dict, *, langs: str = LANGS) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
           "--master-port", str(free_port()), "-m", "xlbench", "eval", "-m", str(model), "-l", langs,
           "--json", str(json_out)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1", **env})


def cache_keys(home: Path) -> int:
    return sum(1 for _ in (home / "cache" / "embeddings").rglob("*.sum.json")) if (home / "cache").exists() else 0


def rank_process(launcher: subprocess.Popen, rank: int) -> psutil.Process | None:
    for child in psutil.Process(launcher.pid).children(recursive=True):
        try:
            if child.environ().get("RANK") == str(rank) and "xlbench" in " ".join(child.cmdline()):
                return child
        except psutil.Error:
            continue
    return None


@pytest.mark.slow
def test_sharded_evaluation_matches_one_process_and_resumes_after_a_killed_rank(tiny_model, tmp_path, workspace):
    # one process, in its own workspace (its own cache)
    single_home = tmp_path / "single"
    single_home.mkdir()
    t0 = time.perf_counter()
    single = xlbench("eval", "-m", str(tiny_model), "-l", LANGS, "--json", str(tmp_path / "single.json"),
                     env={"XLBENCH_HOME": str(single_home), "OMP_NUM_THREADS": "1"})
    single_seconds = time.perf_counter() - t0
    assert single.returncode == 0, single.stderr

    # two ranks; rank 1 is killed (kill -9) once the cache holds a flushed shard of its work
    sharded_home = tmp_path / "sharded"
    sharded_home.mkdir()
    env = {"XLBENCH_HOME": str(sharded_home), "XLBENCH_CACHE_FLUSH_SECONDS": "2"}
    first = torchrun_eval(tiny_model, tmp_path / "first.json", env)
    wait_for(lambda: cache_keys(sharded_home) >= 2, timeout=300, interval=0.2)
    victim = wait_for(lambda: rank_process(first, 1), timeout=30)
    victim.send_signal(signal.SIGKILL)
    first.communicate(timeout=300)
    assert first.returncode != 0 and not (tmp_path / "first.json").exists()
    kept = cache_keys(sharded_home)
    assert kept >= 2

    t0 = time.perf_counter()
    second = torchrun_eval(tiny_model, tmp_path / "second.json", env)
    out, err = second.communicate(timeout=600)
    sharded_seconds = time.perf_counter() - t0
    assert second.returncode == 0, err[-3000:]
    assert json.loads((tmp_path / "second.json").read_text()) == json.loads((tmp_path / "single.json").read_text())

    store = Store(f"sqlite:///{sharded_home / 'db' / 'xlbench.sqlite'}")
    runs = sorted(store.list_runs(), key=lambda r: r.id)
    assert [r.status for r in runs][-1] == "finished" and len([r for r in runs if r.status == "finished"]) == 1
    events = [e.message for e in store.events(runs[-1].id)]
    share = next(m for m in events if m.startswith("sharded evaluation:"))
    cached = next(m for m in events if "stored" in m and "from cache" in m)
    print(f"one process: {single_seconds:.1f} s; 2 ranks after a killed attempt ({kept} cache shards kept): "
          f"{sharded_seconds:.1f} s; {share}; {cached}")
    assert "encoded 0 texts (" in cached  # rank 0 scored from the cache alone
    store.dispose()
