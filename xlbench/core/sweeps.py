"""A sweep as a study: each family's score against one grid key, over seeds, with tests about
the training procedure.

Input is what the store holds for each finished run of a sweep (config, per-query ranks); output
is a :class:`SweepStudy` that ``xlbench sweep show`` prints and draws and the app's Sweep screen
shows. Numbers are recomputed from the per-query ranks exactly as ``xlbench compare`` does
(:mod:`xlbench.core.compare`), so a point of the curve is the mean of the runs' table values.

* **Spread over seeds.** A point is the mean over its runs (one per seed) with a 95 % Student-t
  interval, ``mean ± t(0.975, n−1) · s / √n``; one run gives no interval.
* **Significance about procedures.** A point is a training procedure run with several seeds; each
  is tested against the two reference points (the first and the last grid value, e.g. α = 0 and
  α = 1) with :func:`xlbench.core.seed_variance.procedure_test`, which counts the seed-to-seed
  variance of both points and the variance of the question sample. A point with one seed is not
  tested (its seed variance is unknown). Holm's correction runs over every test of the study (all
  rows, points and references), the A–B test of the two references counted once.
* **Power.** Each row's seed spread, pooled over its points, gives the minimum detectable effect
  of each kind of comparison in the table, and the seeds a target difference would need.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from xlbench.core.compare import (
    MIRACL_ROWS,
    MetricRow,
    RunInput,
    aligned_units,
    common_results,
    flatten,
    row_units,
)
from xlbench.core.lareqa_report import PAYLOAD_FORMAT
from xlbench.core.metrics import spec
from xlbench.core.seed_variance import (
    ProcedureTest,
    Spread,
    min_detectable_effect,
    pooled_spread,
    procedure_test,
    seeds_needed,
)
from xlbench.core.significance import holm, stars

SEED_KEY = "train.seed"


def study_rows(metric: str = "map") -> list[tuple[str, str]]:
    """The LAReQA rows of a study: mono, cross and multi ``metric``, and the rank distance."""
    return [("mono", metric), ("cross", metric), ("multi", metric), ("bias", "rank_distance")]


@dataclass
class PointTest:
    """A point against a reference point, as training procedures (over seeds and questions)."""

    reference: int  # index of the reference point
    delta: float  # this point's mean minus the reference's
    p: float | None  # None: a side has one seed, seed variance unknown
    p_adjusted: float | None = None
    ci: tuple[float, float] | None = None  # 95 % interval of delta
    df: float | None = None
    n: tuple[int, int] = (0, 0)  # seeds of this point, of the reference

    @property
    def mark(self) -> str:
        return stars(self.p_adjusted)

    @classmethod
    def of(cls, reference: int, test: ProcedureTest) -> PointTest:
        """``test`` is this point (B) against the reference (A)."""
        return cls(reference, test.delta, test.p, ci=test.ci, df=test.df, n=(test.n_b, test.n_a))


@dataclass
class Point:
    x: object
    run_ids: list[int]
    seeds: list
    values: list[float]  # one per run, in run_ids order
    tests: list[PointTest] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def half_width(self) -> float | None:
        """Half the 95 % Student-t interval of the mean over runs (None for one run)."""
        if self.n < 2:
            return None
        from scipy.stats import t

        return float(t.ppf(0.975, self.n - 1) * np.std(self.values, ddof=1) / np.sqrt(self.n))


@dataclass
class StudyRow(MetricRow):
    points: list[Point]
    spread: Spread | None = None

    @property
    def label(self) -> str:
        m = spec(self.metric)
        return m.label if self.family == "bias" else f"{self.family} {m.label}"

    def detectable(self) -> list[tuple[tuple[int, int], float]]:
        """The minimum detectable effect (80 % power, two-sided .05, one test) of each seed-count
        pairing the row's tests make, e.g. ``[((3, 3), 0.021), ((8, 8), 0.011)]``."""
        if self.spread is None:
            return []
        pairs = sorted({tuple(sorted(t.n)) for p in self.points for t in p.tests})
        out = [(pair, min_detectable_effect(self.spread, *pair)) for pair in pairs]
        return [(pair, mde) for pair, mde in out if mde is not None]

    def seeds_for(self, target: float) -> int | None:
        return seeds_needed(self.spread, target) if self.spread is not None else None


