"""Sweeps from the queue: α × seeds on the tiny model, a killed queue resumed without running
anything twice, and `sweep show` drawing the curve."""

from __future__ import annotations

import json
import signal

import pytest

from tests.helpers import start_xlbench, tiny_run_toml, wait_for, xlbench
from xlbench.store.store import Store


def base_toml(tmp_path, tiny_model, steps: int = 12):
    return tiny_run_toml(tmp_path / "base.toml", tiny_model, steps=steps, name="sweep base", articles="0:20",
                         eval_articles="40:48", eval_langs=("de", "en"), batch_size=8, val_every=0, checkpoint_every=4)


def test_bad_grid_value_is_rejected_before_anything_is_queued(tmp_path, tiny_model, workspace):
    res = xlbench("sweep", "--config", str(base_toml(tmp_path, tiny_model)), "--grid", "sampler.alpha=0,1.5")
    assert res.returncode != 0 and "sampler.alpha=1.5" in res.stderr and "must lie in [0.0, 1.0]" in res.stderr
    assert not (workspace / "db" / "xlbench.sqlite").exists() or not Store().list_runs()


@pytest.mark.slow
def test_sweep_extend_adds_only_missing_combinations_under_the_sweeps_own_config(tmp_path, tiny_model, workspace):
    """Seeds 3–4 at two of three α values: four runs queued on the base config, the grid widened,
    the six runs it held kept; asked again, nothing is queued; a key the sweep lacks is one line."""
    res = xlbench("sweep", "--config", str(base_toml(tmp_path, tiny_model)), "--grid", "sampler.alpha=0,0.5,1",
                  "--seeds", "1,2", "--name", "alpha")
    assert res.returncode == 0, res.stderr
    store = Store()
    before = store.sweep(1)[1]
    res = xlbench("sweep", "extend", "1", "--grid", "sampler.alpha=0,1", "--seeds", "2,3,4")
    assert res.returncode == 0, res.stderr
    assert "queued 4 more runs" in res.stdout and "6 it held are kept" in res.stdout
    sweep, runs = store.sweep(1)
    assert json.loads(sweep.grid_json) == {"sampler.alpha": [0, 0.5, 1], "train.seed": [1, 2, 3, 4]}
    added = runs[len(before):]
    assert [r.name for r in added] == [f"alpha: sampler.alpha={a}, train.seed={s}" for a in (0, 1) for s in (3, 4)]
    for r in added:  # the base config of the sweep, only the grid keys changed
        twin = json.loads(before[0].config_json)
        config = json.loads(r.config_json)
        for key in ("model", "data", "eval", "plugins_dir", "threads"):
            assert config[key] == twin[key]
        assert {k: v for k, v in config["train"].items() if k != "seed"} == \
            {k: v for k, v in twin["train"].items() if k != "seed"}
    again = xlbench("sweep", "extend", "1", "--grid", "sampler.alpha=0,1", "--seeds", "2,3,4")
    assert again.returncode == 0 and "nothing queued" in again.stdout and len(store.sweep(1)[1]) == 10
    bad = xlbench("sweep", "extend", "1", "--grid", "train.lr=1e-4")
    assert bad.returncode != 0 and "no grid key train.lr" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    assert len(store.sweep(1)[1]) == 10


