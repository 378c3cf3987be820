"""Helpers for tests that drive xlbench as a person would: subprocesses, plugin files, polling."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import scipy.sparse

SLOW_ENCODER = '''
import hashlib, time
import numpy as np

class SlowEncoder:
    """Deterministic and slow: sleeps `delay` seconds per text, so runs can be killed mid-way."""
    kind = "encoder"
    name = "slow"

    def __init__(self, delay=0.01, dim=8):
        self.delay, self.dim = float(delay), int(dim)

    def encode(self, texts, *, role):
        time.sleep(self.delay * len(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            d = hashlib.sha256((role + t).encode()).digest()
            out[i] = np.frombuffer(d[: self.dim * 4], dtype=np.uint32) / 2**32 - 0.5
        return out
'''

COUNTING_ENCODER = '''
import json, os
import numpy as np

class CountingEncoder:
    """Counts every text it is asked to encode (appends to $COUNT_FILE), with a fingerprint so
    the embedding cache is used."""
    kind = "encoder"
    name = "counting"

    def encode(self, texts, *, role):
        with open(os.environ["COUNT_FILE"], "a") as fh:
            for t in texts:
                fh.write(json.dumps([role, t]) + "\\n")
        out = np.zeros((len(texts), 4), dtype=np.float32)
        for i, t in enumerate(texts):
            out[i, 0] = len(t) % 7
            out[i, 1] = (sum(map(ord, t)) % 101) / 100.0
            out[i, 2] = 1.0 if role == "query" else 0.5
            out[i, 3] = t.count(" ") % 5
        return out

    def fingerprint(self):
        return "counting-v1"
'''


def write_plugin(folder: Path, filename: str, source: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    path.write_text(textwrap.dedent(source))
    return path


def xlbench(*args: str, env: dict | None = None, timeout: float = 600, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xlbench", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout, **kw)


def start_xlbench(*args: str, env: dict | None = None, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "xlbench", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, **(env or {})}, **kw)


def wait_for(predicate, timeout: float = 60, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def tiny_run_toml(path: Path, model: Path, *, steps: int, name: str = "tiny", train_langs=("de", "en", "es"),
                  eval_langs=("de", "en", "es"), articles: str = "0:36", eval_articles: str = "36:48", **train) -> Path:
    """A TOML experiment on the tiny model with bundled XQuAD-R (train and test articles disjoint)."""
    extra = "".join(f"{k} = {v}\n" for k, v in train.items())
    path.write_text(f'''name = "{name}"
[model]
model = "{model}"
max_seq_length = 48
[data]
kind = "xquad-r"
articles = "{articles}"
languages = {list(train_langs)!r}
[train]
max_steps = {steps}
lr = 1e-3
{extra}[sampler]
name = "hybrid"
[eval]
articles = "{eval_articles}"
languages = {list(eval_langs)!r}
candidate_text = "sentence"
'''.replace("'", '"'))
    return path


# --- the grid rule (xlbench/core/scoring.py) from its definition, in integer arithmetic --------


def grid_integers(vecs: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """The grid rule's integers and exponents, from its definition: v * 2**(B - e) rounded half-even."""
    bits = (53 - math.ceil(math.log2(vecs.shape[1]))) // 2
    exps = np.array([math.frexp(float(np.abs(row).max()))[1] for row in vecs], dtype=np.int64)
    ints = np.round(vecs.astype(np.float64) * (2.0 ** (bits - exps))[:, None]).astype(np.int64)
    assert np.abs(ints).max() <= 2**bits
    return ints, exps, bits


def grid_scores(queries: np.ndarray, cands: np.ndarray) -> np.ndarray:
    """Exact integer dot products times the two powers of two (exactly representable in float64)."""
    qi, qe, bits = grid_integers(queries)
    ci, ce, _ = grid_integers(cands)
    dots = np.asarray((scipy.sparse.csr_matrix(qi) @ ci.T))
    assert dots.dtype == np.int64 and np.abs(dots).max() < 2**53
    return np.ldexp(dots.astype(np.float64), qe[:, None] + ce[None, :] - 2 * bits)


def synthetic_ranks(x: float, seed: int, *, languages=("de", "en", "zh"), questions: int = 40,
                    strength: float = 1.0):
    """LAReQA ranks of a made-up system that gets better with ``x`` (times ``strength``): every
    question has a fixed difficulty, so systems are paired on questions; ``seed`` adds run noise.
    Integer draws only, so the ranks (and every metric) are the same on every machine."""
    from xlbench.core.lareqa_report import LareqaRanks

    n_lang = len(languages)
    difficulty = np.random.default_rng(12345).integers(1, 16, size=(questions, n_lang, n_lang))
    rng = np.random.default_rng([int(round(x * 1000)), seed])
    noise = rng.integers(-2, 3, size=difficulty.shape)
    block = np.clip(difficulty - int(round(6 * strength * x)) + noise, 1, questions)  # (q, query lang, corpus lang)
    query_ids, query_lang, block_rank, pool_rank = [], [], [], []
    for li in range(n_lang):
        for q in range(questions):
            order = rng.permutation(n_lang)
            query_ids.append(f"q{q}")
            query_lang.append(li)
            block_rank.append(block[q, li])
            pool_rank.append((block[q, li] - 1) * n_lang + 1 + order)  # distinct positions in the pool
    return LareqaRanks(list(languages), query_ids, np.array(query_lang), np.array(block_rank), np.array(pool_rank),
                       np.full(n_lang, questions))


def store_synthetic_sweep(store, xs=(0, 0.5, 1), seeds=(1, 2, 3), *, strength: float = 1.0, name: str = "alpha"):
    """A sweep over ``sampler.alpha`` × ``train.seed`` whose runs finished with synthetic XQuAD-R
    results (:func:`synthetic_ranks`); returns ``(sweep id, run ids)``."""
    from xlbench.core.evaluate import DatasetResult
    from xlbench.core.lareqa_report import PAYLOAD_FORMAT, lareqa_report
    from xlbench.store.results import result_rows

    configs = [(f"{name}: sampler.alpha={x}, train.seed={s}", {"sampler": {"name": "hybrid", "alpha": x},
                                                                "train": {"seed": s, "max_steps": 10}})
               for s in seeds for x in xs]
    sweep_id, run_ids = store.create_sweep(name=name, base_config={}, grid={"train.seed": list(seeds), "sampler.alpha": list(xs)},
                                           run_configs=configs)
    for run_id, (_, config) in zip(run_ids, configs):
        store.claim_run(run_id, env={}, git_commit=None)
        ranks = synthetic_ranks(config["sampler"]["alpha"], config["train"]["seed"], strength=strength)
        report = lareqa_report(ranks)
        result = DatasetResult("xquad-r", "synthetic", "tests", report.cells, report.summary, report.bias,
                               ranks.to_bytes(), PAYLOAD_FORMAT)
        rows, payload = result_rows(run_id, result)
        store.save_results(run_id, rows, payload)
        store.finish_run(run_id, "finished")
    return sweep_id, run_ids
