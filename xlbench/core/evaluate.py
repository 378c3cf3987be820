"""The evaluation engine: encode each unique text once, score in chunks, report every setting.

* LAReQA sets (XQuAD-R, MLQA-R): queries and candidates are encoded once for the whole pool;
  :func:`~xlbench.core.ranking.rank_relevant` turns one pass over the scores into the ranks that
  every mono / cross / multi cell and every bias measure needs.
* MIRACL: per language, the corpus is streamed in chunks (encoded, cached, searched with faiss)
  and nDCG@10 / Recall@100 follow ``trec_eval -c -M 100``: the top 100 by score, ties ordered by
  docid descending as trec_eval sorts, and every judged query counted (0 if it has no topic).
"""

from __future__ import annotations

import json
import time
import zlib
from dataclasses import dataclass, field

import numpy as np

from xlbench.core.data.lareqa import LareqaSet
from xlbench.core.data.miracl import MiraclSet
from xlbench.core.encoders.base import EncodeStats, Encoder, encode_texts
from xlbench.core.encoders.cache import ChunkCache, EmbeddingCache, text_keys
from xlbench.core.index import TopK
from xlbench.core.metrics import trec_ndcg_cut, trec_recall
from xlbench.core.progress import Reporter
from xlbench.core.ranking import DEFAULT_BUDGET_BYTES, rank_relevant
from xlbench.core.lareqa_report import PAYLOAD_FORMAT, Cell, LareqaRanks, lareqa_report
from xlbench.errors import PluginError

MIRACL_PAYLOAD_FORMAT = "miracl-hits-v1"
MIRACL_DEPTH = 100


@dataclass
class DatasetResult:
    dataset: str
    version: str
    source: str
    cells: list[Cell]
    summary: dict
    bias: dict
    payload: bytes
    payload_format: str
    info: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        return {"dataset": self.dataset, "version": self.version, "cells": [c.as_dict() for c in self.cells],
                "summary": self.summary, "bias": self.bias}


def evaluate(ds, encoder: Encoder, *, cache: EmbeddingCache | None = None, reporter: Reporter | None = None,
             batch_size: int = 256, budget_bytes: int = DEFAULT_BUDGET_BYTES, threads: int = 1) -> DatasetResult:
    reporter = reporter or Reporter()
    if isinstance(ds, LareqaSet):
        return evaluate_lareqa(ds, encoder, cache=cache, reporter=reporter, batch_size=batch_size, budget_bytes=budget_bytes)
    if isinstance(ds, MiraclSet):
        return evaluate_miracl(ds, encoder, cache=cache, reporter=reporter, batch_size=batch_size, threads=threads)
    raise TypeError(f"cannot evaluate a {type(ds).__name__}")


def _encode(encoder, texts, role, label, *, cache, reporter, batch_size, stats) -> np.ndarray:
    reporter.phase(label, None)
    return encode_texts(encoder, texts, role, cache=cache, batch_size=batch_size, stats=stats,
                        on_progress=reporter.advance)


def evaluate_lareqa(ds: LareqaSet, encoder: Encoder, *, cache=None, reporter: Reporter, batch_size: int = 256,
                    budget_bytes: int = DEFAULT_BUDGET_BYTES) -> DatasetResult:
    t0 = time.perf_counter()
    stats = EncodeStats()
    q = _encode(encoder, ds.query_text, "query", f"{ds.name}: encode queries", cache=cache, reporter=reporter,
                batch_size=batch_size, stats=stats)
    c = _encode(encoder, ds.cand_text, "passage", f"{ds.name}: encode candidates", cache=cache, reporter=reporter,
                batch_size=batch_size, stats=stats)
    _same_dimension(encoder, q, c)
    t_enc = time.perf_counter()
    reporter.phase(f"{ds.name}: score {len(ds.languages) ** 2 + len(ds.languages)} settings", len(ds.query_ids))
    block_rank, pool_rank = rank_relevant(q, c, ds.lang_offsets, ds.relevant, budget_bytes=budget_bytes,
                                          on_chunk=reporter.advance)
    ranks = LareqaRanks(ds.languages, ds.query_ids, ds.query_lang, block_rank, pool_rank, np.diff(ds.lang_offsets))
    report = lareqa_report(ranks)
    t_end = time.perf_counter()
    info = {
        "kind": "lareqa", "queries": len(ds.query_ids), "candidates": ds.n_candidates,
        "languages": ds.languages, "candidate_text": ds.candidate_text, "encode": stats.as_dict(),
        "seconds": {"encode": t_enc - t0, "score": t_end - t_enc, "total": t_end - t0},
    }
    return DatasetResult(ds.name, ds.version, ds.source, report.cells, report.summary, report.bias,
                         ranks.to_bytes(), PAYLOAD_FORMAT, info)


