"""A fine-tuned model's card: written when the run finishes, parsed back by huggingface_hub with
eval results equal to the stored metric rows, rewritten by `xlbench models card RUN`, and the folder
still a sentence-transformers model."""

from __future__ import annotations

import pytest

from tests.helpers import tiny_run_toml, xlbench


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_model):
    import os

    ws = tmp_path_factory.mktemp("card-ws")
    toml = tiny_run_toml(ws / "run.toml", tiny_model, steps=4, eval_langs=("de", "en"), val_every=0)
    env = {"XLBENCH_HOME": str(ws), "XLBENCH_DB": ""}
    res = xlbench("run", "--headless", "--config", str(toml), env=env)
    assert res.returncode == 0, res.stderr
    os.environ.pop("XLBENCH_DB", None)
    return ws, res.stdout


def _store(ws):
    from xlbench.store.store import Store

    return Store(f"sqlite:///{ws}/db/xlbench.sqlite")


@pytest.mark.slow
def test_card_parses_back_with_the_stored_numbers(finished):
    from huggingface_hub import ModelCard

    ws, _ = finished
    store = _store(ws)
    run = next(r for r in store.list_runs() if r.kind == "train")
    folder = ws / "runs" / f"run-{run.id}" / "model"
    card = ModelCard.load(folder / "README.md")
    results = card.data.eval_results
    stored = {}
    for m in store.metrics(run.id):
        if m.setting == "bias":
            if m.query_lang != "others":
                stored[(m.dataset, f"bias:{m.query_lang}", m.metric)] = m.value
        elif m.query_lang == "macro":
            stored[(m.dataset, f"{m.setting}:macro", m.metric)] = m.value
        elif m.query_lang != "micro":
            stored[(m.dataset, f"{m.setting}:{m.query_lang}-{m.corpus_lang}", m.metric)] = m.value
    got = {(r.dataset_type, r.dataset_config, r.metric_type): r.metric_value for r in results}
    assert got == stored  # every stored number, exactly, and nothing else
    assert card.data.library_name == "sentence-transformers" and set(card.data.language) == {"de", "en"}
    text = card.text
    for needle in ("## Training", "hybrid", "## Results (zero-shot)", "before", "## Hardware", "xlbench run --headless",
                   "--set train.seed="):
        assert needle in text, needle
    # no local path of this machine in a card meant for the Hub: the base model by its folder name
    assert str(ws) not in card.content and "/tmp" not in card.content and "<local folder model>" in text


@pytest.mark.slow
def test_card_command_rewrites_it_and_the_folder_still_loads(finished, tmp_path):
    from sentence_transformers import SentenceTransformer

    ws, _ = finished
    store = _store(ws)
    run = next(r for r in store.list_runs() if r.kind == "train")
    folder = ws / "runs" / f"run-{run.id}" / "model"
    (folder / "README.md").write_text("stale")
    env = {"XLBENCH_HOME": str(ws)}
    res = xlbench("model", "card", str(run.id), env=env)
    assert res.returncode == 0, res.stderr
    assert (folder / "README.md").read_text().startswith("---\n")
    assert SentenceTransformer(str(folder), device="cpu").encode(["hallo"]).shape[0] == 1
    res = xlbench("models", "card", str(run.id), "-o", str(tmp_path / "card.md"), env=env)
    assert res.returncode == 0 and (tmp_path / "card.md").read_text() == (folder / "README.md").read_text()
    queued = store.create_run(kind="train", name="not yet", config={})
    res = xlbench("models", "card", str(queued.id), env=env)
    assert res.returncode != 0 and "needs a finished training run" in res.stderr


@pytest.mark.slow
def test_push_checks_offline_in_one_line_and_dry_run_lists_a_loadable_folder(finished):
    from huggingface_hub import ModelCard
    from sentence_transformers import SentenceTransformer

    ws, _ = finished
    run = next(r for r in _store(ws).list_runs() if r.kind == "train" and r.status == "finished")
    env = {"XLBENCH_HOME": str(ws), "HF_HUB_OFFLINE": "1", "HF_TOKEN": "hf_secretsecretsecret"}
    res = xlbench("push", str(run.id), "lab/e5-hybrid", "--dry-run", env=env)
    assert res.returncode == 0, res.stderr
    assert "README.md" in res.stdout and "model.safetensors" in res.stdout
    folder = ws / "runs" / f"run-{run.id}" / "model"
    assert SentenceTransformer(str(folder), device="cpu").encode(["hola"]).shape[0] == 1
    assert ModelCard.load(folder / "README.md").data.eval_results  # the card it would upload parses
    res = xlbench("push", str(run.id), "lab/e5-hybrid", env=env)
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert res.returncode != 0 and len(lines) == 1 and "cannot push run" in lines[0], res.stderr
    assert "hf_secret" not in res.stderr + res.stdout
    res = xlbench("push", str(run.id), "not a repo", env=env)
    assert res.returncode != 0 and "write it as owner/name" in res.stderr


def test_the_default_runs_card_in_docs_parses_back_with_the_printed_numbers():
    """docs/model-card-default-run.md is the card `xlbench run --headless` wrote; its numbers are the
    ones the run printed (docs/results.md, the default run's table)."""
    import re
    from pathlib import Path

    from huggingface_hub import ModelCard

    docs = Path(__file__).resolve().parents[2] / "docs"
    card = ModelCard.load(docs / "model-card-default-run.md")
    got = {(r.dataset_config, r.metric_type): r.metric_value for r in card.data.eval_results if r.dataset_type == "xquad-r"}
    printed = re.search(r"\| after hybrid fine-tuning \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|",
                        (docs / "results.md").read_text())
    mono, cross, multi, distance = printed.groups()
    assert f"{got[('mono:macro', 'map')]:.3f}" == mono and f"{got[('cross:macro', 'map')]:.3f}" == cross
    assert f"{got[('multi:macro', 'map')]:.3f}" == multi and f"{got[('bias:macro', 'rank_distance')]:.1f}" == distance
    assert len(card.data.eval_results) == 130 and card.data.language == ["ar", "de", "en", "zh"]
    assert "/tmp" not in card.content and "/work" not in card.content
