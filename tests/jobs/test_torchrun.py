"""Training under torchrun (2 CPU processes, gloo): one run row, rank 0 alone writes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import tiny_run_toml
from xlbench.store.store import Store


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ddp_two_processes_single_run_row(tiny_model, tmp_path):
    exp = tiny_run_toml(tmp_path / "ddp.toml", tiny_model, steps=40, name="ddp", batch_size=16, val_every=20,
                        checkpoint_every=20)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
           "--master-port", str(free_port()), "-m", "xlbench", "run", "--headless", "--config", str(exp)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr[-3000:]
    store = Store()
    runs = store.list_runs()
    assert len(runs) == 1 and runs[0].status == "finished" and runs[0].kind == "train"
    points = store.train_points(runs[0].id, split="train")
    assert [p.step for p in points] == list(range(1, 41))  # written once per step, by rank 0 only
    assert len(store.train_points(runs[0].id, split="val")) == 2
    assert [c.step for c in [store.last_checkpoint(runs[0].id)]] == [40]
    losses = [p.loss for p in points]
    assert np.mean(losses[-10:]) < np.mean(losses[:10])
    assert store.metrics(runs[0].id)


@pytest.mark.slow
def test_a_queued_run_executed_by_workers_under_torchrun(tiny_model, tmp_path):
    """What a multi-GPU Slurm job runs: `torchrun ... -m xlbench worker RUN`. Rank 0 claims and
    writes; after training, every rank encodes its share of the evaluation."""
    exp = tiny_run_toml(tmp_path / "ddp.toml", tiny_model, steps=20, name="ddp-worker", batch_size=16, val_every=0,
                        checkpoint_every=10)
    queued = subprocess.run([sys.executable, "-m", "xlbench", "sweep", "--config", str(exp), "--seeds", "3"],
                            capture_output=True, text=True, timeout=300)
    assert queued.returncode == 0, queued.stderr
    run_id = Store().list_runs()[0].id
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
           "--master-port", str(free_port()), "-m", "xlbench", "worker", str(run_id)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr[-3000:]
    store = Store()
    assert [r.status for r in store.list_runs()] == ["finished"]
    assert [p.step for p in store.train_points(run_id, split="train")] == list(range(1, 21))
    events = [e.message for e in store.events(run_id)]
    assert any(m.startswith("sharded evaluation: rank 1 of 2") for m in events), events
    assert store.metrics(run_id)
