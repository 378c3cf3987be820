"""Retrieval metrics as pure numpy functions over the ranks of relevant items.

Every metric xlbench reports is a function of where the relevant items landed, so the engine
computes (and stores) only those ranks. Conventions:

* ``ranks`` is an integer array of shape ``(n_queries, max_relevant)`` holding 1-based ranks
  of each query's relevant items in its ranking; ``0`` pads rows with fewer relevant items.
* A query with no relevant item has every metric 0 (``trec_eval -c`` semantics); callers skip
  such queries where the paper says so (cross-lingual pairs lacking the id).

AP is over the full ranking: ``AP = (1/|R|) * sum_i i / rank_(i)`` with the relevant ranks
sorted ascending, which equals ``sklearn.metrics.average_precision_score`` on the scores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


def _sorted_ranks(ranks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Relevant ranks sorted ascending with padding pushed to the end (as +inf), and |R|."""
    r = np.asarray(ranks, dtype=np.float64)
    if r.ndim == 1:
        r = r[:, None]
    present = r > 0
    r = np.sort(np.where(present, r, np.inf), axis=1)
    return r, present.sum(axis=1)


def average_precision(ranks: np.ndarray) -> np.ndarray:
    """AP per query over the full ranking."""
    r, n_rel = _sorted_ranks(ranks)
    hits = np.arange(1, r.shape[1] + 1, dtype=np.float64)[None, :]
    prec = np.where(np.isfinite(r), hits / r, 0.0)
    return np.divide(prec.sum(axis=1), n_rel, out=np.zeros(len(r)), where=n_rel > 0)


def recall_at_k(ranks: np.ndarray, k: int) -> np.ndarray:
    """Fraction of the relevant set ranked in the top ``k``."""
    r, n_rel = _sorted_ranks(ranks)
    found = (r <= k).sum(axis=1)
    return np.divide(found, n_rel, out=np.zeros(len(r)), where=n_rel > 0)


def mrr_at_k(ranks: np.ndarray, k: int) -> np.ndarray:
    """Reciprocal rank of the first relevant item if it is in the top ``k``, else 0."""
    r, _ = _sorted_ranks(ranks)
    first = r[:, 0]
    return np.where(first <= k, 1.0 / first, 0.0)


def ndcg_at_k(ranks: np.ndarray, k: int) -> np.ndarray:
    """Binary-gain nDCG@k with the log2(rank + 1) discount."""
    r, n_rel = _sorted_ranks(ranks)
    dcg = np.where(r <= k, 1.0 / np.log2(r + 1.0), 0.0).sum(axis=1)
    discounts = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))
    ideal = np.concatenate([[0.0], np.cumsum(discounts)])[np.minimum(n_rel, k)]
    return np.divide(dcg, ideal, out=np.zeros(len(r)), where=ideal > 0)


@dataclass(frozen=True)
class MetricSpec:
    """One metric, for everything that computes, stores, shows or tests it (the one list)."""

    name: str  # key in the results JSON and the metrics table
    label: str  # in tables and titles
    per_query: Callable[[np.ndarray], np.ndarray] | None = None  # relevant ranks → per-query values
    lower_is_better: bool = False
    rank_valued: bool = False  # a position in a ranking: shown with one decimal (scores with three)
    compared: tuple[str, ...] = ()  # result kinds whose compare table tests it: "lareqa", "miracl", "bias"

    @property
    def digits(self) -> int:
        return 1 if self.rank_valued else 3


METRICS: dict[str, MetricSpec] = {m.name: m for m in (
    MetricSpec("map", "mAP", average_precision, compared=("lareqa",)),
    MetricSpec("r@1", "R@1", lambda r: recall_at_k(r, 1), compared=("lareqa",)),
    MetricSpec("r@10", "R@10", lambda r: recall_at_k(r, 10), compared=("lareqa",)),
    MetricSpec("ndcg@10", "nDCG@10", lambda r: ndcg_at_k(r, 10), compared=("miracl",)),
    MetricSpec("mrr@10", "MRR@10", lambda r: mrr_at_k(r, 10)),
    MetricSpec("r@100", "R@100", compared=("miracl",)),  # MIRACL: trec_recall over the judged documents
    MetricSpec("rank_distance", "rank distance", lower_is_better=True, rank_valued=True, compared=("bias",)),
    MetricSpec("max_at_r", "Max@R", lower_is_better=True, rank_valued=True, compared=("bias",)),
    MetricSpec("lang_pref", "own pref"),
    MetricSpec("own@10", "own@10"),  # ad-hoc merged pool: share of the query's language in its top 10
)}
# The per-query rank metrics every LAReQA cell stores (and the heatmap and family tables show).
RANK_METRICS = {m.name: m.per_query for m in METRICS.values() if m.per_query is not None}


