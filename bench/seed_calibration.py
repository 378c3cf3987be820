"""Calibration of a sweep's significance marks on simulated studies with known truth.

Studies shaped like the α study (5 grid points, 1,190 parallel questions) with seed variance like
its own, at 3 and 8 seeds per point:

* under the null (every point the same procedure): how often the procedure-level test
  (xlbench.core.seed_variance) marks the pair α = 0.5 vs α = 1 at p < .05, beside the per-question
  randomization test on seed-averaged scores that `sweep show` used before; and how often a whole
  study (every point against both ends, Holm) marks anything;
* under a known effect: the power at a fixed Δ and at the minimum detectable effect that
  `sweep show` states (which should give 80 %).

    python bench/seed_calibration.py                     # the table in docs/sweeps.md (~4 min)
    python bench/seed_calibration.py --studies 200       # quicker, rougher
    python bench/seed_calibration.py --measure --db sqlite:///study.sqlite --sweep 1   # the noise model of a stored sweep
    python bench/seed_calibration.py --regroup --db sqlite:///study.sqlite --sweep 1   # a null made of the study's own runs

``--regroup`` takes the sweep's first 15 runs (5 grid values × 3 seeds) and regroups them into 3
arms that each hold one run of every grid value (seeds rotated): the arms are the same mix of
procedures, so every difference between them is seed noise; it prints how many of the 12 arm
comparisons (4 rows × 3 pairs) each test marks.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from xlbench.core.calibration import ALPHA_STUDY_MONO, NoiseModel, rates
from xlbench.core.seed_variance import Spread, min_detectable_effect


def measured(db: str, sweep: int, family: str) -> NoiseModel:
    import json

    from xlbench.core.compare import aligned_units, common_results, flatten, row_units
    from xlbench.core.sweeps import x_key_of
    from xlbench.store.store import Store

    store = Store(db)
    row, runs = store.sweep(sweep)
    inputs = store.run_inputs([r.id for r in runs if r.status == "finished"])
    key = x_key_of(json.loads(row.grid_json))
    fmt, data, keep, _ = common_results(inputs, "xquad-r", [])
    units = aligned_units([row_units(fmt, d, keep, family, "map") for d in data])
    xs = [flatten(r.config).get(key) for r in inputs]
    from xlbench.core.calibration import measure

    return measure([units[[i for i, x in enumerate(xs) if x == v]] for v in sorted(set(xs))])


def regrouped(db: str, sweep: int) -> None:
    import json

    from xlbench.core.compare import aligned_units, common_results, flatten, row_units
    from xlbench.core.seed_variance import procedure_test
    from xlbench.core.significance import holm, randomization_test
    from xlbench.core.sweeps import SEED_KEY, study_rows, x_key_of
    from xlbench.store.store import Store

    store = Store(db)
    row, runs = store.sweep(sweep)
    key = x_key_of(json.loads(row.grid_json))
    inputs = store.run_inputs([r.id for r in runs if r.status == "finished"][:15])
    fmt, data, keep, _ = common_results(inputs, "xquad-r", [])
    xs = sorted({flatten(r.config)[key] for r in inputs})
    arms: list[list[int]] = [[], [], []]
    for i, r in enumerate(inputs):
        f = flatten(r.config)
        arms[(xs.index(f[key]) + int(f[SEED_KEY])) % 3].append(i)
    old, new = [], []
    for family, metric in study_rows():
        units = aligned_units([row_units(fmt, d, keep, family, metric) for d in data])
        for a in range(3):
            for b in range(a + 1, 3):
                diff = units[arms[b]].mean(axis=0) - units[arms[a]].mean(axis=0)
                old.append(randomization_test(diff, permutations=10_000, seed=0, extend_to=24_000)[0])
                new.append(procedure_test(units[arms[a]], units[arms[b]]).p)
    for name, ps in (("per-question test on seed-averaged scores (old)", old), ("procedure-level test (new)", new)):
        print(f"{name}: {sum(p < 0.05 for p in holm(ps))} of {len(ps)} arm comparisons marked (Holm, p < .05)")


def model_spread(m: NoiseModel) -> Spread:
    """The spread `sweep show` would measure on a study drawn from ``m``."""
    return Spread(float(np.sqrt(m.seed_sd**2 + m.unit_seed_sd**2 / m.units)), 10, 2 * m.interaction_sd**2 / m.units)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--studies", type=int, default=1000)
    ap.add_argument("--seeds", default="3,8")
    ap.add_argument("--delta", type=float, default=0.01, help="a fixed true effect for the power column")
    ap.add_argument("--measure", action="store_true", help="print the noise model of --db/--sweep and use it")
    ap.add_argument("--db")
    ap.add_argument("--sweep", type=int, default=1)
    ap.add_argument("--family", default="mono")
    ap.add_argument("--regroup", action="store_true", help="the null made of the study's own runs (needs --db)")
    args = ap.parse_args()
    if args.regroup:
        regrouped(args.db, args.sweep)
        return

    model = ALPHA_STUDY_MONO
    if args.measure:
        model = measured(args.db, args.sweep, args.family)
        print(f"measured on sweep {args.sweep} ({args.family} mAP): {model}")
    print(f"noise model: {model}")
    print(f"{args.studies} simulated studies per cell; 5 points; pair = middle point vs last; rates at p < .05\n")
    print("| seeds per point | false positives, procedure test | false positives, per-question test (old) "
          "| any mark in the study (Holm), procedure | power at Δ = %g | MDE (80 %%) stated | power at the MDE |"
          % args.delta)
    print("|---|---|---|---|---|---|---|")
    for n in (int(s) for s in args.seeds.split(",")):
        t0 = time.perf_counter()
        null = rates(model, seeds=n, studies=args.studies, seed=1)
        fixed = rates(model, seeds=n, studies=args.studies, delta=args.delta, per_question=False, seed=2)
        mde = min_detectable_effect(model_spread(model), n, n)
        at_mde = rates(model, seeds=n, studies=args.studies, delta=mde, per_question=False, seed=3)
        print(f"| {n} | {null.procedure:.3f} | {null.per_question:.3f} | {null.family_wise:.3f} | "
              f"{fixed.procedure:.3f} | {mde:.4f} | {at_mde.procedure:.3f} |  ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