@pytest.mark.slow
def test_sweep_runs_from_queue_survives_killed_queue_and_shows_curve(tmp_path, tiny_model):
    res = xlbench("sweep", "--config", str(base_toml(tmp_path, tiny_model)), "--grid", "sampler.alpha=0,0.5,1",
                  "--seeds", "1,2", "--name", "alpha")
    assert res.returncode == 0, res.stderr
    store = Store()
    sweep, runs = store.sweep(1)
    assert len(runs) == 6 and all(r.status == "queued" and r.sweep_id == 1 for r in runs)
    assert {(json.loads(r.config_json)["sampler"]["alpha"], json.loads(r.config_json)["train"]["seed"]) for r in runs} == \
        {(a, s) for a in (0, 0.5, 1) for s in (1, 2)}

    queue = start_xlbench("queue", "--sweep", "1", "--workers", "2")
    wait_for(lambda: sum(r.status == "finished" for r in store.sweep(1)[1]) >= 1, timeout=300)
    queue.send_signal(signal.SIGKILL)  # the queue dies; its workers (own sessions) finish their runs
    queue.wait(timeout=10)
    # the workers it had just started claim their rows (a row placed and not yet claimed would be
    # claimed by one worker anyway: the claim is one conditional UPDATE)
    wait_for(lambda: not [r for r in store.sweep(1)[1] if r.executor == "local" and r.status == "queued"], timeout=60)
    res = xlbench("sweep", "resume", "1", "--workers", "2", timeout=900)
    assert res.returncode == 0, res.stderr
    wait_for(lambda: all(r.status in ("finished", "failed", "cancelled", "lost") for r in store.sweep(1)[1]), timeout=300)
    runs = store.sweep(1)[1]
    assert all(r.status == "finished" for r in runs), [(r.id, r.status, r.error) for r in runs]
    for r in runs:  # nothing ran twice: one start, one finish, each step logged once
        messages = [e.message for e in store.events(r.id)]
        assert messages.count("run finished") == 1, messages
        assert [p.step for p in store.train_points(r.id, split="train")] == list(range(1, 13))

    show = xlbench("sweep", "show", "1")
    assert show.returncode == 0, show.stderr
    assert "mean ± 95 % CI over seeds" in show.stdout and "by sampler.alpha" in show.stdout
    assert "mono mAP" in show.stdout and "rank distance (lower is better)" in show.stdout  # the plotext curves


@pytest.mark.slow
def test_sweep_resume_after_every_process_died_continues_from_checkpoints(tmp_path, tiny_model):
    """A machine restart: the queue and the worker killed mid-training. `sweep resume` notices the
    dead worker (no waiting for the heartbeat timeout), continues it from its last checkpoint, and
    it ends with exactly the metrics of its uninterrupted twin (same config, same seed)."""
    import os

    toml = base_toml(tmp_path, tiny_model, steps=40)
    assert xlbench("sweep", "--config", str(toml), "--seeds", "1,1", "--name", "twins").returncode == 0
    store = Store()
    queue = start_xlbench("queue", "--sweep", "1", "--workers", "1")
    wait_for(lambda: (store.last_checkpoint(1) or None) and store.last_checkpoint(1).step >= 8, timeout=300, interval=0.05)
    worker = store.get_run(1).pid
    os.kill(worker, signal.SIGKILL)
    queue.send_signal(signal.SIGKILL)
    queue.wait(timeout=10)
    wait_for(lambda: not os.path.exists(f"/proc/{worker}") or open(f"/proc/{worker}/stat").read().split(")")[-1].split()[0] == "Z",
             timeout=10)
    assert store.get_run(1).status == "running" and store.get_run(2).status == "queued"
    res = xlbench("sweep", "resume", "1", timeout=900)
    assert res.returncode == 0, res.stderr
    assert "requeued 1 runs" in res.stdout
    first, twin = (store.get_run(i) for i in (1, 2))
    assert first.status == twin.status == "finished", [(r.id, r.status, r.error) for r in (first, twin)]
    messages = [e.message for e in store.events(1)]
    resumed = next(m for m in messages if m.startswith("resuming from the checkpoint at step"))
    assert int(resumed.rsplit(" ", 1)[-1]) >= 8 and messages.count("run finished") == 1
    assert [p.step for p in store.train_points(1, split="train")] == list(range(1, 41))
    values = lambda run_id: sorted((m.dataset, m.setting, m.query_lang, m.corpus_lang, m.metric, m.value)  # noqa: E731
                                   for m in store.metrics(run_id))
    assert values(1) == values(2)


@pytest.mark.slow
def test_queue_never_runs_a_run_twice_when_two_queues_race(tmp_path, tiny_model):
    assert xlbench("sweep", "--config", str(base_toml(tmp_path, tiny_model, steps=4)), "--seeds", "1,2,3").returncode == 0
    a = start_xlbench("queue", "--workers", "2")
    b = start_xlbench("queue", "--workers", "2")
    a.communicate(timeout=600)
    b.communicate(timeout=600)
    store = Store()
    runs = store.list_runs()
    assert all(r.status == "finished" for r in runs), [(r.id, r.status, r.error, [e.message for e in store.events(r.id)])
                                                       for r in runs if r.status != "finished"]
    for r in runs:
        assert [e.message for e in store.events(r.id)].count("run finished") == 1
