"""Tests about training procedures: two sources of variance, seeds and questions.

Two arms (e.g. α = 0.5 and α = 1) each hold runs that differ only in their seed. The claim a
researcher makes is about the *procedure* ("hybrid batches beat monolingual ones"), so its test
must count what changes when the procedure is run again: the seed (batch order, initialisation of
what is trained) and the sample of questions it is scored on. The per-question paired test of
:mod:`xlbench.core.significance` counts only the second: it asks whether *these* trained models
differ on *these* questions, and with a thousand parallel questions any consistent difference
between two particular sets of models — seed noise included — comes out significant.

The statistic is the difference of the arms' means over seeds, ``Δ = mean_i S_Ai − mean_j S_Bj``,
with ``S`` a run's score (a weighted sum of per-unit contributions; a unit is a parallel question
or a MIRACL query). Its variance has two parts, estimated from the data:

* **seeds**: ``s²_A / n_A + s²_B / n_B``, the sample variances of the per-seed scores (the seed
  shifts every question at once, so this must be read off whole runs, not off questions);
* **questions**: ``U · var_u(δ_u)`` for the population of questions the benchmark samples, with
  ``δ_u`` the unit's difference of seed-averaged contributions, less what seed noise alone puts into
  ``var_u(d_u)`` (``Σ_u s²_u / n`` per arm, from each unit's spread over seeds), floored at zero.

``t = Δ / √V`` is referred to Student's t with Welch–Satterthwaite degrees of freedom (at three
seeds a side, between 2 and 4: the price of three seeds). Calibrated on simulated studies with
known truth (``bench/seed_calibration.py``, ``tests/core/test_seed_variance.py``, docs/sweeps.md).

An arm with one seed has no measurable seed variance: no test, and the output says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LEVEL = 0.05
POWER = 0.80


@dataclass
class ProcedureTest:
    """Arm B against arm A (``delta`` = B − A) over seeds and questions."""

    delta: float
    n_a: int
    n_b: int
    p: float | None = None  # None: an arm has fewer than two seeds (seed variance unknown)
    se: float | None = None
    df: float | None = None
    ci: tuple[float, float] | None = None
    seed_var: float | None = None  # s²_A/n_A + s²_B/n_B
    question_var: float | None = None

    @property
    def tested(self) -> bool:
        return self.p is not None

    def as_dict(self) -> dict:
        return dict(vars(self))


def _units(a) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return a[None, :] if a.ndim == 1 else a


def question_variance(units_a: np.ndarray, units_b: np.ndarray) -> float:
    """The questions' part of Var(Δ): ``U · var_u(d_u)`` less the seed noise inside each ``d_u``."""
    a, b = _units(units_a), _units(units_b)
    n_units = a.shape[1]
    if n_units < 2:
        return 0.0
    d = a.mean(axis=0) - b.mean(axis=0)
    total = n_units * float(np.var(d, ddof=1))
    noise = 0.0
    for arm in (a, b):
        if len(arm) > 1:
            noise += float(np.var(arm, axis=0, ddof=1).sum()) / len(arm)
    return max(0.0, total - noise)


def procedure_test(units_a, units_b, *, level: float = LEVEL) -> ProcedureTest:
    """Welch's t on per-seed scores, its variance widened by the questions' part.

    ``units_a``: ``(n_A, U)`` per-run contributions of each unit (a run's score is the row sum),
    units aligned between the arms; the same for ``units_b``. Returns the test of B − A."""
    from scipy.stats import t as student

    a, b = _units(units_a), _units(units_b)
    scores_a, scores_b = a.sum(axis=1), b.sum(axis=1)
    delta = float(scores_b.mean() - scores_a.mean())
    out = ProcedureTest(delta, len(a), len(b))
    if len(a) < 2 or len(b) < 2:
        return out
    var_a = float(np.var(scores_a, ddof=1)) / len(a)
    var_b = float(np.var(scores_b, ddof=1)) / len(b)
    var_q = question_variance(a, b)
    total = var_a + var_b + var_q
    if total <= 0:  # identical runs everywhere: nothing varies, nothing differs
        out.p, out.se, out.df, out.ci = (1.0 if delta == 0 else 0.0), 0.0, float("inf"), (delta, delta)
        out.seed_var, out.question_var = 0.0, 0.0
        return out
    denominator = var_a**2 / (len(a) - 1) + var_b**2 / (len(b) - 1) + var_q**2 / max(1, a.shape[1] - 1)
    df = total**2 / denominator
    se = float(np.sqrt(total))
    half = float(student.ppf(1 - level / 2, df)) * se
    out.p = float(2 * student.sf(abs(delta) / se, df))
    out.se, out.df, out.ci = se, float(df), (delta - half, delta + half)
    out.seed_var, out.question_var = var_a + var_b, var_q
    return out


