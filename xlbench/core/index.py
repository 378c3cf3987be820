"""Exact top-k search over a corpus that arrives in chunks (faiss, imported only when needed).

Memory stays bounded by one corpus chunk plus the running candidate lists, so corpora of tens of
millions of passages can be searched from embeddings streamed off disk.

Exact with ties: a later tie-break (trec_eval orders equal scores by docid) may prefer any item
whose score equals the k-th best, so :class:`TopK` keeps *every* item scoring at least the
running k-th best score. faiss gives the top ``k + margin`` of each chunk; a query whose tie set
may reach past that (or past the kept slots) is rescored exactly against the chunk.
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


def _kth_largest(scores: np.ndarray, k: int) -> np.ndarray:
    if scores.shape[1] < k:
        return np.full(len(scores), -np.inf, dtype=np.float32)
    return np.partition(scores, scores.shape[1] - k, axis=1)[:, scores.shape[1] - k]


class TopK:
    """Running exact top-k (by inner product, ties kept) of every query over corpus chunks."""

    def __init__(self, queries: np.ndarray, k: int, *, margin: int = 32, threads: int = 1) -> None:
        self.queries = np.ascontiguousarray(queries, dtype=np.float32)
        self.k, self.cap, self.threads = k, k + margin, threads
        n = len(queries)
        self.scores = np.zeros((n, 0), dtype=np.float32)
        self.ids = np.zeros((n, 0), dtype=np.int64)
        self.exact: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # rows whose tie sets outgrew the slots
        self.seen = 0

    def add(self, chunk: np.ndarray) -> None:
        """Search one chunk of corpus vectors; row ``i`` of the chunk gets global id ``seen + i``."""
        n = len(chunk)
        if not n:
            return
        chunk = np.ascontiguousarray(chunk, dtype=np.float32)
        faiss = _faiss(self.threads)
        index = faiss.IndexFlatIP(chunk.shape[1])
        index.add(chunk)
        k2 = min(self.cap, n)
        s, i = index.search(self.queries, k2)
        s_all = np.concatenate([self.scores, s], axis=1)
        i_all = np.concatenate([self.ids, i + self.seen], axis=1)
        t = _kth_largest(s_all, self.k)
        boundary = (k2 < n) & (s[:, -1] >= t)  # ties of the k-th score may continue past faiss' list
        overflow = (s_all >= t[:, None]).sum(axis=1) > self.cap
        for row in sorted(set(np.nonzero(boundary | overflow)[0].tolist()) | set(self.exact)):
            prev_s, prev_i = self.exact.get(row, (s_all[row, : self.scores.shape[1]], i_all[row, : self.scores.shape[1]]))
            row_s = np.concatenate([prev_s, chunk @ self.queries[row]])
            row_i = np.concatenate([prev_i, np.arange(self.seen, self.seen + n)])
            keep = row_s >= _kth_largest(row_s[None, :], self.k)[0]
            self.exact[row] = (row_s[keep], row_i[keep])
        if s_all.shape[1] > self.cap:
            keep = np.argpartition(-s_all, self.cap - 1, axis=1)[:, : self.cap]
            s_all = np.take_along_axis(s_all, keep, axis=1)
            i_all = np.take_along_axis(i_all, keep, axis=1)
        self.scores, self.ids = s_all, i_all
        self.seen += n

    def candidates(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """Every kept ``(scores, ids)`` of one query: a superset of its exact top-k under any tie-break."""
        if row in self.exact:
            return self.exact[row]
        return self.scores[row], self.ids[row]
