"""From relevant-item ranks to every LAReQA setting, family mean and bias measure.

Pure functions: the engine calls them on fresh ranks, and anything that reads a stored run's
per-query ranks (compare, significance tests) calls them again and gets the same numbers.

Settings for query language X and corpus language Y: ``mono`` (X→X), ``cross`` (X→Y, Y≠X, only
queries whose id exists in Y), ``multi`` (X→all: the whole pool, every language's answer is
relevant). Family means are macro averages over cells; ``multi`` also has LAReQA's micro mean over
all queries.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np

from xlbench.core.metrics import language_bias, rank_metrics, visibility

PAYLOAD_FORMAT = "lareqa-ranks-v1"
BIAS_METRICS = ("rank_distance", "max_at_r", "lang_pref")


@dataclass
class Cell:
    setting: str
    query_lang: str
    corpus_lang: str
    n_queries: int
    metrics: dict[str, float]

    def as_dict(self) -> dict:
        return {"setting": self.setting, "query_lang": self.query_lang, "corpus_lang": self.corpus_lang,
                "n_queries": self.n_queries, "metrics": self.metrics}


@dataclass
class LareqaRanks:
    """Everything needed to recompute every metric of one LAReQA evaluation."""

    languages: list[str]
    query_ids: list[str]
    query_lang: np.ndarray  # (Q,) language index
    block_rank: np.ndarray  # (Q, L) rank within corpus language l's candidates, 0 = no relevant there
    pool_rank: np.ndarray  # (Q, L) rank of the same item in the multilingual pool
    pool_sizes: np.ndarray  # (L,) candidates per language

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez_compressed(
            buf, languages=np.array(self.languages), query_ids=np.array(self.query_ids),
            query_lang=self.query_lang.astype(np.int16), block_rank=self.block_rank.astype(np.int32),
            pool_rank=self.pool_rank.astype(np.int32), pool_sizes=self.pool_sizes.astype(np.int64),
        )
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> LareqaRanks:
        """Decoded with bounded memory and checked shapes (:mod:`xlbench.core.payloads`): stored
        payloads may come from an imported document."""
        from xlbench.core.payloads import rank_arrays

        z = rank_arrays(data)
        return cls([str(x) for x in z["languages"]], [str(x) for x in z["query_ids"]],
                   z["query_lang"].astype(np.int64), z["block_rank"].astype(np.int64),
                   z["pool_rank"].astype(np.int64), z["pool_sizes"])


@dataclass
class LareqaReport:
    cells: list[Cell]
    summary: dict[str, dict[str, float]]
    bias: dict = field(default_factory=dict)


def _mean_metrics(ranks: np.ndarray) -> dict[str, float]:
    return {name: float(values.mean()) for name, values in rank_metrics(ranks).items()}


def lareqa_cells(r: LareqaRanks) -> list[Cell]:
    cells: list[Cell] = []
    langs = r.languages
    for x, qx in enumerate(langs):
        mine = r.query_lang == x
        for y, cy in enumerate(langs):
            sel = mine & (r.block_rank[:, y] > 0)
            if sel.any():
                setting = "mono" if x == y else "cross"
                cells.append(Cell(setting, qx, cy, int(sel.sum()), _mean_metrics(r.block_rank[sel, y][:, None])))
        if mine.any():
            cells.append(Cell("multi", qx, "all", int(mine.sum()), _mean_metrics(r.pool_rank[mine])))
    return cells


def lareqa_report(r: LareqaRanks) -> LareqaReport:
    cells = lareqa_cells(r)
    summary: dict[str, dict[str, float]] = {}
    for family in ("mono", "cross", "multi"):
        fam = [c for c in cells if c.setting == family]
        if fam:
            summary[family] = {m: float(np.mean([c.metrics[m] for c in fam])) for m in fam[0].metrics}
            summary[family]["n_cells"] = len(fam)
    if "multi" in summary:
        micro = _mean_metrics(r.pool_rank)
        summary["multi"].update({f"{m}_micro": v for m, v in micro.items()})
    return LareqaReport(cells, summary, lareqa_bias(r))


def lareqa_bias(r: LareqaRanks) -> dict:
    """Per source language and macro: rank distance, Max@R, own-language preference; visibility."""
    per_query = language_bias(r.pool_rank, r.query_lang, len(r.languages))
    out: dict = {}
    for name in BIAS_METRICS:
        per_lang = {}
        for x, lang in enumerate(r.languages):
            vals = per_query[name][r.query_lang == x]
            vals = vals[~np.isnan(vals)]
            if len(vals):
                per_lang[lang] = float(vals.mean())
        if per_lang:
            out[name] = {"per_lang": per_lang, "macro": float(np.mean(list(per_lang.values())))}
    vis = visibility(r.pool_rank, r.query_lang, len(r.languages))
    ranking = sorted(
        ({"lang": lang, "mean_rank": float(v)} for lang, v in zip(r.languages, vis) if not np.isnan(v)),
        key=lambda item: item["mean_rank"],
    )
    if ranking:
        out["visibility"] = ranking
    return out
