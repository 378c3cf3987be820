"""Fine-tuning end to end on a tiny model: every built-in sampler lowers the loss and improves
held-out retrieval; an interrupted run resumed from its checkpoint ends exactly like an
uninterrupted one."""

from __future__ import annotations

import json

import numpy as np
import pytest

from xlbench.config import RunConfig
from xlbench.core.progress import Reporter
from xlbench.errors import Cancelled, ConfigError
from xlbench.runs.jobs import training
from xlbench.store.results import report_from_rows
from xlbench.runs.worker import execute

LANGS = ["de", "en", "es"]


def tiny_config(model, sampler: str, steps: int, **over) -> RunConfig:
    data = {
        "name": f"tiny {sampler}",
        "model": {"model": str(model), "max_seq_length": 64},
        "data": {"kind": "xquad-r", "articles": "0:36", "languages": LANGS},
        "train": {"batch_size": 16, "max_steps": steps, "lr": 1e-3, "warmup_steps": 10, "val_share": 0.1,
                  "val_every": 50, "checkpoint_every": 0, "seed": 7},
        "sampler": {"name": sampler},
        "eval": {"datasets": [{"name": "xquad-r"}], "articles": "36:48", "languages": LANGS, "before": True,
                 "candidate_text": "sentence", "model_batch_size": 64},
    }
    for key, value in over.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return RunConfig.model_validate(data)


def family_maps(store, run_id):
    report = report_from_rows(store.metrics(run_id))[0]
    return {family: report["summary"][family]["map"] for family in ("mono", "cross", "multi")}


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["monolingual", "crosslingual", "hybrid"])
def test_each_sampler_lowers_loss_and_improves_heldout_retrieval(store, tiny_model, sampler):
    config = tiny_config(tiny_model, sampler, steps=300)
    prepared = training.prepare(config)
    run = store.create_run(kind="train", name=config.name, config=config.model_dump())
    execute(store, run.id, lambda rep: training.run(store, run.id, prepared, rep))
    assert store.get_run(run.id).status == "finished"
    losses = [p.loss for p in store.train_points(run.id, split="train")]
    assert len(losses) == 300 and [p.step for p in store.train_points(run.id, split="train")] == list(range(1, 301))
    assert np.mean(losses[-50:]) < 0.6 * np.mean(losses[:50]), (np.mean(losses[:50]), np.mean(losses[-50:]))
    assert store.train_points(run.id, split="val")
    before = store.children(run.id)[0]
    b, a = family_maps(store, before.id), family_maps(store, run.id)
    for family in ("mono", "cross", "multi"):
        assert a[family] > b[family] + 0.02, (family, b, a)
    model = store.models()[-1]
    assert model.name == f"run-{run.id}" and (training.run_dir(run.id) / "model" / "modules.json").exists()
    speed = json.loads(store.get_run(run.id).env_json)["throughput"]  # after the first read: steps 2–300
    assert speed["steps"] == 299 and speed["samples_per_s"] > 0 and speed["tflops"] > 0 and speed["mfu"] is None
    assert any(e.message.startswith("throughput over the last 299 steps: ") and "TFLOP/s" in e.message
               for e in store.events(run.id))


class StopAt(Reporter):
    """Asks the trainer to stop once `step` steps are done (as a cancel request would)."""

    def __init__(self, step: int) -> None:
        self.step, self.done = step, 0

    def advance(self, done, total=None):
        self.done = done

    def cancelled(self) -> bool:
        return self.done >= self.step


@pytest.mark.slow
def test_resumed_run_ends_exactly_like_an_uninterrupted_one(store, tiny_model):
    over = {"train": {"checkpoint_every": 20, "val_every": 20}, "eval": {"before": False}}
    config = tiny_config(tiny_model, "hybrid", steps=60, **over)
    prepared = training.prepare(config)

    straight = store.create_run(kind="train", name="straight", config=config.model_dump())
    execute(store, straight.id, lambda rep: training.run(store, straight.id, prepared, rep))

    broken = store.create_run(kind="train", name="interrupted", config=config.model_dump())
    with pytest.raises(Cancelled):
        execute(store, broken.id, lambda rep: training.run(store, broken.id, prepared, rep), reporter=StopAt(30))
    assert store.get_run(broken.id).status == "cancelled"
    assert store.last_checkpoint(broken.id).step == 30
    store.requeue(broken.id)
    execute(store, broken.id, lambda rep: training.run(store, broken.id, training.prepare(config), rep, resume=True))
    assert store.get_run(broken.id).status == "finished"

    steps = lambda run: [(p.step, p.loss) for p in store.train_points(run, split="train")]  # noqa: E731
    assert [s for s, _ in steps(broken.id)] == list(range(1, 61))
    np.testing.assert_allclose([loss for _, loss in steps(broken.id)], [loss for _, loss in steps(straight.id)], rtol=0, atol=1e-6)
    a = {(m.dataset, m.setting, m.query_lang, m.corpus_lang, m.metric): m.value for m in store.metrics(straight.id)}
    b = {(m.dataset, m.setting, m.query_lang, m.corpus_lang, m.metric): m.value for m in store.metrics(broken.id)}
    assert a.keys() == b.keys()
    for key in a:
        assert b[key] == pytest.approx(a[key], abs=1e-9), key


def test_overlap_with_evaluation_is_refused(tiny_model):
    config = tiny_config(tiny_model, "hybrid", steps=10, data={"articles": "30:40"})
    with pytest.raises(ConfigError, match=r"training questions also occur in the evaluation sets .* --allow-overlap"):
        training.prepare(config)
    allowed = tiny_config(tiny_model, "hybrid", steps=10, data={"articles": "30:40"}, allow_overlap=True)
    assert sum(training.prepare(allowed).overlap.values()) > 0


def test_unknown_sampler_and_option_are_one_line(tiny_model):
    with pytest.raises(Exception, match=r"no sampler plugin named 'hybird'; did you mean 'hybrid'"):
        training.prepare(tiny_config(tiny_model, "hybird", steps=10))
    bad = tiny_config(tiny_model, "hybrid", steps=10)
    bad.sampler = type(bad.sampler).model_validate({"name": "hybrid", "alpah": 0.3})
    with pytest.raises(ConfigError, match=r"no option alpah \(valid: alpha, mode, weights\)"):
        training.prepare(bad)


def test_a_run_resumed_after_training_keeps_its_saved_model_files_and_so_its_embedding_cache(tmp_path, tiny_model):
    """Run 7 of the α study was resumed during its evaluation: the final model was written again, its
    files got new dates, the fingerprint (the cache key) changed, and 26,034 texts were encoded anew."""
    from sentence_transformers import SentenceTransformer

    from xlbench.core.encoders.st import _folder_fingerprint
    from xlbench.runs.jobs.training import save_final

    model = SentenceTransformer(str(tiny_model), device="cpu")
    final = tmp_path / "run-1" / "model"
    final.parent.mkdir()
    assert save_final(final, lambda d: model.save(str(d))) is True
    before = _folder_fingerprint(final)
    assert save_final(final, lambda d: model.save(str(d))) is False  # the same model again: nothing rewritten
    assert _folder_fingerprint(final) == before
    import torch

    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    assert save_final(final, lambda d: model.save(str(d))) is True  # other weights: written
    assert _folder_fingerprint(final) != before
    assert not [p for p in final.parent.iterdir() if p.name.startswith(".compare-")]
