"""Ad-hoc collections (MIRACL, BEIR folders, plugins of that shape): per language, and as one pool.

Per language the corpus is streamed in chunks (encoded once, cached, searched with faiss and
rescored exactly) and the measures follow ``trec_eval -c -M 100``: the top 100 by score, ties
ordered by docid descending as trec_eval sorts, every judged query counted (0 if it has no topic
or no relevant document): ``ndcg@10`` (``ndcg_cut.10``), ``r@100`` (``recall.100``) and ``mrr@10``
(``recip_rank`` over the top 10, relevant = grade ≥ 1).

The merged pool (``ds.merged``: two or more languages) puts every language's documents in one
corpus (ids ``lang:docid``) and ranks every query against it, judged by its own qrels:

* the **multi** cells: the same measures per query language in the pool;
* **bias** (queries with at least two relevant documents): ``rank_distance`` (max − min pool rank
  of the query's relevant documents) and ``max_at_r`` (the worst one), exact ranks over the whole
  pool from a second pass over the cached chunk vectors (:class:`~xlbench.core.index.RankCounter`);
* ``own@10``: the share of the query's own language among its pool top 10 (1.0 is a pool that
  only answers in the asker's language; a language-blind one gives that language's share of
  relevant material).

The same chunks feed the per-language searches and the pool: every passage is encoded once.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable

import numpy as np

from xlbench.core.encoders.base import Encoder, check_dimension
from xlbench.core.index import RankCounter, TopK
from xlbench.core.lareqa_report import Cell
from xlbench.core.metrics import trec_ndcg_cut, trec_recall
from xlbench.core.progress import Reporter
from xlbench.errors import DataError

ADHOC_PAYLOAD_FORMAT = "miracl-hits-v1"  # per-query hits of the per-language rankings (name kept for stored runs)
DEPTH = 100
SEARCH_CHUNK = 65536
POOL_BIAS = ("rank_distance", "max_at_r")
OWN_DEPTH = 10


def trec_order(scores: np.ndarray, docids: list[str]) -> list[int]:
    """Positions sorted as trec_eval sorts a run: score descending, then docid descending."""
    order = sorted(range(len(docids)), key=docids.__getitem__, reverse=True)
    order.sort(key=lambda i: -float(scores[i]))  # stable: ties keep docid-descending order
    return order


def trec_recip_rank(retrieved_gains, k: int) -> float:
    """``trec_eval -m recip_rank`` over the top ``k``: 1 / rank of the first grade ≥ 1, else 0."""
    for rank, gain in enumerate(list(retrieved_gains)[:k], start=1):
        if gain >= 1:
            return 1.0 / rank
    return 0.0


def query_measures(gains: list[int], positives: list[int]) -> dict[str, float]:
    return {"ndcg@10": trec_ndcg_cut(gains, positives, 10), "r@100": trec_recall(gains, len(positives), DEPTH),
            "mrr@10": trec_recip_rank(gains, 10)}


class Ranking:
    """A running exact top-``DEPTH`` of some queries over a streamed corpus, with the ids it keeps."""

    def __init__(self, queries: np.ndarray, threads: int) -> None:
        self.top = TopK(queries, DEPTH, threads=threads)
        self.docids: dict[int, str] = {}  # only ids some query still keeps: memory does not grow with the corpus

    def add(self, vecs: np.ndarray, ids: list[str]) -> None:
        first = self.top.seen
        self.top.add(vecs)
        self.docids = {i: self.docids[i] if i < first else ids[i - first] for i in self.top.kept_ids().tolist()}

    def ranked(self, row: int) -> list[str]:
        """Query ``row``'s top ``DEPTH`` document ids in trec_eval's order."""
        scores, idx = self.top.candidates(row)
        ids = [self.docids[i] for i in idx]
        return [ids[i] for i in trec_order(scores, ids)[:DEPTH]]


def judge(qrels: dict[str, dict[str, int]], ranked: Callable[[str], list[str] | None], prefix: str = ""):
    """Per judged query: ``(qid, has a topic, measures, hits as [rank, grade], positive grades)``.

    ``ranked(qid)`` is the query's ranked ids (None: no topic, every measure 0); in the merged
    pool ids carry ``prefix`` (``lang:``) and another language's document is never judged."""
    def grade(docid: str) -> int | None:
        return (qrels_of.get(docid[len(prefix):]) if docid.startswith(prefix) else None)

    out = []
    for qid, qrels_of in qrels.items():
        positives = [g for g in qrels_of.values() if g > 0]
        ids = ranked(qid)
        grades = [grade(d) for d in ids or []]
        gains = [g or 0 for g in grades]
        hits = [[rank + 1, g] for rank, g in enumerate(grades) if g is not None]
        out.append((qid, ids is not None, query_measures(gains, positives), hits, sorted(positives, reverse=True)))
    return out


