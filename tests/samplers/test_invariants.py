"""Property tests of every built-in sampler's invariants on random corpora with missing languages."""

from __future__ import annotations


import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from xlbench.core.samplers.base import CorpusShape
from xlbench.core.samplers.builtin import CrosslingualSampler, HybridSampler, MonolingualSampler
from xlbench.errors import ConfigError


@st.composite
def corpora(draw):
    n_l = draw(st.integers(2, 6))
    n_g = draw(st.integers(8, 120))
    density = draw(st.floats(0.2, 1.0))
    seed = draw(st.integers(0, 2**31 - 1))
    has = np.random.default_rng(seed).random((n_g, n_l)) < density
    has[np.arange(n_g), np.random.default_rng(seed + 1).integers(0, n_l, n_g)] = True  # every group has a language
    return CorpusShape([f"l{i}" for i in range(n_l)], [f"g{i}" for i in range(n_g)], has)


SAMPLERS = {
    "monolingual": (MonolingualSampler, [{}, {"weights": "size"}]),
    "crosslingual": (CrosslingualSampler, [{}, {"mode": "direction"}]),
    "hybrid": (HybridSampler, [{"alpha": 0.5}, {"alpha": 0.2, "mode": "direction", "weights": "size"}]),
}


def build(cls, corpus, batch_size, seed, options):
    try:
        return cls(corpus, batch_size=batch_size, seed=seed, **options)
    except ConfigError:
        assume(False)  # infeasible combination (too few items): rejected up front, as it should be


def check_batch(corpus, batch, batch_size):
    g_index = {g: i for i, g in enumerate(corpus.group_ids)}
    l_index = {lang: i for i, lang in enumerate(corpus.languages)}
    assert len(batch) == batch_size
    groups = [g for g, _, _ in batch]
    assert len(set(groups)) == len(groups), "a group repeated within a batch"
    for g, q, p in batch:
        assert corpus.has[g_index[g], l_index[q]] and corpus.has[g_index[g], l_index[p]], "unavailable language"


common = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])


@common
@given(corpora(), st.integers(2, 8), st.integers(0, 1000), st.sampled_from(sorted(SAMPLERS)), st.integers(0, 1))
def test_batches_respect_invariants(corpus, batch_size, seed, name, variant):
    cls, variants = SAMPLERS[name]
    sampler = build(cls, corpus, batch_size, seed, variants[variant])
    for _, batch in zip(range(30), sampler):
        check_batch(corpus, batch, batch_size)
        same = [q == p for _, q, p in batch]
        if name == "monolingual":
            assert len({q for _, q, _ in batch}) == 1 and all(same)
        elif name == "crosslingual":
            assert not any(same)
            if variants[variant].get("mode") == "direction":
                assert len({(q, p) for _, q, p in batch}) == 1
        else:
            assert all(same) and len({q for _, q, _ in batch}) == 1 or not any(same)


@common
@given(corpora(), st.integers(2, 6), st.integers(0, 1000), st.sampled_from(sorted(SAMPLERS)))
def test_same_seed_same_batches_and_resume_continues_identically(corpus, batch_size, seed, name):
    cls, variants = SAMPLERS[name]
    a = build(cls, corpus, batch_size, seed, variants[0])
    b = cls(corpus, batch_size=batch_size, seed=seed, **variants[0])
    first = [batch for _, batch in zip(range(25), a)]
    assert first == [batch for _, batch in zip(range(25), b)]
    # interrupt after 10 batches, save the position, restore into a fresh sampler
    c = cls(corpus, batch_size=batch_size, seed=seed, **variants[0])
    it = iter(c)
    for _ in range(10):
        next(it)
    state = c.state()
    import json

    state = json.loads(json.dumps(state))  # it must survive a checkpoint file
    d = cls(corpus, batch_size=batch_size, seed=seed, **variants[0])
    d.restore(state)
    assert [batch for _, batch in zip(range(15), d)] == first[10:]


@pytest.mark.parametrize("alpha", [0.0, 0.25, 0.5, 0.8, 1.0])
def test_hybrid_mono_share_tends_to_alpha(alpha):
    rng = np.random.default_rng(0)
    corpus = CorpusShape([f"l{i}" for i in range(5)], [f"g{i}" for i in range(400)], rng.random((400, 5)) < 0.7)
    sampler = HybridSampler(corpus, batch_size=16, seed=3, alpha=alpha)
    n = 4000
    mono = sum(all(q == p for _, q, p in batch) for _, batch in zip(range(n), sampler))
    share = mono / n
    assert abs(share - alpha) <= 4 * np.sqrt(alpha * (1 - alpha) / n) + 1e-9


def test_monolingual_uniform_vs_size_weights():
    has = np.zeros((1000, 2), dtype=bool)
    has[:, 0] = True
    has[:100, 1] = True
    corpus = CorpusShape(["big", "small"], [f"g{i}" for i in range(1000)], has)
    count = lambda s: sum(b[0][1] == "small" for _, b in zip(range(3000), s))  # noqa: E731
    uniform = count(MonolingualSampler(corpus, batch_size=8, seed=1))
    by_size = count(MonolingualSampler(corpus, batch_size=8, seed=1, weights="size"))
    assert abs(uniform / 3000 - 0.5) < 0.05 and abs(by_size / 3000 - 100 / 1100) < 0.03


def test_unknown_option_lists_valid_ones():
    corpus = CorpusShape(["a", "b"], [f"g{i}" for i in range(10)], np.ones((10, 2), dtype=bool))
    with pytest.raises(ConfigError, match=r"has no option beta \(valid: alpha, mode, weights\)"):
        HybridSampler(corpus, batch_size=4, seed=0, beta=1)
    with pytest.raises(ConfigError, match=r"must lie in \[0.0, 1.0\]"):
        HybridSampler(corpus, batch_size=4, seed=0, alpha=1.5)
    with pytest.raises(ConfigError, match="no language has 20 items"):
        MonolingualSampler(corpus, batch_size=20, seed=0)
