"""Side-by-side comparison of stored runs, with paired significance tests (pure functions).

Input is what the store holds for each run (config, per-query ranks per dataset); output is a
:class:`Comparison` that the CLI renders as a Rich table or exports, and the TUI shows as is.

* Every number is recomputed from the per-query ranks on the **intersection** of what all runs
  evaluated (languages, query ids); if that is smaller than a run's own set the notes say so, and
  the multilingual rows are dropped when the language sets differ (a pool of other languages is a
  different task).
* Each row compares every run with the first (reference): Δ, a paired randomization test and a
  paired bootstrap 95 % interval over units (a parallel question with all its language versions;
  a MIRACL query), p-values Holm-corrected across all the rows of the table. This test is about
  *these models*: whether the trained models differ on these questions, not whether their
  training procedures would again with other seeds.
* Runs can be grouped (``group_by="sampler.alpha"``): runs that differ only in the key's value
  and seed are pooled into mean ± std over seeds, and groups are tested as *training procedures*
  (:func:`xlbench.core.seed_variance.procedure_test`: seed-to-seed and question-sampling
  variance); a group with one seed is not tested, its seed variance being unknown.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from xlbench.core.facts import facts_diff
from xlbench.core.lareqa_report import PAYLOAD_FORMAT, LareqaRanks
from xlbench.core.metrics import (
    METRICS,
    RANK_METRICS,
    language_bias,
    spec,
    trec_ndcg_cut,
    trec_recall,
)
from xlbench.core.payloads import PayloadError, hits_document
from xlbench.core.seed_variance import procedure_test
from xlbench.core.significance import holm, paired_test, stars

MODELS_TEST = "models"  # these trained models, on these questions
PROCEDURE_TEST = "procedure"  # these training procedures, over seeds and questions

# The rows of a compare table, from the metric registry (xlbench.core.metrics.METRICS).
LAREQA_ROWS = [(f, m.name) for f in ("mono", "cross", "multi") for m in METRICS.values() if "lareqa" in m.compared] + [
    ("bias", m.name) for m in METRICS.values() if "bias" in m.compared]
MIRACL_ROWS = [("mono", m.name) for m in METRICS.values() if "miracl" in m.compared]


@dataclass
class RunInput:
    run_id: int
    name: str
    config: dict
    results: dict[str, tuple[str, bytes]]  # dataset -> (payload format, payload)
    versions: dict[str, str] = field(default_factory=dict)
    env: dict = field(default_factory=dict)  # the run's env record: where it ran


@dataclass
class CompareCell:
    """One run's (or group's) value in a compare row, with its Δ and test against the first."""

    value: float
    delta: float | None = None
    p: float | None = None
    p_adjusted: float | None = None
    ci: tuple[float, float] | None = None
    std: float | None = None
    n: int = 1
    test: str | None = None  # MODELS_TEST or PROCEDURE_TEST; None for the reference and untested cells

    @property
    def mark(self) -> str:
        return stars(self.p_adjusted)


@dataclass
class MetricRow:
    """A table row about one metric of one family on one dataset (compare tables, sweep studies)."""

    dataset: str
    family: str
    metric: str

    @property
    def lower_is_better(self) -> bool:
        return spec(self.metric).lower_is_better

    @property
    def digits(self) -> int:
        return spec(self.metric).digits


@dataclass
class Row(MetricRow):
    cells: list[CompareCell]

    def best(self) -> int:
        values = [c.value for c in self.cells]
        return int(np.argmin(values) if self.lower_is_better else np.argmax(values))


@dataclass
class Comparison:
    columns: list[str]  # run (or group) labels; the first is the reference
    rows: list[Row]
    config_diff: dict[str, list]
    notes: list[str]
    matrices: dict[str, dict] = field(default_factory=dict)  # dataset -> {"languages", "family", "delta": [[...]] per column}
    permutations: int = 0
    env_runs: list[str] = field(default_factory=list)  # run labels for env_diff's columns
    env_diff: dict[str, list] = field(default_factory=dict)  # where-it-ran facts that differ, per run
    test: str = MODELS_TEST  # what the marks are about

    def legend(self) -> str:
        tested = sum(c.p is not None for r in self.rows for c in r.cells[1:])
        if self.test == PROCEDURE_TEST:
            return (f"this training procedure, over seeds: Welch t on per-seed scores with the question-sampling "
                    f"variance added, Holm-corrected over {tested} comparisons; a group of one seed is not tested")
        return (f"these models: paired randomization test over questions ({self.permutations:,} permutations), "
                f"Holm-corrected over {tested} comparisons")

    def as_dict(self) -> dict:
        return {
            "columns": self.columns, "reference": self.columns[0] if self.columns else None,
            "rows": [{"dataset": r.dataset, "family": r.family, "metric": r.metric,
                      "cells": [{k: v for k, v in vars(c).items()} | {"mark": c.mark} for c in r.cells]} for r in self.rows],
            "config_diff": self.config_diff, "notes": self.notes, "matrices": self.matrices,
            "permutations": self.permutations, "env_runs": self.env_runs, "env_diff": self.env_diff,
            "test": self.test, "legend": self.legend(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Comparison:
        """The inverse of :meth:`as_dict` (what ``xlbench compare --format json`` prints)."""
        fields = ("value", "delta", "p", "p_adjusted", "ci", "std", "n", "test")
        rows = [Row(r["dataset"], r["family"], r["metric"],
                    [CompareCell(**{k: (tuple(c[k]) if k == "ci" and c[k] is not None else c[k]) for k in fields if k in c})
                     for c in r["cells"]]) for r in d["rows"]]
        return cls(d["columns"], rows, d["config_diff"], d["notes"], d.get("matrices", {}), d.get("permutations", 0),
                   d.get("env_runs", []), d.get("env_diff", {}), d.get("test", MODELS_TEST))


# --- per-unit scores -------------------------------------------------------------------------


@dataclass
class UnitScores:
    """For one dataset row: per unit, its weighted contribution to the row's value."""

    units: list[str]
    contrib: np.ndarray  # (U,) Σ over the unit's (query, cell) of weight × score; value = contrib.sum()


