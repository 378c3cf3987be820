"""The procedure-level test: against scipy's Welch test where questions add nothing, by hand on a
tiny case, and calibrated on simulated studies with known truth at the α study's shape (5 points,
1,190 parallel questions, its measured seed variance) with 3 and 8 seeds: false positives under
the null, power at the minimum detectable effect it states, and the old per-question test's
false-positive rate for contrast."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from xlbench.core.calibration import ALPHA_STUDY_MONO, measure, rates, simulate_study
from xlbench.core.seed_variance import (
    Spread,
    min_detectable_effect,
    pooled_spread,
    procedure_test,
    question_variance,
    seeds_needed,
)


def _runs(scores, difficulty):
    """Runs whose every question moves with the run: a seed shift and nothing per question."""
    scores, difficulty = np.asarray(scores, float), np.asarray(difficulty, float)
    return (difficulty[None, :] - difficulty.mean() + scores[:, None]) / len(difficulty)


@pytest.mark.parametrize("seed", range(5))
def test_without_question_variance_it_is_welchs_test_on_per_seed_scores(seed):
    rng = np.random.default_rng(seed)
    difficulty = rng.random(50)
    a_scores, b_scores = rng.normal(0.7, 0.01, 3), rng.normal(0.71, 0.02, 4)
    a, b = _runs(a_scores, difficulty), _runs(b_scores, difficulty)
    assert question_variance(a, b) == 0.0
    test = procedure_test(a, b)
    ref = stats.ttest_ind(b_scores, a_scores, equal_var=False)
    assert test.delta == pytest.approx(b_scores.mean() - a_scores.mean(), abs=1e-12)
    assert test.p == pytest.approx(ref.pvalue, rel=1e-9) and test.df == pytest.approx(ref.df, rel=1e-9)
    lo, hi = ref.confidence_interval(0.95)
    assert test.ci == pytest.approx((lo, hi), rel=1e-9)


def test_hand_computed_case_with_both_parts():
    # two questions, two seeds a side; contributions are scores / 2
    a = np.array([[0.8, 0.6], [0.6, 0.6]]) / 2  # per-seed scores 0.7, 0.6
    b = np.array([[0.9, 0.5], [0.9, 0.7]]) / 2  # 0.7, 0.8
    test = procedure_test(a, b)
    assert test.delta == pytest.approx(0.1)
    seeds = 0.005 / 2 + 0.005 / 2  # s² = 0.005 per arm, over 2 seeds each
    # d_u = (0.45 - 0.35, 0.3 - 0.3) = (0.1, 0): U·var = 2 · 0.005 = 0.01; seed noise per unit:
    # arm a: var over seeds of (0.4, 0.3) and (0.3, 0.3) → 0.005 + 0, over 2 seeds → 0.0025;
    # arm b: (0.45, 0.45) and (0.25, 0.35) → 0 + 0.005 → 0.0025
    questions = 0.01 - 0.0025 - 0.0025
    assert test.seed_var == pytest.approx(seeds) and test.question_var == pytest.approx(questions)
    se = np.sqrt(seeds + questions)
    df = (seeds + questions) ** 2 / (0.0025**2 + 0.0025**2 + questions**2)
    assert test.se == pytest.approx(se) and test.df == pytest.approx(df)
    assert test.p == pytest.approx(2 * stats.t.sf(0.1 / se, df))


def test_one_seed_is_not_tested():
    a = np.random.default_rng(0).random((1, 30))
    b = np.random.default_rng(1).random((3, 30))
    test = procedure_test(a, b)
    assert not test.tested and test.p is None and test.ci is None
    assert min_detectable_effect(pooled_spread([a]), 1, 3) is None


def test_identical_arms_give_p_one():
    a = np.tile(np.linspace(0, 1, 20), (3, 1))
    test = procedure_test(a, a.copy())
    assert test.delta == 0 and test.p == 1.0


def test_the_measured_noise_model_is_recovered_from_simulated_data():
    truth = ALPHA_STUDY_MONO
    arms = simulate_study(truth, [0.0] * 5, 8, np.random.default_rng(7))
    got = measure(arms)
    assert got.units == truth.units
    assert got.unit_seed_sd == pytest.approx(truth.unit_seed_sd, rel=0.05)
    assert got.seed_sd == pytest.approx(truth.seed_sd, rel=0.4)  # from 5 × 7 degrees of freedom
    assert got.interaction_sd == pytest.approx(truth.interaction_sd, rel=0.3)


@pytest.mark.slow
@pytest.mark.parametrize("seeds", [3, 8])
def test_false_positive_rate_under_a_null_with_the_studys_seed_variance(seeds):
    """≥ 500 simulated studies: the procedure test's rate at .05 within [.02, .08]; the old
    per-question test on seed-averaged scores marks a large share of pure seed noise."""
    r = rates(ALPHA_STUDY_MONO, seeds=seeds, studies=500, permutations=1000, seed=11)
    print(f"{seeds} seeds: procedure {r.procedure:.3f}, per-question {r.per_question:.3f}, study-wise {r.family_wise:.3f}")
    assert 0.02 <= r.procedure <= 0.08
    assert r.family_wise <= 0.08  # Holm over the study's 7 tests keeps the study-wise rate
    assert r.per_question > 0.3


@pytest.mark.slow
@pytest.mark.parametrize("seeds", [3, 8])
def test_power_at_the_stated_minimum_detectable_effect_is_eighty_percent(seeds):
    m = ALPHA_STUDY_MONO
    spread = Spread(float(np.sqrt(m.seed_sd**2 + m.unit_seed_sd**2 / m.units)), 10, 2 * m.interaction_sd**2 / m.units)
    mde = min_detectable_effect(spread, seeds, seeds)
    r = rates(m, seeds=seeds, studies=500, delta=mde, per_question=False, seed=12)
    assert 0.72 <= r.procedure <= 0.88
    more = rates(m, seeds=seeds, studies=300, delta=2 * mde, per_question=False, seed=13)
    assert more.procedure > 0.95


def test_more_seeds_detect_smaller_effects_and_seeds_needed_is_the_first_enough():
    spread = Spread(0.005, 10, 1e-6)
    mdes = [min_detectable_effect(spread, n, n) for n in (2, 3, 5, 8, 20)]
    assert all(x > y for x, y in zip(mdes, mdes[1:]))
    n = seeds_needed(spread, 0.006)
    assert min_detectable_effect(spread, n, n, simulations=2000) <= 0.006 < min_detectable_effect(spread, n - 1, n - 1,
                                                                                                 simulations=2000)
    # the questions' part alone: (1.96 + 0.84) · √1e-6 ≈ 0.0028, unreachable whatever the seeds
    assert seeds_needed(spread, 0.002) is None
    assert seeds_needed(Spread(None, 0, 0.0), 0.01) is None