def _cell(setting: str, lang: str, corpus_lang: str, judged, measures) -> Cell:
    return Cell(setting, lang, corpus_lang, len(judged),
                {m: float(np.mean([j[2][m] for j in judged])) if judged else 0.0 for m in measures})


def _family(cells: list[Cell], measures) -> dict:
    out = {m: float(np.mean([c.metrics[m] for c in cells])) for m in measures}
    out["n_cells"] = len(cells)
    return out


def evaluate_adhoc(ds, encoder: Encoder, *, encode_queries, encode_chunk, reporter: Reporter, threads: int = 1,
                   search_chunk: int = SEARCH_CHUNK):
    """Every cell, family mean and bias measure of an ad-hoc set; returns ``(cells, summary, bias,
    payload, info)``. ``encode_queries(lang)`` and ``encode_chunk(texts, on_progress)`` come from
    the engine (cache and statistics are its business)."""
    measures = ds.measures
    queries = {}
    if ds.merged:
        for lang in ds.languages:
            queries[lang] = encode_queries(lang)
        pool = MergedPool(ds, queries, threads)
    cells: list[Cell] = []
    per_query = []
    for lang in ds.languages:
        part = ds.per_lang[lang]
        q = queries[lang] if lang in queries else encode_queries(lang)
        ranking = Ranking(q, threads)
        reporter.phase(f"{ds.name} {lang}: encode and search corpus", None)
        for ids, texts in part.iter_corpus(chunk=search_chunk):
            first = ranking.top.seen
            vecs = encode_chunk(texts, lambda done, _total: reporter.advance(first + done, None))
            check_dimension(encoder, q, vecs)
            ranking.add(vecs, ids)
            if ds.merged:
                pool.add(lang, ids, vecs)
            reporter.advance(ranking.top.seen, None)
        row_of = {qid: i for i, qid in enumerate(part.query_ids)}
        judged = judge(part.qrels, lambda qid: ranking.ranked(row_of[qid]) if qid in row_of else None)
        missing = sum(1 for j in judged if not j[1])
        if missing:
            reporter.event(f"{ds.name} {lang}: {missing} judged queries have no topic text and count as 0", "warning")
        cells.append(_cell("mono", lang, lang, judged, measures))
        per_query += [{"qid": qid, "lang": lang, "hits": hits, "judged": positives}
                      for qid, _, _, hits, positives in judged]
    summary = {"mono": _family(cells, measures)}
    bias: dict = {}
    if ds.merged:
        multi, bias = pool.finish(encode_chunk, reporter, search_chunk)
        cells += multi
        summary["multi"] = _family(multi, measures)
    payload = zlib.compress(json.dumps({"depth": DEPTH, "queries": per_query}).encode())
    info = {"kind": ds.kind, "split": ds.split, "languages": ds.languages, "merged_pool": ds.merged}
    return cells, summary, bias, payload, info