def _restrict(r: LareqaRanks, languages: list[str], keys: set[tuple[str, str]]) -> LareqaRanks:
    lang_idx = [r.languages.index(lang) for lang in languages]
    q_keep = np.array([(r.languages[li], qid) in keys and r.languages[li] in languages
                       for qid, li in zip(r.query_ids, r.query_lang)], dtype=bool)
    remap = {old: new for new, old in enumerate(lang_idx)}
    return LareqaRanks(languages, [q for q, k in zip(r.query_ids, q_keep) if k],
                       np.array([remap[li] for li in r.query_lang[q_keep]], dtype=np.int64),
                       r.block_rank[q_keep][:, lang_idx], r.pool_rank[q_keep][:, lang_idx], r.pool_sizes[lang_idx])


def lareqa_units(r: LareqaRanks, family: str, metric: str) -> UnitScores:
    """Per-question contributions whose sum is the family's macro mean (or bias macro mean)."""
    contrib: dict[str, float] = defaultdict(float)
    if family == "bias":
        per_query = language_bias(r.pool_rank, r.query_lang, len(r.languages))[metric]
        langs = [x for x in range(len(r.languages)) if np.isfinite(per_query[r.query_lang == x]).any()]
        for x in langs:
            sel = np.nonzero((r.query_lang == x) & np.isfinite(per_query))[0]
            for q in sel:
                contrib[r.query_ids[q]] += per_query[q] / (len(sel) * len(langs))
        return UnitScores(list(contrib), np.array(list(contrib.values())))
    fn = RANK_METRICS[metric]
    cells = []
    for x in range(len(r.languages)):
        mine = r.query_lang == x
        if family == "multi":
            sel = np.nonzero(mine)[0]
            if len(sel):
                cells.append((sel, fn(r.pool_rank[sel])))
            continue
        for y in range(len(r.languages)):
            if (x == y) != (family == "mono"):
                continue
            sel = np.nonzero(mine & (r.block_rank[:, y] > 0))[0]
            if len(sel):
                cells.append((sel, fn(r.block_rank[sel, y][:, None])))
    for sel, scores in cells:
        w = 1.0 / (len(cells) * len(sel))
        for q, s in zip(sel, scores):
            contrib[r.query_ids[q]] += w * s
    return UnitScores(list(contrib), np.array(list(contrib.values())))