def spec(name: str) -> MetricSpec:
    """The registry entry of ``name`` (an unknown name: a plain score with three decimals)."""
    return METRICS.get(name) or MetricSpec(name, name)


def rank_metrics(ranks: np.ndarray) -> dict[str, np.ndarray]:
    """Every per-query rank metric the LAReQA settings report, keyed as in the results JSON."""
    return {name: fn(ranks) for name, fn in RANK_METRICS.items()}


# --- trec_eval-compatible graded metrics (MIRACL) -------------------------------------------


def trec_ndcg_cut(retrieved_gains: list[float] | np.ndarray, judged_gains: list[float] | np.ndarray, k: int) -> float:
    """``trec_eval -m ndcg_cut.k``: gain = relevance grade, discount log2(rank + 1).

    ``retrieved_gains`` are the grades of the ranked list in rank order (0 for unjudged or
    non-relevant); ``judged_gains`` are the grades of every judged document of the query.
    The ideal ranking sorts the positive judged grades descending.
    """
    g = np.asarray(retrieved_gains, dtype=np.float64)[:k]
    disc = 1.0 / np.log2(np.arange(2, len(g) + 2, dtype=np.float64))
    dcg = float((g * disc).sum())
    ideal = np.sort(np.asarray([x for x in judged_gains if x > 0], dtype=np.float64))[::-1][:k]
    idcg = float((ideal / np.log2(np.arange(2, len(ideal) + 2, dtype=np.float64))).sum())
    return dcg / idcg if idcg > 0 else 0.0


def trec_recall(retrieved_gains: list[float] | np.ndarray, n_relevant: int, k: int) -> float:
    """``trec_eval -m recall.k``: relevant (grade ≥ 1) retrieved in the top ``k`` ÷ all relevant."""
    if n_relevant <= 0:
        return 0.0
    g = np.asarray(retrieved_gains, dtype=np.float64)[:k]
    return float((g >= 1).sum()) / n_relevant


# --- language bias in the multilingual pool -------------------------------------------------


def language_bias(pool_ranks: np.ndarray, query_lang: np.ndarray, n_langs: int) -> dict[str, np.ndarray]:
    """Per-query bias measures from ranks in the multilingual pool.

    ``pool_ranks[q, l]`` is the 1-based pool rank of query ``q``'s relevant item in language ``l``
    (0 where absent). Returns per-query arrays (NaN where a measure is undefined):

    * ``rank_distance``: max − min relevant rank (queries with |R| ≥ 2);
    * ``max_at_r``: the worst relevant rank, i.e. depth needed to recover every answer (|R| ≥ 2);
    * ``lang_pref``: 1 if the query's own-language answer outranks all its other-language answers.
    """
    ranks = np.asarray(pool_ranks, dtype=np.float64)
    present = ranks > 0
    n_rel = present.sum(axis=1)
    multi = n_rel >= 2
    hi = np.where(present, ranks, -np.inf).max(axis=1)
    lo = np.where(present, ranks, np.inf).min(axis=1)
    rows = np.arange(len(ranks))
    own = ranks[rows, query_lang]
    others = np.where(present, ranks, np.inf)
    others[rows, query_lang] = np.inf
    pref = (own > 0) & (own < others.min(axis=1))
    return {
        "rank_distance": np.where(multi, hi - lo, np.nan),
        "max_at_r": np.where(multi, hi, np.nan),
        "lang_pref": np.where(multi & (own > 0), pref.astype(np.float64), np.nan),
    }


def visibility(pool_ranks: np.ndarray, query_lang: np.ndarray, n_langs: int) -> np.ndarray:
    """Mean pool rank of each corpus language's relevant item over queries from other languages.

    Lower is more visible; sorting languages by it gives the bias ranking.
    """
    ranks = np.asarray(pool_ranks, dtype=np.float64)
    out = np.full(n_langs, np.nan)
    for lang in range(n_langs):
        sel = (query_lang != lang) & (ranks[:, lang] > 0)
        if sel.any():
            out[lang] = ranks[sel, lang].mean()
    return out
