"""Simulated studies with known truth, to calibrate the tests of a sweep.

A simulated study has ``points`` training procedures (e.g. five α values), each run with
``seeds`` seeds and scored on ``units`` parallel questions. A run's contribution of unit ``u`` is
``(base + q_u + τ_{k,u} + μ_k + g_{k,i} + e_{k,i,u}) / U`` so that its score is the mean over
units, as in :mod:`xlbench.core.compare`:

* ``q_u``: the question's difficulty, shared by every run (what pairing removes);
* ``τ_{k,u}``: how procedure ``k`` suits question ``u``, zero on average over the population of
  questions, not on a sample of them (the question-sampling variance of a difference);
* ``μ_k``: the procedure's true effect (all zero under the null);
* ``g_{k,i}``: seed ``i``'s shift of the whole run (batch order moves every question at once);
* ``e_{k,i,u}``: seed ``i``'s effect on one question.

:data:`ALPHA_STUDY_MONO` holds the sizes measured on the α study's mono mAP rows
(``bench/seed_calibration.py --measure``; docs/sweeps.md), so "a null with seed variance like the
study's" is this model with ``μ = 0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xlbench.core.seed_variance import procedure_test
from xlbench.core.significance import holm, randomization_test


@dataclass(frozen=True)
class NoiseModel:
    units: int
    base: float
    question_sd: float  # q_u
    interaction_sd: float  # τ_{k,u}
    seed_sd: float  # g_{k,i}
    unit_seed_sd: float  # e_{k,i,u}


# Measured on the α study (results/alpha-study.json, 15 runs, XQuAD-R mono mAP, 1,190 parallel
# questions): pooled within-α spreads, `python bench/seed_calibration.py --measure`.
ALPHA_STUDY_MONO = NoiseModel(units=1190, base=0.77, question_sd=0.248, interaction_sd=0.0188,
                              seed_sd=0.0043, unit_seed_sd=0.0407)


def measure(points: list[np.ndarray]) -> NoiseModel:
    """The noise model of a stored study's row: ``points`` holds, per grid value, its
    ``(seeds, units)`` contributions (as :func:`xlbench.core.compare.aligned_units` gives them)."""
    from xlbench.core.seed_variance import pooled_spread

    u = points[0].shape[1]
    unit_var = np.mean([np.var(p * u, axis=0, ddof=1).mean() for p in points if len(p) > 1])
    spread = pooled_spread(points)
    seed_var = max(0.0, spread.seed_sd**2 - unit_var / u)
    scores = np.concatenate([p * u for p in points])
    return NoiseModel(units=u, base=float(scores.mean()), question_sd=float(np.std(scores.mean(axis=0))),
                      interaction_sd=float(np.sqrt(spread.question_var * u / 2)), seed_sd=float(np.sqrt(seed_var)),
                      unit_seed_sd=float(np.sqrt(unit_var)))


def simulate_study(model: NoiseModel, effects: list[float], seeds: list[int] | int,
                   rng: np.random.Generator) -> list[np.ndarray]:
    """Per point, its ``(seeds, units)`` contributions (a run's score is the row sum)."""
    counts = [seeds] * len(effects) if isinstance(seeds, int) else list(seeds)
    u = model.units
    q = rng.normal(0.0, model.question_sd, u)
    out = []
    for mu, n in zip(effects, counts):
        tau = rng.normal(0.0, model.interaction_sd, u)
        g = rng.normal(0.0, model.seed_sd, (n, 1))
        e = rng.normal(0.0, model.unit_seed_sd, (n, u))
        out.append((model.base + q + tau + mu + g + e) / u)
    return out


@dataclass
class Rates:
    studies: int
    procedure: float  # share of studies where the procedure-level test gave p < level
    per_question: float | None  # the same for the per-question test on seed-averaged scores
    family_wise: float  # share of studies with any Holm-adjusted procedure-level mark


def rates(model: NoiseModel, *, seeds: int, studies: int, delta: float = 0.0, points: int = 5, level: float = 0.05,
          per_question: bool = True, permutations: int = 2000, seed: int = 0) -> Rates:
    """How often the tests mark the designated pair (the middle point against the last, as
    α = 0.5 against α = 1) at ``level`` when its true difference is ``delta`` and every other
    point equals the last; and how often the whole study (every point against both ends, Holm)
    marks anything."""
    rng = np.random.default_rng(seed)
    middle, last = points // 2, points - 1
    effects = [0.0] * points
    effects[middle] = delta
    hits = hits_pq = family = 0
    for s in range(studies):
        arms = simulate_study(model, effects, seeds, rng)
        test = procedure_test(arms[last], arms[middle])
        hits += test.p is not None and test.p < level
        if per_question:
            diff = arms[middle].mean(axis=0) - arms[last].mean(axis=0)
            p, _, _ = randomization_test(diff, permutations=permutations, seed=s)
            hits_pq += p < level
        ps = [procedure_test(arms[ref], arms[k]).p for ref in (0, last) for k in range(points)
              if k != ref and not (ref == last and k == 0)]
        family += min(holm(ps)) < level
    return Rates(studies, hits / studies, hits_pq / studies if per_question else None, family / studies)