@dataclass
class Spread:
    """A row's seed-to-seed spread, pooled over its points, and its questions' part."""

    seed_sd: float | None  # pooled standard deviation of per-seed scores within points
    df: int  # its degrees of freedom: Σ (n_k − 1)
    question_var: float  # a typical questions' part of Var(Δ) between two points


def pooled_spread(groups: list[np.ndarray]) -> Spread:
    """``groups``: per point, its ``(n_k, U)`` unit contributions."""
    groups = [_units(g) for g in groups]
    df = sum(len(g) - 1 for g in groups)
    seed_sd = None
    if df > 0:
        ss = sum(float(((g.sum(axis=1) - g.sum(axis=1).mean()) ** 2).sum()) for g in groups)
        seed_sd = float(np.sqrt(ss / df))
    pairs = [question_variance(g, h) for i, g in enumerate(groups) for h in groups[i + 1:]]
    return Spread(seed_sd, df, float(np.median(pairs)) if pairs else 0.0)


def min_detectable_effect(spread: Spread, n_a: int, n_b: int, *, level: float = LEVEL, power: float = POWER,
                          simulations: int = 4000, seed: int = 0) -> float | None:
    """The smallest true Δ that :func:`procedure_test` finds with probability ``power`` at
    two-sided ``level``, between arms of ``n_a`` and ``n_b`` seeds with the row's pooled spread;
    None without a spread.

    Found by simulating the test itself (per-seed scores normal with the pooled SD, the questions'
    part as measured), not by the textbook ``(t₁₋α/₂ + t_power)·SE``: with three seeds a side
    Welch's degrees of freedom are estimated (2 to 4), and the textbook figure promised 80 % power
    where simulated studies gave 65 % (docs/sweeps.md)."""
    from scipy.stats import t as student

    if spread.seed_sd is None or n_a < 2 or n_b < 2:
        return None
    rng = np.random.default_rng(seed)
    za = rng.standard_normal((simulations, n_a)) * spread.seed_sd
    zb = rng.standard_normal((simulations, n_b)) * spread.seed_sd
    var_a, var_b = za.var(axis=1, ddof=1) / n_a, zb.var(axis=1, ddof=1) / n_b
    var_q = spread.question_var
    total = var_a + var_b + var_q
    if not np.all(total > 0):
        return 0.0
    # Welch–Satterthwaite; the questions' part has U − 1 (about a thousand) degrees of freedom, so
    # its term in the denominator is negligible beside the seeds'
    df = total**2 / (var_a**2 / (n_a - 1) + var_b**2 / (n_b - 1))
    reach = student.ppf(1 - level / 2, df) * np.sqrt(total)  # |Δ̂| beyond this is significant
    # Δ̂ − Δ: the seeds' part and the question sample's part
    noise = zb.mean(axis=1) - za.mean(axis=1) + rng.standard_normal(simulations) * np.sqrt(var_q)

    def achieved(delta: float) -> float:
        return float(np.mean(np.abs(delta + noise) > reach))

    low, high = 0.0, float(np.max(reach) + np.max(np.abs(noise))) * 2  # power(high) = 1
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if achieved(mid) < power else (low, mid)
    return high


def seeds_needed(spread: Spread, target: float, *, level: float = LEVEL, power: float = POWER,
                 most: int = 1000) -> int | None:
    """Seeds per arm for ``target`` to be detectable (``None``: no spread measured, or even
    ``most`` seeds are not enough, e.g. the questions' part alone exceeds it)."""
    target = abs(target)
    if spread.seed_sd is None:
        return None

    def enough(n: int) -> bool:
        mde = min_detectable_effect(spread, n, n, level=level, power=power, simulations=2000)
        return mde is not None and mde <= target

    if not enough(most):
        return None
    low, high = 1, most  # enough(high); not known for low
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if mid >= 2 and enough(mid) else (mid, high)
    return high
