"""Reduced-precision encoding (bf16 / fp16 autocast, for a GPU's speed): the fp32 path and its cache
key are unchanged, bf16 vectors stay close to fp32 ones and are cached apart, fp16 needs CUDA."""

from __future__ import annotations

import json

import numpy as np
import pytest

from xlbench.config import EvalConfig, parse_config
from xlbench.core.encoders.st import SentenceTransformerEncoder
from xlbench.errors import ConfigError, ModelError

TEXTS = ["Wer schrieb den Faust?", "Who wrote Faust?", "¿Quién escribió Fausto?", "a much longer text " * 12]


def test_bf16_is_close_to_fp32_and_cached_apart(tiny_model):
    fp32 = SentenceTransformerEncoder(str(tiny_model), device="cpu")
    bf16 = SentenceTransformerEncoder(str(tiny_model), device="cpu", precision="bf16")
    a, b = fp32.encode(TEXTS, role="passage"), bf16.encode(TEXTS, role="passage")
    assert a.dtype == b.dtype == np.float32 and a.shape == b.shape
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-6)
    cosine = (a * b).sum(axis=1)
    assert cosine.min() > 0.99 and not np.array_equal(a, b)  # bf16 really ran, and stayed close
    assert json.loads(bf16.fingerprint())[:-1] == json.loads(fp32.fingerprint())
    assert json.loads(bf16.fingerprint())[-1] == "bf16" and fp32.describe()["precision"] == "fp32"


def test_fp32_vectors_do_not_depend_on_the_precision_option_existing(tiny_model):
    explicit = SentenceTransformerEncoder(str(tiny_model), device="cpu", precision="fp32")
    default = SentenceTransformerEncoder(str(tiny_model), device="cpu")
    assert np.array_equal(explicit.encode(TEXTS, role="query"), default.encode(TEXTS, role="query"))
    assert explicit.fingerprint() == default.fingerprint()


def test_fp16_needs_cuda_and_bad_values_are_one_line(tiny_model):
    with pytest.raises(ModelError, match="fp16 needs a CUDA device"):
        SentenceTransformerEncoder(str(tiny_model), device="cpu", precision="fp16").encode(TEXTS, role="query")
    with pytest.raises(ModelError, match="use one of fp32, bf16, fp16, auto"):
        SentenceTransformerEncoder(str(tiny_model), precision="int8")
    with pytest.raises(ConfigError, match="precision: must be one of fp32, bf16, fp16, auto"):
        parse_config(EvalConfig, {"precision": "fp8"})


def test_auto_is_fp32_without_cuda_and_shares_its_cache_key(tiny_model):
    auto = SentenceTransformerEncoder(str(tiny_model), device="cpu", precision="auto")
    fp32 = SentenceTransformerEncoder(str(tiny_model), device="cpu")
    assert auto.fingerprint() == fp32.fingerprint() and auto.describe()["precision"] == "fp32"
    assert np.array_equal(auto.encode(TEXTS, role="query"), fp32.encode(TEXTS, role="query"))


def test_the_model_record_names_the_attention_kernel(tiny_model):
    assert SentenceTransformerEncoder(str(tiny_model), device="cpu").describe()["attention"] == "sdpa"