@dataclass
class SweepStudy:
    x_key: str
    xs: list
    references: list[int]  # indices into xs of the points everything is tested against
    rows: list[StudyRow]
    notes: list[str]
    target: float | None = None  # a difference the user wants to detect (--target-delta)
    provisional: bool = False  # means and intervals only, the tests still running (provisional_study)

    def marks(self, row: StudyRow, k: int) -> str:
        """``a***`` / ``b*``: significant against the first / second reference (Holm-adjusted)."""
        out = []
        for test in row.points[k].tests:
            if test.mark:
                out.append(f"{'ab'[self.references.index(test.reference)]}{test.mark}")
        return " ".join(out)

    def cell(self, row: StudyRow, k: int) -> str:
        point = row.points[k]
        text = f"{point.mean:.{row.digits}f}"
        if point.half_width is not None:
            text += f" ± {point.half_width:.{row.digits}f}"
        return text

    def n_tests(self) -> int:
        return len(_distinct_tests(self.rows))

    def legend(self) -> str:
        if self.provisional:
            return ("mean ± 95 % CI over seeds (Student t), from each run's stored means"
                    + ("" if self.notes else "; tests over seeds running…"))
        if len(self.xs) < 2:
            return "mean ± 95 % CI over seeds (Student t); one grid value so far: nothing to test against"
        tested = self.references
        if not tested:
            return "mean ± 95 % CI over seeds (Student t); no end of the grid finished yet to test against"
        letters = " / ".join("ab"[k] for k in range(len(tested)))
        ends = " / ".join(f"{self.x_key}={self.xs[i]}" for i in tested)
        return (f"mean ± 95 % CI over seeds (Student t); {letters}: different from {ends} as a training procedure "
                f"(over seeds and questions: Welch t on per-seed scores with the question-sampling variance added), "
                f"Holm over {self.n_tests()} tests: * p<.05 ** p<.01 *** p<.001")

    def power_lines(self) -> list[str]:
        """Per row: the seed spread and the minimum detectable effect of the comparisons made,
        and with a target, the seeds it would need."""
        lines = []
        for row in self.rows:
            d = row.digits + 1
            if row.spread is None or row.spread.seed_sd is None:
                lines.append(f"{row.label}: every point has one seed, so the seed-to-seed variance is unknown: "
                             "no procedure-level test is possible (add seeds)")
                continue
            text = f"{row.label}: seed SD {row.spread.seed_sd:.{d}f} (pooled, {row.spread.df} df)"
            mdes = row.detectable()
            if mdes:
                text += "; detectable at 80 % power (.05, one test): " + ", ".join(
                    f"Δ ≥ {mde:.{d}f} ({a} vs {b} seeds)" for (a, b), mde in mdes)
            if self.target is not None and row.family != "bias":  # the target is in the score's units
                n = row.seeds_for(self.target)
                text += (f"; Δ = {self.target:g} needs {n} seeds per point" if n is not None else
                         f"; Δ = {self.target:g} is not reachable by adding seeds (the questions' part alone is larger)")
            lines.append(text)
        return lines

    def as_dict(self) -> dict:
        return {
            "x_key": self.x_key, "x": self.xs, "references": [self.xs[i] for i in self.references],
            "notes": self.notes, "target_delta": self.target,
            "test": "procedure: Welch t over seeds + question-sampling variance (xlbench.core.seed_variance)",
            "rows": [{"dataset": r.dataset, "family": r.family, "metric": r.metric,
                      "spread": None if r.spread is None else vars(r.spread),
                      "detectable": [{"seeds": list(pair), "delta": mde} for pair, mde in r.detectable()],
                      "seeds_needed": None if self.target is None or r.family == "bias" else r.seeds_for(self.target),
                      "points": [
                {"x": p.x, "runs": p.run_ids, "seeds": p.seeds, "values": p.values, "mean": p.mean,
                 "ci95": None if p.half_width is None else [p.mean - p.half_width, p.mean + p.half_width],
                 "tests": [{"against": self.xs[t.reference], "delta": t.delta, "p": t.p, "p_holm": t.p_adjusted,
                            "ci95": None if t.ci is None else list(t.ci), "df": t.df, "seeds": list(t.n)}
                           for t in p.tests]} for p in r.points]} for r in self.rows],
        }