def encode_share(ds, encoder: Encoder, *, cache: EmbeddingCache, rank: int, world: int, reporter: Reporter | None = None,
                 batch_size: int = 256, search_chunk: int = 65536) -> EncodeStats:
    """Sharded evaluation, one rank's part: encode every ``world``-th unique text (MIRACL: every
    ``world``-th corpus chunk) that :func:`evaluate` will need into the cache, and nothing else.

    Once every rank has done its part, :func:`evaluate` on one rank finds every vector in the cache
    and only scores. The vectors are those one process would compute: on CPU each text's vector
    does not depend on the texts batched with it (see the sentence-transformers encoder), so the
    metrics are identical; a killed rank's flushed vectors stay cached for the next attempt."""
    reporter = reporter or Reporter()
    stats = EncodeStats()
    where = f"rank {rank + 1} of {world}"
    if isinstance(ds, LareqaSet):
        for texts, role in ((ds.query_text, "query"), (ds.cand_text, "passage")):
            share = list(dict.fromkeys(texts))[rank::world]
            _encode(encoder, share, role, f"{ds.name}: encode {role} share ({where})", cache=cache, reporter=reporter,
                    batch_size=batch_size, stats=stats)
    elif isinstance(ds, MiraclSet):
        chunks = cache.chunks()
        for lang in ds.languages:
            part = ds.per_lang[lang]
            share = list(dict.fromkeys(part.query_text))[rank::world]
            _encode(encoder, share, "query", f"miracl {lang}: encode query share ({where})", cache=cache,
                    reporter=reporter, batch_size=batch_size, stats=stats)
            reporter.phase(f"miracl {lang}: encode corpus chunks ({where})", None)
            for c, (_ids, texts) in enumerate(part.iter_corpus(chunk=search_chunk)):
                if c % world == rank:
                    _encode_chunk(encoder, texts, chunks, batch_size=batch_size, stats=stats)
                    reporter.advance(c + 1, None)
    else:
        raise TypeError(f"cannot evaluate a {type(ds).__name__}")
    return stats


def _same_dimension(encoder: Encoder, queries: np.ndarray, passages: np.ndarray) -> None:
    if len(queries) and len(passages) and queries.shape[1] != passages.shape[1]:
        raise PluginError(f"encoder {type(encoder).name!r} returned {queries.shape[1]}-dimensional query vectors but "
                          f"{passages.shape[1]}-dimensional passage vectors; scores need one dimension")


def _encode_chunk(encoder: Encoder, texts: list[str], chunks: ChunkCache | None, *, batch_size: int,
                  stats: EncodeStats, on_progress=None) -> np.ndarray:
    """One corpus chunk's vectors: from the chunk cache when an earlier run finished it, else encoded."""
    keys = text_keys(texts, "passage") if chunks is not None else None
    vecs = chunks.get(keys) if chunks is not None else None
    if vecs is not None:
        stats.requested += len(texts)
        stats.unique += len(set(texts))
        stats.from_cache += len(set(texts))
        return vecs
    vecs = encode_texts(encoder, texts, "passage", batch_size=batch_size, stats=stats, on_progress=on_progress)
    if chunks is not None:
        chunks.put(keys, vecs)
    return vecs


