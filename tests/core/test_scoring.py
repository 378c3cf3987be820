"""The grid rule: exact scores, the same bits whatever the kernel, thread count, chunking or path."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tests.helpers import grid_scores
from xlbench.core.index import TopK
from xlbench.core.scoring import GridVectors, exact_gathered, exact_scores, float32_error_bound, grid_bits


def vectors(rng, n: int, dim: int) -> np.ndarray:
    """Rows of very different magnitudes (and a zero row): the grid is per vector."""
    v = rng.standard_normal((n, dim)).astype(np.float32) * np.float32(2.0) ** rng.integers(-20, 20, size=(n, 1))
    v[0] = 0
    return v.astype(np.float32)


@pytest.mark.parametrize("dim", [1, 3, 384, 768, 1024])
def test_exact_scores_equal_integer_arithmetic(dim):
    rng = np.random.default_rng(dim)
    q, c = vectors(rng, 37, dim), vectors(rng, 501, dim)
    got = exact_scores(GridVectors(q), GridVectors(c), 0, len(q), col_block=100)
    np.testing.assert_array_equal(got, grid_scores(q, c))


def test_bits_keep_every_partial_sum_below_2_to_53():
    for dim in (1, 2, 384, 512, 513, 768, 1024, 4096):
        assert dim * 2 ** (2 * grid_bits(dim)) <= 2**53
    assert grid_bits(384) == 22 and grid_bits(768) == 21


def test_same_bits_for_any_thread_count_chunking_and_library():
    import torch

    rng = np.random.default_rng(1)
    q, c = rng.standard_normal((64, 384)).astype(np.float32), rng.standard_normal((3000, 384)).astype(np.float32)
    gq, gc = GridVectors(q), GridVectors(c)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = exact_scores(gq, gc, 0, 64)
        torch.set_num_threads(2)
        two = exact_scores(gq, gc, 0, 64, col_block=7)
    finally:
        torch.set_num_threads(before)
    rows = np.concatenate([exact_scores(gq, gc, a, a + 8) for a in range(0, 64, 8)])
    # numpy's matmul goes through OpenBLAS, a different library and kernel from torch's MKL
    numpy_path = gq.block(0, 64) @ gc.block(0, 3000).T
    for other in (two, rows, numpy_path):
        np.testing.assert_array_equal(one, other)


@settings(max_examples=50, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(1, 6), st.integers(1, 9)),
              elements=st.floats(-1e6, 1e6, width=32, allow_subnormal=False)),
       st.data())
def test_gathered_equals_full_scores(q, data):
    c = data.draw(arrays(np.float32, (data.draw(st.integers(1, 12)), q.shape[1]),
                         elements=st.floats(-1e6, 1e6, width=32, allow_subnormal=False)))
    idx = data.draw(arrays(np.int64, (len(q), data.draw(st.integers(1, 5))), elements=st.integers(0, len(c) - 1)))
    gq, gc = GridVectors(q), GridVectors(c)
    full = grid_scores(q, c)
    np.testing.assert_array_equal(exact_gathered(gq, gc, idx, rows=2), np.take_along_axis(full, idx, axis=1))
    np.testing.assert_array_equal(exact_scores(gq, gc, 0, len(q), col_block=3), full)


def test_float32_error_bound_holds_for_float32_kernels():
    import torch

    rng = np.random.default_rng(2)
    q, c = rng.standard_normal((50, 384)).astype(np.float32), rng.standard_normal((2000, 384)).astype(np.float32)
    exact = grid_scores(q, c)
    q_norms, c_max = np.linalg.norm(q.astype(np.float64), axis=1), float(np.linalg.norm(c, axis=1).max())
    bound = float32_error_bound(q_norms, c_max, 384)
    for f32 in (q @ c.T, torch.from_numpy(q).mm(torch.from_numpy(c).T).numpy()):
        err = np.abs(f32.astype(np.float64) - exact)
        assert (err <= bound[:, None]).all()
        assert err.max() > 0  # float32 really is inexact here: the bound is not vacuous
    assert (bound / (q_norms * c_max)).max() < 1e-4  # small enough to rarely send TopK to a full rescoring


def test_topk_is_the_exact_top_k_under_the_grid_rule():
    rng = np.random.default_rng(3)
    q = rng.standard_normal((20, 32)).astype(np.float32)
    corpus = rng.standard_normal((5000, 32)).astype(np.float32)
    corpus[100:140] = corpus[7]  # a block of exact ties
    q[0] = corpus[7]
    top = TopK(q, k=50, margin=4)
    for a in range(0, len(corpus), 700):
        top.add(corpus[a : a + 700])
    exact = grid_scores(q, corpus)
    for row in range(len(q)):
        scores, ids = top.candidates(row)
        kth = np.sort(exact[row])[-50]
        expected = set(np.nonzero(exact[row] >= kth)[0].tolist())
        assert set(ids[scores >= kth].tolist()) == expected  # every tie of the k-th score, nothing below it missed
        np.testing.assert_array_equal(scores, exact[row, ids])
