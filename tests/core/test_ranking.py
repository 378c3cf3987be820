"""rank_relevant against a brute-force stable ranking, ties and chunk boundaries included."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import grid_scores
from xlbench.core.ranking import rank_relevant


def brute_force(q, c, offsets, relevant):
    n_q, n_l = relevant.shape
    block = np.zeros((n_q, n_l), dtype=np.int64)
    pool = np.zeros((n_q, n_l), dtype=np.int64)
    for i in range(n_q):
        scores = grid_scores(q[i : i + 1], c)[0]  # the grid rule, in integer arithmetic
        order = np.argsort(-scores, kind="stable")
        pool_pos = np.empty(len(order), dtype=np.int64)
        pool_pos[order] = np.arange(1, len(order) + 1)
        for lang in range(n_l):
            d = relevant[i, lang]
            if d < 0:
                continue
            lo, hi = offsets[lang], offsets[lang + 1]
            sub = scores[lo:hi]
            sub_order = np.argsort(-sub, kind="stable")
            pos = np.empty(len(sub_order), dtype=np.int64)
            pos[sub_order] = np.arange(1, len(sub_order) + 1)
            block[i, lang] = pos[d - lo]
            pool[i, lang] = pool_pos[d]
    return block, pool


@st.composite
def pools(draw):
    n_l = draw(st.integers(1, 4))
    sizes = draw(st.lists(st.integers(1, 9), min_size=n_l, max_size=n_l))
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    n_c = int(offsets[-1])
    n_q = draw(st.integers(1, 12))
    dim = draw(st.integers(1, 4))
    # small integer vectors: many exact ties, which is where ranking code goes wrong
    c = np.array(draw(st.lists(st.integers(-2, 2), min_size=n_c * dim, max_size=n_c * dim)),
                 dtype=np.float32).reshape(-1, dim)
    q = np.array(draw(st.lists(st.integers(-2, 2), min_size=n_q * dim, max_size=n_q * dim)),
                 dtype=np.float32).reshape(-1, dim)
    relevant = np.full((n_q, n_l), -1, dtype=np.int64)
    for i in range(n_q):
        for lang in range(n_l):
            if draw(st.booleans()):
                relevant[i, lang] = draw(st.integers(int(offsets[lang]), int(offsets[lang + 1]) - 1))
    return q, c, offsets, relevant


@settings(max_examples=200, deadline=None)
@given(pools(), st.sampled_from([64, 500, 10**9]), st.sampled_from([None, "cpu"]))
def test_matches_brute_force_with_ties(case, budget, device):
    """On the host (numpy counting) and through the device path (torch counting; "cpu" here, CUDA
    where there is one): the same ranks as a brute-force stable sort."""
    q, c, offsets, relevant = case
    block, pool = rank_relevant(q, c, offsets, relevant, budget_bytes=budget, device=device)
    ref_block, ref_pool = brute_force(q, c, offsets, relevant)
    np.testing.assert_array_equal(block, ref_block)
    np.testing.assert_array_equal(pool, ref_pool)


def test_device_path_equals_host_path_on_real_sized_floats(monkeypatch):
    from xlbench.core import ranking

    monkeypatch.setattr(ranking, "CANDIDATE_BLOCK", 300)  # the device's pool filled in 7 blocks
    rng = np.random.default_rng(1)
    offsets = np.array([0, 700, 1500, 2000])
    c = rng.standard_normal((2000, 48)).astype(np.float32)
    c[1000] = c[10]  # a duplicate candidate: an exact tie across languages
    q = rng.standard_normal((300, 48)).astype(np.float32)
    relevant = np.stack([rng.integers(offsets[i], offsets[i + 1], size=300) for i in range(3)], axis=1)
    relevant[5] = [10, 1000, -1]
    relevant[::11, 2] = -1
    host = rank_relevant(q, c, offsets, relevant, budget_bytes=2000 * 14 * 37)
    calls = []
    dev = rank_relevant(q, c, offsets, relevant, budget_bytes=2000 * 10 * 37, device="cpu",
                        on_chunk=lambda d, t: calls.append((d, t)))
    for h, d in zip(host, dev):
        np.testing.assert_array_equal(h, d)
    assert host[1][5, 1] == host[1][5, 0] + 1  # the later duplicate ranks right after the earlier
    assert calls[-1] == (300, 300) and len(calls) == 9  # 37 rows per chunk


def test_random_float_pool_in_many_chunks():
    rng = np.random.default_rng(0)
    offsets = np.array([0, 300, 520, 900])
    c = rng.standard_normal((900, 16)).astype(np.float32)
    q = rng.standard_normal((257, 16)).astype(np.float32)
    relevant = np.stack([rng.integers(offsets[i], offsets[i + 1], size=257) for i in range(3)], axis=1)
    relevant[::7, 1] = -1
    calls = []
    block, pool = rank_relevant(q, c, offsets, relevant, budget_bytes=900 * 14 * 10,
                                on_chunk=lambda d, t: calls.append((d, t)))
    ref_block, ref_pool = brute_force(q, c, offsets, relevant)
    np.testing.assert_array_equal(block, ref_block)
    np.testing.assert_array_equal(pool, ref_pool)
    assert calls[-1] == (257, 257) and len(calls) == 26  # 10 rows per chunk
