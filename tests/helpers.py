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
