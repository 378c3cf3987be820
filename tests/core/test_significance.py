"""Paired tests against hand-computed cases and scipy; Holm against its definition."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from xlbench.core.significance import bootstrap_ci, holm, paired_test, randomization_test


def test_identical_runs_give_p_one_and_zero_delta():
    t = paired_test(np.zeros(500))
    assert t.delta == 0.0 and t.p_value == 1.0 and t.ci_low == 0.0 and t.ci_high == 0.0


def test_large_injected_difference_is_highly_significant():
    rng = np.random.default_rng(0)
    a = rng.random(400)
    b = a - 0.2 + rng.normal(0, 0.05, 400)
    t = paired_test((a - b) / 400)
    assert t.p_value < 0.001 and t.ci_low > 0.15


def test_exact_enumeration_hand_computed():
    # diffs (1, 2, -3): |sum| = 0 → every sign pattern is at least as extreme → p = 1
    assert randomization_test(np.array([1.0, 2.0, -3.0]))[0] == 1.0
    # diffs (1, 1, 1): |sum| = 3 reached only by +++ and --- → p = 2/8
    p, n, exact = randomization_test(np.array([1.0, 1.0, 1.0]))
    assert (p, n, exact) == (0.25, 8, True)


@pytest.mark.parametrize("seed", range(6))
def test_exact_test_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 12))
    x, y = rng.random(n), rng.random(n)
    ours = randomization_test(x - y)[0]
    ref = stats.permutation_test((x, y), lambda a, b: np.mean(a - b), permutation_type="samples",
                                 n_resamples=np.inf, alternative="two-sided").pvalue
    assert ours == pytest.approx(ref, abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_monte_carlo_test_agrees_with_scipy(seed):
    rng = np.random.default_rng(seed)
    x = rng.random(200)
    y = x - 0.02 + rng.normal(0, 0.15, 200)
    ours = randomization_test(x - y, permutations=20_000, seed=seed)[0]
    ref = stats.permutation_test((x, y), lambda a, b, axis=-1: np.mean(a - b, axis=axis), permutation_type="samples",
                                 n_resamples=20_000, alternative="two-sided", vectorized=True,
                                 random_state=seed).pvalue
    assert abs(ours - ref) < 0.02


def test_bootstrap_interval_agrees_with_scipy():
    rng = np.random.default_rng(4)
    d = rng.normal(0.01, 0.1, 300)
    lo, hi = bootstrap_ci(d / len(d), resamples=20_000, seed=1)
    ref = stats.bootstrap((d,), np.mean, n_resamples=20_000, method="percentile", random_state=1).confidence_interval
    assert lo == pytest.approx(ref.low, abs=0.003) and hi == pytest.approx(ref.high, abs=0.003)


def test_holm_matches_definition():
    p = [0.01, 0.04, 0.03, 0.5]
    # sorted: 0.01*4=0.04, 0.03*3=0.09, 0.04*2=0.08→max 0.09, 0.5*1=0.5
    assert holm(p) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm([0.9, 0.9]) == [1.0, 1.0]
