"""Exact top-k search over a corpus that arrives in chunks (faiss, imported only when needed).

Memory stays bounded by one corpus chunk plus the running top-k lists, so corpora of tens of
millions of passages can be searched from embeddings streamed off disk.
"""

from __future__ import annotations

import numpy as np

from xlbench.errors import XlbenchError


def _faiss(threads: int):
    try:
        import faiss
    except ImportError:
        raise XlbenchError("searching large corpora needs faiss: pip install faiss-cpu") from None
    faiss.omp_set_num_threads(max(1, threads))
    return faiss


class TopK:
    """Running exact top-k (by inner product) of every query over corpus chunks."""

    def __init__(self, queries: np.ndarray, k: int, *, threads: int = 1) -> None:
        self.queries = np.ascontiguousarray(queries, dtype=np.float32)
        self.k = k
        self.threads = threads
        n = len(queries)
        self.scores = np.full((n, 0), -np.inf, dtype=np.float32)
        self.ids = np.zeros((n, 0), dtype=np.int64)
        self.seen = 0

    def add(self, chunk: np.ndarray) -> None:
        """Search one chunk of corpus vectors; row ``i`` of the chunk gets global id ``seen + i``."""
        if not len(chunk):
            return
        faiss = _faiss(self.threads)
        index = faiss.IndexFlatIP(chunk.shape[1])
        index.add(np.ascontiguousarray(chunk, dtype=np.float32))
        k = min(self.k, len(chunk))
        scores, ids = index.search(self.queries, k)
        scores = np.concatenate([self.scores, scores], axis=1)
        ids = np.concatenate([self.ids, ids + self.seen], axis=1)
        self.seen += len(chunk)
        if scores.shape[1] > self.k:
            keep = np.argpartition(-scores, self.k - 1, axis=1)[:, : self.k]
            scores = np.take_along_axis(scores, keep, axis=1)
            ids = np.take_along_axis(ids, keep, axis=1)
        self.scores, self.ids = scores, ids

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, ids)`` sorted by descending score (ties by ascending id)."""
        order = np.lexsort((self.ids, -self.scores), axis=1)
        return np.take_along_axis(self.scores, order, axis=1), np.take_along_axis(self.ids, order, axis=1)