def study_from_dict(d: dict) -> SweepStudy:
    """The inverse of :meth:`SweepStudy.as_dict` (what ``xlbench sweep show --format json`` prints)."""
    xs = d["x"]
    rows = [StudyRow(r["dataset"], r["family"], r["metric"], [
        Point(p["x"], p["runs"], p["seeds"], p["values"],
              [PointTest(xs.index(t["against"]), t["delta"], t["p"], t["p_holm"],
                         None if t["ci95"] is None else tuple(t["ci95"]), t["df"], tuple(t["seeds"]))
               for t in p["tests"]])
        for p in r["points"]], None if r["spread"] is None else Spread(**r["spread"])) for r in d["rows"]]
    return SweepStudy(d["x_key"], xs, [xs.index(x) for x in d["references"]], rows, d["notes"], d.get("target_delta"))


def grid_ends(grid: dict[str, list]) -> tuple:
    """The first and last value of a sweep's axis, as the grid lists them."""
    values = grid.get(x_key_of(grid), [])
    return (values[0], values[-1]) if values else ()


def x_key_of(grid: dict[str, list]) -> str:
    """The axis of a sweep: its first grid key that is not the seed (the seed if that is all)."""
    return next((k for k in grid if k != SEED_KEY), SEED_KEY)


def sweep_study(runs: list[RunInput], x_key: str, *, dataset: str | None = None, metric: str = "map",
                ends: tuple | None = None, target: float | None = None) -> SweepStudy:
    """Group finished runs by ``x_key``'s value and test every point against the ends of the grid:
    ``ends`` (the grid's first and last value, e.g. α = 0 and α = 1; an end with no finished run
    yet is not tested against) or, without it, the smallest and largest value present."""
    notes: list[str] = []
    runs = [r for r in runs if r.results]
    if not runs:
        return SweepStudy(x_key, [], [], [], ["no finished run has results yet"], target)
    xs, groups, references = _points_of([r.config for r in runs], x_key, ends)
    datasets = sorted(set.intersection(*(set(r.results) for r in runs)))
    if dataset is not None:
        if dataset not in datasets:
            raise ValueError(f"not every finished run evaluated {dataset!r} (in common: {', '.join(datasets) or 'none'})")
        datasets = [dataset]
    rows: list[StudyRow] = []
    for name in datasets:
        common = common_results(runs, name, notes)
        if common is None:
            continue
        fmt, data, keep, same_langs = common
        specs = study_rows(metric) if fmt == PAYLOAD_FORMAT else MIRACL_ROWS[:1]
        for family, row_metric in specs:
            if fmt == PAYLOAD_FORMAT and family in ("multi", "bias") and not same_langs:
                continue
            units = aligned_units([row_units(fmt, d, keep, family, row_metric) for d in data])
            if units.shape[1] == 0:
                continue
            per_point = [units[g] for g in groups]
            points = [Point(x, [runs[i].run_id for i in g], [flatten(runs[i].config).get(SEED_KEY) for i in g],
                            [float(units[i].sum()) for i in g]) for x, g in zip(xs, groups)]
            for k, point in enumerate(points):
                point.tests = [PointTest.of(ref, procedure_test(per_point[ref], per_point[k]))
                               for ref in references if ref != k]
            rows.append(StudyRow(name, family, row_metric, points, pooled_spread(per_point)))
    _holm(rows)
    sizes = sorted({len(g) for g in groups})
    if len(sizes) > 1:
        notes.append(f"points have different numbers of runs ({', '.join(map(str, sizes))}): each test uses the "
                     "seeds its two points have")
    single = [str(x) for x, g in zip(xs, groups) if len(g) == 1]
    if single and len(xs) > 1:
        notes.append(f"{x_key}={', '.join(single)}: one seed, so its seed-to-seed variance is unknown: not tested")
    return SweepStudy(x_key, xs, references, rows, notes, target)