def trec_order(scores: np.ndarray, docids: list[str]) -> list[int]:
    """Positions sorted as trec_eval sorts a run: score descending, then docid descending."""
    order = sorted(range(len(docids)), key=docids.__getitem__, reverse=True)
    order.sort(key=lambda i: -float(scores[i]))  # stable: ties keep docid-descending order
    return order


def evaluate_miracl(ds: MiraclSet, encoder: Encoder, *, cache=None, reporter: Reporter | None = None,
                    batch_size: int = 256, threads: int = 1, search_chunk: int = 65536) -> DatasetResult:
    """Per language: stream the corpus (encoded in chunks, searched ``search_chunk`` vectors at a time)."""
    reporter = reporter or Reporter()
    t0 = time.perf_counter()
    stats = EncodeStats()
    chunks = cache.chunks() if cache is not None else None
    cells: list[Cell] = []
    per_query = []
    for lang in ds.languages:
        part = ds.per_lang[lang]
        q = _encode(encoder, part.query_text, "query", f"miracl {lang}: encode queries", cache=cache,
                    reporter=reporter, batch_size=batch_size, stats=stats)
        top = TopK(q, MIRACL_DEPTH, threads=threads)
        docids: dict[int, str] = {}  # only for ids some query still keeps: memory does not grow with the corpus
        reporter.phase(f"miracl {lang}: encode and search corpus", None)
        for ids, texts in part.iter_corpus(chunk=search_chunk):
            first = top.seen
            vecs = _encode_chunk(encoder, texts, chunks, batch_size=batch_size, stats=stats,
                                 on_progress=lambda done, _total: reporter.advance(first + done, None))
            _same_dimension(encoder, q, vecs)
            top.add(vecs)
            docids = {i: docids[i] if i < first else ids[i - first] for i in top.kept_ids().tolist()}
            reporter.advance(top.seen, None)
        row_of = {qid: i for i, qid in enumerate(part.query_ids)}
        ndcg, recall = [], []
        missing = 0
        for qid, judged in part.qrels.items():
            positives = [g for g in judged.values() if g > 0]
            hits: list[list[int]] = []
            if qid in row_of:
                scores, idx = top.candidates(row_of[qid])
                ranked_ids = [docids[i] for i in idx]
                order = trec_order(scores, ranked_ids)[:MIRACL_DEPTH]
                gains = [judged.get(ranked_ids[i], 0) for i in order]
                hits = [[rank + 1, judged[ranked_ids[i]]] for rank, i in enumerate(order) if ranked_ids[i] in judged]
            else:
                gains = []
                missing += 1
            ndcg.append(trec_ndcg_cut(gains, positives, 10))
            recall.append(trec_recall(gains, len(positives), MIRACL_DEPTH))
            per_query.append({"qid": qid, "lang": lang, "hits": hits, "judged": sorted(positives, reverse=True)})
        if missing:
            reporter.event(f"miracl {lang}: {missing} judged queries have no topic text and count as 0", "warning")
        cells.append(Cell("mono", lang, lang, len(part.qrels), {"ndcg@10": float(np.mean(ndcg)), "r@100": float(np.mean(recall))}))
    summary = {"mono": {m: float(np.mean([c.metrics[m] for c in cells])) for m in ("ndcg@10", "r@100")}}
    summary["mono"]["n_cells"] = len(cells)
    payload = zlib.compress(json.dumps({"depth": MIRACL_DEPTH, "queries": per_query}).encode())
    info = {"kind": "miracl", "split": ds.split, "languages": ds.languages, "encode": stats.as_dict(),
            "seconds": {"total": time.perf_counter() - t0}}
    return DatasetResult(ds.name, ds.version, ds.source, cells, summary, {}, payload, MIRACL_PAYLOAD_FORMAT, info)
