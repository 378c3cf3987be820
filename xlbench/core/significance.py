"""Paired significance tests on per-unit score differences, and Holm's correction.

The unit is what can be exchanged between two systems under the null hypothesis: for LAReQA sets
the parallel question (one id, all its language versions and cells together), for MIRACL the
query. A difference of a weighted mean, ``Δ = Σ_u D_u`` with ``D_u`` the unit's weighted score
difference, is tested by

* a paired randomization (sign-flip) test: ``p = P(|Σ ε_u D_u| ≥ |Δ|)`` over random signs
  ``ε``; exact enumeration when ``2^n`` ≤ the permutation budget, else seeded Monte Carlo with
  ``p = (hits + 1) / (permutations + 1)``;
* a paired bootstrap: units resampled with replacement, percentile 95 % interval of ``Δ``.

Both are checked against ``scipy.stats.permutation_test`` / ``bootstrap``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_PERMUTATIONS = 10_000
DEFAULT_BOOTSTRAP = 10_000


@dataclass
class PairedTest:
    delta: float
    p_value: float
    ci_low: float
    ci_high: float
    n_units: int
    permutations: int
    exact: bool

    def as_dict(self) -> dict:
        return dict(vars(self))


def _tolerance(observed: float) -> float:
    # sums of floats in another order can differ in the last bits: count those as ties
    return max(abs(observed), 1.0) * 1e-12 * 64


def randomization_test(unit_diffs: np.ndarray, *, permutations: int = DEFAULT_PERMUTATIONS, seed: int = 0,
                       extend_to: int = 0) -> tuple[float, int, bool]:
    """Two-sided paired sign-flip test of ``Σ D_u``; returns ``(p, permutations used, exact)``.

    A Monte Carlo p-value cannot fall below ``1 / (permutations + 1)``. When no permutation was as
    extreme as the observation and ``extend_to`` is larger, drawing continues up to ``extend_to``
    so that a multiple-comparison correction can still reach small levels."""
    d = np.asarray(unit_diffs, dtype=np.float64)
    n = len(d)
    observed = abs(d.sum())
    tol = _tolerance(observed)
    if n == 0:
        return 1.0, 0, True
    if n <= 20 and 2**n <= permutations:
        signs = ((np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1) * 2 - 1
        stats = np.abs(signs @ d)
        return float((stats >= observed - tol).mean()), 2**n, True
    rng = np.random.default_rng(seed)
    hits = 0
    done = 0
    target = permutations
    while done < target:
        block = min(2000, target - done)
        signs = rng.integers(0, 2, size=(block, n), dtype=np.int8) * 2 - 1
        hits += int((np.abs(signs @ d) >= observed - tol).sum())
        done += block
        if done == target and hits == 0 and extend_to > target:
            target = extend_to
    return (hits + 1) / (done + 1), done, False


def bootstrap_ci(unit_diffs: np.ndarray, *, resamples: int = DEFAULT_BOOTSTRAP, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of ``Σ D_u`` with units resampled with replacement (paired)."""
    d = np.asarray(unit_diffs, dtype=np.float64)
    n = len(d)
    if n == 0:
        return 0.0, 0.0
    rng = np.random.default_rng(seed)
    stats = np.empty(resamples)
    for a in range(0, resamples, 1000):
        b = min(resamples, a + 1000)
        stats[a:b] = d[rng.integers(0, n, size=(b - a, n))].sum(axis=1)
    alpha = (1 - level) / 2
    return float(np.quantile(stats, alpha)), float(np.quantile(stats, 1 - alpha))


def paired_test(unit_diffs: np.ndarray, *, permutations: int = DEFAULT_PERMUTATIONS, resamples: int = DEFAULT_BOOTSTRAP,
                seed: int = 0, extend_to: int = 0) -> PairedTest:
    d = np.asarray(unit_diffs, dtype=np.float64)
    p, used, exact = randomization_test(d, permutations=permutations, seed=seed, extend_to=extend_to)
    lo, hi = bootstrap_ci(d, resamples=resamples, seed=seed)
    return PairedTest(float(d.sum()), p, lo, hi, len(d), used, exact)


def holm(p_values: list[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (step-down, monotone, capped at 1)."""
    p = np.asarray(p_values, dtype=np.float64)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, (m - rank) * p[i])
        adjusted[i] = min(1.0, running)
    return adjusted.tolist()


def stars(p: float | None) -> str:
    """Paper-table marks: *** p < 0.001, ** p < 0.01, * p < 0.05; none for an untested value."""
    if p is None:
        return ""
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else ""
