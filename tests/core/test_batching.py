"""Feeding an accelerator: batches by token length, the prefetching thread, and the encoder's
batched-by-length path (the one CUDA takes) against its exact CPU path."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import wait_for
from xlbench.core.batching import by_token_length, equal_count_groups, prefetched, take_rows, token_lengths
from xlbench.core.encoders.base import encode_texts
from xlbench.core.encoders.st import SentenceTransformerEncoder


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 512), max_size=300), st.integers(1, 5000), st.none() | st.integers(1, 40))
def test_token_batches_cover_every_text_once_within_the_budget(lengths, budget, max_batch):
    lengths = np.array(lengths, dtype=np.int64)
    batches = by_token_length(lengths, budget, max_batch)
    seen = np.concatenate(batches) if batches else np.array([], dtype=np.int64)
    assert sorted(seen.tolist()) == list(range(len(lengths)))
    assert np.all(np.diff(lengths[seen]) <= 0)  # longest first across batches
    for rows in batches:
        assert len(rows) >= 1
        assert len(rows) == 1 or len(rows) * lengths[rows].max() <= budget
        assert max_batch is None or len(rows) <= max_batch


def test_token_batches_put_many_short_texts_together():
    lengths = np.array([500] * 4 + [10] * 1000)
    sizes = [len(b) for b in by_token_length(lengths, 2000)]
    assert sizes == [4, 200, 200, 200, 200, 200]


@given(st.lists(st.integers(1, 100), min_size=1, max_size=50), st.integers(1, 8))
def test_equal_count_groups_sort_and_split(lengths, groups):
    parts = equal_count_groups(np.array(lengths), groups)
    flat = np.concatenate(parts)
    assert sorted(flat.tolist()) == list(range(len(lengths)))
    assert len(parts) == min(groups, len(lengths))
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert np.all(np.diff(np.array(lengths)[flat]) <= 0)


def test_take_rows_equals_tokenising_the_rows_alone(tiny_model):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tiny_model), device="cpu")
    texts = ["eins", "zwei drei vier fünf sechs", "a much longer text " * 9, "kurz", "mittel lang hier"]
    group = model.preprocess(texts, prompt="query: ")
    for rows in ([1, 3], [2], [0, 4, 3]):
        alone = model.preprocess([texts[i] for i in rows], prompt="query: ")
        taken = take_rows(group, np.array(rows))
        assert taken.keys() == alone.keys()
        for key in alone:
            assert np.array_equal(np.asarray(taken[key]), np.asarray(alone[key])), key
    assert token_lengths(group).tolist() == group["attention_mask"].sum(dim=1).tolist()


def test_prefetched_runs_ahead_in_order_and_raises_where_the_item_was():
    produced = []

    def items():
        for i in range(5):
            produced.append(i)
            yield i
        raise ValueError("bad file line 6")

    with prefetched(items(), depth=2) as ahead:
        assert next(ahead) == 0
        wait_for(lambda: len(produced) >= 3, interval=0.01)  # the thread goes ahead of the consumer
        assert [next(ahead) for _ in range(4)] == [1, 2, 3, 4]
        with pytest.raises(ValueError, match="bad file line 6"):
            next(ahead)
        assert list(ahead) == []


def test_closing_a_prefetch_stops_its_thread():
    def endless():
        i = 0
        while True:
            i += 1
            yield i

    before = threading.active_count()
    with prefetched(endless(), depth=2) as ahead:
        assert next(ahead) == 1
    assert threading.active_count() == before


def test_the_batched_path_gives_the_exact_paths_vectors_up_to_float_noise(tiny_model):
    texts = [f"{'word ' * (i % 23)}text number {i}" for i in range(150)] + ["dup", "dup", ""]
    exact = SentenceTransformerEncoder(str(tiny_model), device="cpu")
    batched = SentenceTransformerEncoder(str(tiny_model), device="cpu", exact_length_batches=False, token_budget=300)
    a, b = exact.encode(texts, role="passage"), batched.encode(texts, role="passage")
    assert b.dtype == np.float32 and b.shape == a.shape
    assert np.abs(a - b).max() < 1e-5
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-6)
    assert batched.texts_per_call and exact.texts_per_call is None
    # through the engine's entry, which hands the batched encoder large calls (other batches: noise)
    calls = []
    encode = batched.encode
    batched.encode = lambda texts, role: calls.append(len(texts)) or encode(texts, role=role)
    c = encode_texts(batched, texts, "passage", batch_size=7)
    assert calls == [len(set(texts))] and np.abs(c - b).max() < 1e-5


def test_the_batched_path_uses_the_budget(tiny_model, monkeypatch):
    enc = SentenceTransformerEncoder(str(tiny_model), device="cpu", exact_length_batches=False, token_budget=64)
    model = enc.model
    shapes = []
    forward = type(model).forward

    def spy(self, features, *args, **kwargs):
        shapes.append(tuple(features["input_ids"].shape))
        return forward(self, features, *args, **kwargs)

    monkeypatch.setattr(type(model), "forward", spy)
    texts = [("long " * 40).strip()] * 3 + [f"q{i}" for i in range(40)]
    enc.encode(texts, role="query")
    assert all(n * width <= 64 or n == 1 for n, width in shapes)
    assert sum(n for n, _ in shapes) == len(texts)
    assert max(n for n, _ in shapes) > 5  # short texts went many to a batch
