"""Issue 21 (hardening, round two), one test or more per numbered finding that fails on the main
it was filed against and passes now."""

from __future__ import annotations

import pytest

from tests.helpers import xlbench
from xlbench.store.store import Store

# --- 6. every option validated, once, before any row exists ----------------------------------------


@pytest.mark.parametrize("setting,message", [
    ("sampler.alpha=nan", "sampler option alpha='nan': must be a finite number"),
    ("sampler.alpha=inf", "sampler option alpha='inf': must be a finite number"),
    ("model.max_seq_length=-1", "model.max_seq_length: Input should be greater than or equal to 1"),
    ("model.max_seq_length=0", "model.max_seq_length: Input should be greater than or equal to 1"),
    ("model.max_seq_length=1000000000000", "model.max_seq_length: Input should be less than or equal to 1048576"),
    ("train.seed=-1", "train.seed: Input should be greater than or equal to 0"),
    ("train.seed=100000000000000000000000", "train.seed: Input should be less than or equal to 4294967295"),
    ("threads=1000000000000", "threads: Input should be less than or equal to 1024"),
    ("threads=0", "threads: Input should be greater than or equal to 1"),
    ("threads=-1", "threads: Input should be greater than or equal to 1"),
    ("eval.model_batch_size=0", "eval.model_batch_size: Input should be greater than or equal to 1"),
    ("eval.model_batch_size=-1", "eval.model_batch_size: Input should be greater than or equal to 1"),
    ("data.limit=0", "data.limit: Input should be greater than or equal to 1"),
    ("data.limit=-1", "data.limit: Input should be greater than or equal to 1"),
])
@pytest.mark.parametrize("detach", [False, True])
def test_an_option_out_of_range_is_one_line_and_no_row(workspace, setting, message, detach):
    res = xlbench("run", "--headless", "--set", setting, *(["--detach"] if detach else []))
    assert res.returncode == 2 and message in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not (workspace / "db" / "xlbench.sqlite").exists() or Store().list_runs() == []


@pytest.mark.parametrize("args,message", [
    (["--threads", "0"], "threads: Input should be greater than or equal to 1"),
    (["--threads", "1000000000000"], "threads: Input should be less than or equal to 1024"),
    (["--batch-size", "0"], "model_batch_size: Input should be greater than or equal to 1"),
    (["--max-seq-length", "-1"], "max_seq_length: Input should be greater than or equal to 1"),
])
def test_evaluation_options_out_of_range_are_one_line_and_no_row(workspace, args, message):
    res = xlbench("eval", *args)
    assert res.returncode == 2 and message in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not (workspace / "db" / "xlbench.sqlite").exists() or Store().list_runs() == []


def test_a_sweep_with_a_nan_grid_value_queues_nothing(workspace):
    res = xlbench("sweep", "--grid", "sampler.alpha=0,nan")
    assert res.returncode == 2 and "must be a finite number" in res.stderr and "sampler.alpha=nan" in res.stderr
    assert not (workspace / "db" / "xlbench.sqlite").exists() or Store().list_runs() == []


def test_warm_up_longer_than_training_is_a_warning(workspace):
    res = xlbench("run", "--check", "--set", "train.warmup_steps=500")
    assert res.returncode == 0, res.stderr
    assert "warning: train.warmup_steps=500 is not below train.max_steps=120" in res.stderr