def miracl_units(data: dict, metric: str, keep: set[tuple[str, str]] | None) -> UnitScores:
    """``data``: a run's decoded MIRACL payload (per query: its judged ids and ranked hits)."""
    depth = data["depth"]
    by_lang: dict[str, list] = defaultdict(list)
    for q in data["queries"]:
        if keep is None or (q["lang"], q["qid"]) in keep:
            by_lang[q["lang"]].append(q)
    contrib: dict[str, float] = {}
    for lang, queries in by_lang.items():
        for q in queries:
            gains = [0] * depth
            for rank, grade in q["hits"]:
                gains[rank - 1] = grade
            score = trec_ndcg_cut(gains, q["judged"], 10) if metric == "ndcg@10" else trec_recall(gains, len(q["judged"]), depth)
            contrib[f"{lang}:{q['qid']}"] = score / (len(queries) * len(by_lang))
    return UnitScores(list(contrib), np.array(list(contrib.values())))


# --- the comparison ------------------------------------------------------------------------


# Config sections that say where a run is mirrored, not what it is: never a difference between runs.
NOT_EXPERIMENT = ("report",)


def config_diff(configs: list[dict]) -> dict[str, list]:
    flat = [flatten({k: v for k, v in c.items() if k not in NOT_EXPERIMENT}) for c in configs]
    keys = sorted(set().union(*flat)) if flat else []
    return {k: [f.get(k) for f in flat] for k in keys if len({json.dumps(f.get(k), sort_keys=True) for f in flat}) > 1}


