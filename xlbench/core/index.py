"""Exact top-k search over a corpus that arrives in chunks (faiss, imported only when needed).

Memory stays bounded by one corpus chunk plus the running candidate lists, so corpora of tens of
millions of passages can be searched from embeddings streamed off disk.

Exact under the grid rule (:mod:`xlbench.core.scoring`): faiss' float32 search only *proposes*
the top ``k + margin`` of each chunk; every proposal is rescored exactly, and a query whose k-th
best exact score lies within the float32 error bound of the last proposal (an item faiss left out
could still belong) is rescored exactly against the whole chunk. The result is the same set, with
the same scores, whatever kernel faiss used.

Ties: a later tie-break (trec_eval orders equal scores by docid) may prefer any item whose score
equals the k-th best, so :class:`TopK` keeps *every* item scoring at least the running k-th best.
"""

from __future__ import annotations

import numpy as np

from xlbench.core.scoring import GridVectors, exact_gathered, exact_scores, float32_error_bound
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
        return np.full(len(scores), -np.inf, dtype=np.float64)
    return np.partition(scores, scores.shape[1] - k, axis=1)[:, scores.shape[1] - k]


class TopK:
    """Running exact top-k (grid-rule inner product, ties kept) of every query over corpus chunks."""

    def __init__(self, queries: np.ndarray, k: int, *, margin: int = 32, threads: int = 1) -> None:
        self.grid = GridVectors(queries)
        self.queries = self.grid.vecs
        self.query_norms = np.linalg.norm(self.queries.astype(np.float64), axis=1)
        self.k, self.cap, self.threads = k, k + margin, threads
        n = len(queries)
        self.scores = np.zeros((n, 0), dtype=np.float64)
        self.ids = np.zeros((n, 0), dtype=np.int64)
        self.exact: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # rows whose tie sets outgrew the slots
        self.seen = 0

    def add(self, chunk: np.ndarray) -> None:
        """Search one chunk of corpus vectors; row ``i`` of the chunk gets global id ``seen + i``."""
        n = len(chunk)
        if not n:
            return
        cands = GridVectors(chunk, bits=self.grid.bits)
        faiss = _faiss(self.threads)
        index = faiss.IndexFlatIP(cands.vecs.shape[1])
        index.add(cands.vecs)
        k2 = min(self.cap, n)
        proposed, i = index.search(self.queries, k2)
        s = exact_gathered(self.grid, cands, i)
        kept = self.scores.shape[1]
        s_all = np.concatenate([self.scores, s], axis=1)
        i_all = np.concatenate([self.ids, i + self.seen], axis=1)
        t = _kth_largest(s_all, self.k)
        # the largest candidate norm, from float32 norms (relative error ≤ d·2^-24) with a 0.1 % margin
        cand_norm = float(np.linalg.norm(cands.vecs, axis=1).max()) * 1.001
        bound = float32_error_bound(self.query_norms, cand_norm, cands.vecs.shape[1])
        # An item faiss left out scored ≤ its last proposal in float32, so ≤ that + bound exactly.
        boundary = (k2 < n) & (proposed[:, -1].astype(np.float64) + bound >= t)
        overflow = (s_all >= t[:, None]).sum(axis=1) > self.cap
        for row in sorted(set(np.nonzero(boundary | overflow)[0].tolist()) | set(self.exact)):
            prev_s, prev_i = self.exact.get(row, (s_all[row, :kept], i_all[row, :kept]))
            row_s = np.concatenate([prev_s, exact_scores(self.grid, cands, row, row + 1)[0]])
            row_i = np.concatenate([prev_i, np.arange(self.seen, self.seen + n)])
            keep = row_s >= _kth_largest(row_s[None, :], self.k)[0]
            self.exact[row] = (row_s[keep], row_i[keep])
        if s_all.shape[1] > self.cap:
            keep = np.argpartition(-s_all, self.cap - 1, axis=1)[:, : self.cap]
            s_all = np.take_along_axis(s_all, keep, axis=1)
            i_all = np.take_along_axis(i_all, keep, axis=1)
        self.scores, self.ids = s_all, i_all
        self.seen += n

    def kept_ids(self) -> np.ndarray:
        """Every global id some query still keeps (what a caller must remember about the corpus)."""
        parts = [self.ids.ravel(), *(ids for _, ids in self.exact.values())]
        return np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)

    def candidates(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """Every kept ``(scores, ids)`` of one query: a superset of its exact top-k under any tie-break."""
        if row in self.exact:
            return self.exact[row]
        return self.scores[row], self.ids[row]


class RankCounter:
    """Exact ranks of given items in a corpus that arrives in chunks (the merged pool's bias measures).

    ``thresholds[q, r]`` is the grid-rule score of query ``q``'s ``r``-th item (NaN: none) and
    ``item_ids[q][r]`` its id. After every chunk has been added, ``rank[q, r] = 1 + #{j: s_j > t}
    + #{j: s_j = t, id_j > id}`` — trec_eval's order (score descending, then id descending), over
    the whole corpus. Each chunk is scored in float32 (fast, any kernel); only pairs within the
    float32 error bound of a threshold are rescored exactly, so the counts are exact. Memory: one
    block of float32 scores (``block_bytes``) besides the chunk.
    """

    def __init__(self, queries: np.ndarray, thresholds: np.ndarray, item_ids: list[list[str]], *,
                 block_bytes: int = 64 * 2**20) -> None:
        self.grid = GridVectors(queries)
        self.query_norms = np.linalg.norm(self.grid.vecs.astype(np.float64), axis=1)
        self.thresholds = np.asarray(thresholds, dtype=np.float64)
        self.item_ids = item_ids
        self.above = np.zeros(self.thresholds.shape, dtype=np.int64)
        self.block_bytes = block_bytes

    def add(self, chunk: np.ndarray, ids: list[str]) -> None:
        if not len(chunk) or not len(self.grid):
            return
        from xlbench.core.scoring import on_grid

        cands = GridVectors(chunk, bits=self.grid.bits)
        cand_norm = float(np.linalg.norm(cands.vecs, axis=1).max()) * 1.001
        bound = float32_error_bound(self.query_norms, cand_norm, cands.vecs.shape[1])
        rows = max(1, self.block_bytes // (4 * len(chunk)))
        for lo in range(0, len(self.grid), rows):
            hi = min(len(self.grid), lo + rows)
            s32 = self.grid.vecs[lo:hi] @ cands.vecs.T
            for r in range(self.thresholds.shape[1]):
                t = self.thresholds[lo:hi, r]
                live = np.isfinite(t)
                if not live.any():
                    continue
                t_hi = np.where(live, t + bound[lo:hi], np.inf)[:, None]
                t_lo = np.where(live, t - bound[lo:hi], np.inf)[:, None]
                self.above[lo:hi, r] += (s32 > t_hi).sum(axis=1)
                qi, ci = np.nonzero((s32 >= t_lo) & (s32 <= t_hi))
                if not len(qi):
                    continue
                exact = np.einsum("pd,pd->p", self.grid.block(lo, hi)[qi],
                                  on_grid(cands.vecs[ci], cands.exps[ci], cands.bits))
                for q, c, s in zip((qi + lo).tolist(), ci.tolist(), exact.tolist()):
                    t_q = self.thresholds[q, r]
                    if s > t_q or (s == t_q and ids[c] > self.item_ids[q][r]):
                        self.above[q, r] += 1

    def ranks(self) -> np.ndarray:
        """1-based ranks (0 where there is no item)."""
        return np.where(np.isfinite(self.thresholds), self.above + 1, 0)