def _points_of(configs: list[dict], x_key: str, ends: tuple | None) -> tuple[list, list[list[int]], list[int]]:
    """The x values in order, the runs (indices into ``configs``) at each, and the reference points:
    ``ends`` where given and present, else the first and last."""
    by_x: dict[str, list[int]] = {}
    values_of: dict[str, object] = {}
    for i, config in enumerate(configs):
        x = flatten(config).get(x_key)
        key = json.dumps(x, sort_keys=True, default=str)
        by_x.setdefault(key, []).append(i)
        values_of[key] = x
    order = sorted(by_x, key=lambda k: (not isinstance(values_of[k], (int, float)), values_of[k]
                                        if isinstance(values_of[k], (int, float)) else str(values_of[k])))
    groups = [by_x[k] for k in order]
    xs = [values_of[k] for k in order]
    if ends is None:
        references = sorted({0, len(xs) - 1})
    else:
        references = [i for end in dict.fromkeys(ends) for i, x in enumerate(xs) if x == end][:2]
    return xs, groups, references


def provisional_study(runs: list[tuple[int, dict, dict]], x_key: str, *, metric: str = "map",
                      ends: tuple | None = None) -> SweepStudy:
    """Means and intervals at once, from each finished run's stored family means
    (``(run id, config, report)``, the report of its first dataset), before the tests over seeds
    are done: no marks, no power lines. What the app draws while ``sweep show`` tests."""
    runs = [r for r in runs if r[2]]
    if not runs:
        return SweepStudy(x_key, [], [], [], ["no finished run has results yet"])
    xs, groups, references = _points_of([config for _, config, _ in runs], x_key, ends)
    dataset = runs[0][2]["dataset"]
    rows = []
    for family, row_metric in study_rows(metric):
        if family == "bias":
            values = [(r.get("bias", {}).get(row_metric) or {}).get("macro") for _, _, r in runs]
        else:
            values = [r["summary"].get(family, {}).get(row_metric) for _, _, r in runs]
        if any(v is None for v in values):
            continue
        points = [Point(x, [runs[i][0] for i in g], [flatten(runs[i][1]).get(SEED_KEY) for i in g],
                        [float(values[i]) for i in g]) for x, g in zip(xs, groups)]
        rows.append(StudyRow(dataset, family, row_metric, points))
    return SweepStudy(x_key, xs, references, rows, [], provisional=True)


def _distinct_tests(rows: list[StudyRow]) -> dict[tuple[int, tuple[int, int]], list[PointTest]]:
    """Every test made, keyed by (row, pair of points): a reference against the other reference is
    one test seen from both ends."""
    distinct: dict[tuple[int, tuple[int, int]], list[PointTest]] = {}
    for r, row in enumerate(rows):
        for k, point in enumerate(row.points):
            for test in point.tests:
                if test.p is not None:
                    distinct.setdefault((r, tuple(sorted((k, test.reference)))), []).append(test)
    return distinct


def _holm(rows: list[StudyRow]) -> None:
    """Holm over every distinct test made."""
    distinct = _distinct_tests(rows)
    keys = list(distinct)
    adjusted = holm([distinct[key][0].p for key in keys])
    for key, p in zip(keys, adjusted):
        for test in distinct[key]:
            test.p_adjusted = p