def flatten(d: dict, prefix: str = "") -> dict:
    """Nested config keys as dotted ones: ``{"sampler": {"alpha": 0.5}}`` → ``{"sampler.alpha": 0.5}``."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def common_results(runs: list[RunInput], dataset: str, notes: list[str]):
    """Each run's decoded results for a dataset, restricted to what every run has:
    ``(format, per-run data, MIRACL (language, query id) keys or None, same languages)``."""
    formats = {r.results[dataset][0] for r in runs}
    if len(formats) != 1:
        notes.append(f"{dataset}: stored in different formats {sorted(formats)}; not compared")
        return None
    fmt = formats.pop()
    versions = {r.versions.get(dataset) for r in runs}
    if len(versions) > 1:
        notes.append(f"{dataset}: runs evaluated different dataset versions ({', '.join(sorted(map(str, versions)))}); "
                     "compared on the questions they share")
    if fmt == PAYLOAD_FORMAT:
        ranks = [_decoded(r, dataset, LareqaRanks.from_bytes) for r in runs]
        languages = sorted(set.intersection(*(set(x.languages) for x in ranks)))
        keys = set.intersection(*({(x.languages[li], q) for q, li in zip(x.query_ids, x.query_lang)} for x in ranks))
        same_langs = all(sorted(x.languages) == languages for x in ranks)
        for run, x in zip(runs, ranks):
            if not same_langs:
                notes.append(f"{dataset}: run {run.run_id} has languages {','.join(x.languages)}; compared on the "
                             f"intersection {','.join(languages)} (multilingual and bias rows dropped: different pools)")
        return fmt, [_restrict(x, languages, keys) for x in ranks], None, same_langs
    decoded = [_decoded(r, dataset, hits_document) for r in runs]
    keys = set.intersection(*({(q["lang"], q["qid"]) for q in d["queries"]} for d in decoded))
    return fmt, decoded, keys, True


def _decoded(run: RunInput, dataset: str, decode):
    try:
        return decode(run.results[dataset][1])
    except PayloadError as exc:
        raise PayloadError(f"run {run.run_id}: its stored {dataset} per-query payload: {exc}") from None


def row_units(fmt: str, data, keep, family: str, metric: str) -> UnitScores:
    if fmt == PAYLOAD_FORMAT:
        return lareqa_units(data, family, metric)
    return miracl_units(data, metric, keep)


def aligned_units(units: list[UnitScores]) -> np.ndarray:
    """(runs, U) contributions over the units every run has, in a common order."""
    common = sorted(set.intersection(*(set(u.units) for u in units)))
    out = np.zeros((len(units), len(common)))
    for i, u in enumerate(units):
        index = {name: j for j, name in enumerate(u.units)}
        out[i] = u.contrib[[index[name] for name in common]]
    return out


def compare_runs(runs: list[RunInput], *, groups: list[list[int]] | None = None, labels: list[str] | None = None,
                 matrix_family: str = "cross", permutations: int = 10_000, seed: int = 0) -> Comparison:
    """Compare runs against the first one (*these models*, per-question paired tests), or groups
    of run indices that differ only in seed against the first group (*these procedures*, over
    seeds and questions)."""
    procedures = groups is not None
    groups = groups or [[i] for i in range(len(runs))]
    labels = labels or [f"{runs[g[0]].run_id}: {runs[g[0]].name}" if len(g) == 1 else f"group {k}" for k, g in enumerate(groups)]
    notes: list[str] = []
    datasets = sorted(set.intersection(*(set(r.results) for r in runs))) if runs else []
    missing = sorted(set().union(*(set(r.results) for r in runs)) - set(datasets)) if runs else []
    if missing:
        notes.append(f"not every run evaluated {', '.join(missing)}: left out")
    rows: list[Row] = []
    pending_p: list[tuple[Row, int]] = []
    matrices: dict[str, dict] = {}
    # enough draws, where nothing was as extreme, for Holm over every comparison to reach 0.001
    n_tests = sum(len(LAREQA_ROWS) for _ in datasets) * max(1, len(groups) - 1)
    extend_to = int(np.ceil(2 * n_tests / 0.001))
    for dataset in datasets:
        common = common_results(runs, dataset, notes)
        if common is None:
            continue
        fmt, data, keep, same_langs = common
        specs = LAREQA_ROWS if fmt == PAYLOAD_FORMAT else MIRACL_ROWS
        for family, metric in specs:
            if fmt == PAYLOAD_FORMAT and family in ("multi", "bias") and not same_langs:
                continue
            units = aligned_units([row_units(fmt, d, keep, family, metric) for d in data])
            if units.shape[1] == 0:
                continue
            group_units = [units[g].mean(axis=0) for g in groups]
            cells = []
            for k, g in enumerate(groups):
                per_run = units[g].sum(axis=1)
                cell = CompareCell(float(group_units[k].sum()), std=float(per_run.std(ddof=1)) if len(g) > 1 else None, n=len(g))
                if k > 0 and procedures:
                    test = procedure_test(units[groups[0]], units[g])
                    cell.delta, cell.p, cell.ci = test.delta, test.p, test.ci
                    cell.test = PROCEDURE_TEST if test.tested else None
                elif k > 0:
                    test = paired_test(group_units[k] - group_units[0], permutations=permutations, resamples=permutations,
                                       seed=seed, extend_to=extend_to)
                    cell.delta, cell.p, cell.ci = test.delta, test.p_value, (test.ci_low, test.ci_high)
                    cell.test = MODELS_TEST
                cells.append(cell)
            row = Row(dataset, family, metric, cells)
            rows.append(row)
            pending_p += [(row, k) for k in range(1, len(groups)) if cells[k].p is not None]
        if fmt == PAYLOAD_FORMAT:
            matrices[dataset] = _delta_matrix(data, groups, matrix_family)
    adjusted = holm([row.cells[k].p for row, k in pending_p])
    for (row, k), p in zip(pending_p, adjusted):
        row.cells[k].p_adjusted = p
    if procedures:
        single = [labels[k] for k, g in enumerate(groups) if len(g) == 1]
        if single and len(groups) > 1:
            notes.append(f"one seed in {'; '.join(single)}: its seed-to-seed variance is unknown, so no test "
                         "involving it (add seeds)")
    elif len(groups) > 1:
        notes.append("each column is one trained model: the marks say these models differ on these questions, not "
                     "that their training procedures would with other seeds (seed variance unknown; for that, "
                     "compare groups of seeds: --group-by KEY or --sweep ID)")
    diff = config_diff([runs[g[0]].config for g in groups]) if len(groups) > 1 else {}
    env_runs, env_diff = _environment_diff(runs, notes)
    return Comparison(labels, rows, diff, notes, matrices, permutations if not procedures else 0, env_runs, env_diff,
                      PROCEDURE_TEST if procedures else MODELS_TEST)


def _environment_diff(runs: list[RunInput], notes: list[str]) -> tuple[list[str], dict[str, list]]:
    """Where-it-ran facts that differ between the runs, with a note saying what that can move."""
    recorded = [r for r in runs if "hardware" in r.env]
    unknown = [str(r.run_id) for r in runs if "hardware" not in r.env]
    if unknown:
        notes.append(f"run{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} recorded no hardware or library facts")
    diff = facts_diff([r.env for r in recorded]) if len(recorded) > 1 else {}
    if diff:
        keys = sorted({k.split(".")[0] for k in diff})
        notes.append(f"runs made on different hardware or library versions ({', '.join(keys)} differ): ranks are "
                     "exact for given embeddings, but embeddings and training depend on the float32 kernels")
    return [str(r.run_id) for r in recorded], diff


def _delta_matrix(ranks: list[LareqaRanks], groups: list[list[int]], family: str) -> dict:
    """Per (query language, corpus language) mAP of each group minus the reference group's."""
    langs = ranks[0].languages

    def cell_map(r: LareqaRanks, x: int, y: int | None) -> float | None:
        sel = r.query_lang == x
        if y is None:
            return float(RANK_METRICS["map"](r.pool_rank[sel]).mean()) if sel.any() else None
        sel = sel & (r.block_rank[:, y] > 0)
        return float(RANK_METRICS["map"](r.block_rank[sel, y][:, None]).mean()) if sel.any() else None

    def grid(idx: list[int]):
        out = []
        for x in range(len(langs)):
            row = []
            for y in list(range(len(langs))) + [None]:
                vals = [cell_map(ranks[i], x, y) for i in idx]
                row.append(None if any(v is None for v in vals) else float(np.mean(vals)))
            out.append(row)
        return out

    ref = grid(groups[0])
    deltas = []
    for g in groups[1:]:
        cur = grid(g)
        deltas.append([[None if a is None or b is None else b - a for a, b in zip(ra, rb)] for ra, rb in zip(ref, cur)])
    return {"languages": langs, "columns": langs + ["all"], "family": family, "reference": ref, "delta": deltas}


def group_runs(configs: list[dict], key: str, seed_key: str = "train.seed") -> list[list[int]]:
    """Indices of runs grouped by the value of ``key`` (e.g. ``sampler.alpha``); runs whose other
    settings differ beyond ``key`` and the seed are kept apart."""
    flat = [flatten(c) for c in configs]
    buckets: dict[str, list[int]] = {}
    for i, f in enumerate(flat):
        rest = {k: v for k, v in f.items() if k not in (key, seed_key, "name")}
        signature = json.dumps([f.get(key), rest], sort_keys=True, default=str)
        buckets.setdefault(signature, []).append(i)
    return list(buckets.values())