class MergedPool:
    """Every language's documents in one corpus; every query ranked against it by its own qrels."""

    def __init__(self, ds, queries: dict[str, np.ndarray], threads: int) -> None:
        self.ds = ds
        self.rows: dict[tuple[str, str], int] = {}
        self.query_lang: list[str] = []
        for lang in ds.languages:
            for qid in ds.per_lang[lang].query_ids:
                self.rows[lang, qid] = len(self.rows)
                self.query_lang.append(lang)
        self.vectors = np.concatenate([queries[lang] for lang in ds.languages])
        self.ranking = Ranking(self.vectors, threads)
        # relevant documents (grade ≥ 1) of queries with at least two: where their scores go
        self.relevant: dict[str, list[tuple[int, int]]] = {}
        self.items: list[list[str]] = [[] for _ in self.query_lang]
        for (lang, qid), row in self.rows.items():
            docs = sorted(d for d, g in ds.per_lang[lang].qrels.get(qid, {}).items() if g > 0)
            if len(docs) >= 2:
                for slot, d in enumerate(docs):
                    self.relevant.setdefault(f"{lang}:{d}", []).append((row, slot))
                self.items[row] = [f"{lang}:{d}" for d in docs]
        width = max((len(i) for i in self.items), default=0)
        self.thresholds = np.full((len(self.items), width), np.nan)

    def add(self, lang: str, ids: list[str], vecs: np.ndarray) -> None:
        from xlbench.core.scoring import GridVectors, on_grid

        pooled = [f"{lang}:{d}" for d in ids]
        self.ranking.add(vecs, pooled)
        where = [(i, pair) for i, d in enumerate(pooled) for pair in self.relevant.get(d, ())]
        if where:
            grid = self.ranking.top.grid
            cands = GridVectors(vecs[[i for i, _ in where]], bits=grid.bits)
            rows = [row for _, (row, _) in where]
            scores = np.einsum("pd,pd->p", on_grid(grid.vecs[rows], grid.exps[rows], grid.bits), cands.block(0, len(cands)))
            for (_, (row, slot)), s in zip(where, scores.tolist()):
                self.thresholds[row, slot] = s

    def finish(self, encode_chunk, reporter: Reporter, search_chunk: int):
        ds = self.ds
        cells, bias_rows = [], {m: {} for m in (*POOL_BIAS, "own@10")}
        ranks = self._ranks(encode_chunk, reporter, search_chunk) if self.relevant else None
        for lang in ds.languages:
            part = ds.per_lang[lang]
            ranked = {qid: self.ranking.ranked(self.rows[lang, qid]) for qid in part.query_ids}  # once per query
            judged = judge(part.qrels, ranked.get, prefix=f"{lang}:")
            cells.append(_cell("multi", lang, "all", judged, ds.measures))
            rows = [self.rows[lang, qid] for qid in part.query_ids]
            own = [np.mean([d.startswith(f"{lang}:") for d in ids[:OWN_DEPTH]]) for ids in ranked.values()]
            bias_rows["own@10"][lang] = float(np.mean(own)) if own else None
            if ranks is not None:
                eligible = [r for r in rows if self.items[r]]
                if eligible:
                    found = [ranks[r, : len(self.items[r])] for r in eligible]
                    bias_rows["rank_distance"][lang] = float(np.mean([f.max() - f.min() for f in found]))
                    bias_rows["max_at_r"][lang] = float(np.mean([f.max() for f in found]))
        bias = {}
        for metric, per_lang in bias_rows.items():
            per_lang = {k: v for k, v in per_lang.items() if v is not None}
            if per_lang:
                bias[metric] = {"per_lang": per_lang, "macro": float(np.mean(list(per_lang.values())))}
        if ranks is None:
            reporter.event(f"{ds.name}: no query has two relevant documents; rank distance and Max@R are undefined")
        return cells, bias

    def _ranks(self, encode_chunk, reporter: Reporter, search_chunk: int) -> np.ndarray:
        """Exact pool ranks of the relevant documents: a second pass over the (cached) chunk vectors."""
        if any(np.isnan(self.thresholds[row, : len(items)]).any() for row, items in enumerate(self.items)):
            # a plugin's qrels named a document its corpus stream never yielded
            raise DataError(self.ds.source, "qrels", "a relevant document is not in the corpus")
        counter = RankCounter(self.vectors, self.thresholds, self.items)
        reporter.phase(f"{self.ds.name}: rank relevant documents in the merged pool", None)
        seen = 0
        for lang in self.ds.languages:
            for ids, texts in self.ds.per_lang[lang].iter_corpus(chunk=search_chunk):
                counter.add(encode_chunk(texts, None), [f"{lang}:{d}" for d in ids])
                seen += len(ids)
                reporter.advance(seen, None)
        return counter.ranks()
