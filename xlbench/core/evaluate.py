"""The evaluation engine: encode each unique text once, score in chunks, report every setting.

A dataset reaches the engine with a ``shape`` (:mod:`xlbench.core.data.adhoc`), and
:data:`EVALUATORS` / :data:`SHARERS` say what to do with each; nothing here looks at a dataset's
name or class.

* ``pool`` (LAReQA-style: XQuAD-R, MLQA-R): queries and candidates are encoded once for the whole
  pool; :func:`~xlbench.core.ranking.rank_relevant` turns one pass over the scores into the ranks
  that every mono / cross / multi cell and every bias measure needs.
* ``adhoc`` (MIRACL, BEIR folders): :mod:`xlbench.core.evaluate_adhoc` — per language, the corpus
  streamed in chunks (encoded, cached, searched with faiss) with ``trec_eval -c -M 100``'s
  measures, and optionally every language as one merged pool.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from xlbench.core.encoders.base import EncodeStats, Encoder, check_dimension, encode_texts
from xlbench.core.encoders.cache import ChunkCache, EmbeddingCache, text_keys
from xlbench.core.evaluate_adhoc import ADHOC_PAYLOAD_FORMAT, SEARCH_CHUNK, evaluate_adhoc, trec_order  # noqa: F401 (trec_order: public here)
from xlbench.core.lareqa_report import PAYLOAD_FORMAT, Cell, LareqaRanks, lareqa_report
from xlbench.core.progress import Reporter
from xlbench.core.ranking import DEFAULT_BUDGET_BYTES, rank_relevant
from xlbench.errors import PluginError

if TYPE_CHECKING:
    from xlbench.core.data.lareqa import LareqaSet

MIRACL_PAYLOAD_FORMAT = ADHOC_PAYLOAD_FORMAT


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
    shape = _shape(ds)
    if shape == "pool":
        return evaluate_lareqa(ds, encoder, cache=cache, reporter=reporter, batch_size=batch_size, budget_bytes=budget_bytes)
    return evaluate_collection(ds, encoder, cache=cache, reporter=reporter, batch_size=batch_size, threads=threads)


EVALUATORS = ("pool", "adhoc")  # the shapes a dataset plugin may return (xlbench.core.data.adhoc)


def _shape(ds) -> str:
    shape = getattr(ds, "shape", None)
    if shape not in EVALUATORS:
        raise PluginError(f"dataset {getattr(ds, 'name', '?')!r} has shape {shape!r}; the engine evaluates "
                          f"{' or '.join(EVALUATORS)} (see xlbench.core.data.adhoc)")
    return shape


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
    check_dimension(encoder, q, c)
    t_enc = time.perf_counter()
    reporter.phase(f"{ds.name}: score {len(ds.languages) ** 2 + len(ds.languages)} settings", len(ds.query_ids))
    block_rank, pool_rank = rank_relevant(q, c, ds.lang_offsets, ds.relevant, budget_bytes=budget_bytes,
                                          on_chunk=reporter.advance, device=getattr(encoder, "scoring_device", None))
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
                 batch_size: int = 256, search_chunk: int = SEARCH_CHUNK) -> EncodeStats:
    """Sharded evaluation, one rank's part: encode every ``world``-th unique text (MIRACL: every
    ``world``-th corpus chunk) that :func:`evaluate` will need into the cache, and nothing else.

    Once every rank has done its part, :func:`evaluate` on one rank finds every vector in the cache
    and only scores. The vectors are those one process would compute: on CPU each text's vector
    does not depend on the texts batched with it (see the sentence-transformers encoder), so the
    metrics are identical; a killed rank's flushed vectors stay cached for the next attempt."""
    reporter = reporter or Reporter()
    stats = EncodeStats()
    where = f"rank {rank + 1} of {world}"
    if _shape(ds) == "pool":
        for texts, role in ((ds.query_text, "query"), (ds.cand_text, "passage")):
            share = list(dict.fromkeys(texts))[rank::world]
            _encode(encoder, share, role, f"{ds.name}: encode {role} share ({where})", cache=cache, reporter=reporter,
                    batch_size=batch_size, stats=stats)
        return stats
    chunks = cache.chunks()
    for lang in ds.languages:
        part = ds.per_lang[lang]
        share = list(dict.fromkeys(part.query_text))[rank::world]
        _encode(encoder, share, "query", f"{ds.name} {lang}: encode query share ({where})", cache=cache,
                reporter=reporter, batch_size=batch_size, stats=stats)
        reporter.phase(f"{ds.name} {lang}: encode corpus chunks ({where})", None)
        for c, (_ids, texts) in enumerate(part.iter_corpus(chunk=search_chunk)):
            if c % world == rank:
                _encode_chunk(encoder, texts, chunks, batch_size=batch_size, stats=stats)
                reporter.advance(c + 1, None)
    return stats


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


def evaluate_collection(ds, encoder: Encoder, *, cache=None, reporter: Reporter | None = None,
                    batch_size: int = 256, threads: int = 1, search_chunk: int = SEARCH_CHUNK) -> DatasetResult:
    """An ad-hoc set (MIRACL, a BEIR folder, …): :func:`xlbench.core.evaluate_adhoc.evaluate_adhoc`
    with this engine's embedding cache and statistics."""
    reporter = reporter or Reporter()
    t0 = time.perf_counter()
    stats = EncodeStats()
    chunks = cache.chunks() if cache is not None else None

    def encode_queries(lang: str) -> np.ndarray:
        return _encode(encoder, ds.per_lang[lang].query_text, "query", f"{ds.name} {lang}: encode queries",
                       cache=cache, reporter=reporter, batch_size=batch_size, stats=stats)

    def encode_chunk(texts: list[str], on_progress) -> np.ndarray:
        return _encode_chunk(encoder, texts, chunks, batch_size=batch_size, stats=stats, on_progress=on_progress)

    cells, summary, bias, payload, info = evaluate_adhoc(ds, encoder, encode_queries=encode_queries,
                                                         encode_chunk=encode_chunk, reporter=reporter,
                                                         threads=threads, search_chunk=search_chunk)
    info.update({"encode": stats.as_dict(), "seconds": {"total": time.perf_counter() - t0}})
    return DatasetResult(ds.name, ds.version, ds.source, cells, summary, bias, payload, ADHOC_PAYLOAD_FORMAT, info)


evaluate_miracl = evaluate_collection  # the name MIRACL's tests and older callers use
