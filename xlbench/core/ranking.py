"""Ranks of relevant candidates in every language block and in the whole pool, in one pass.

For LAReQA-style sets every setting is a view of one score matrix: mono X→X and cross X→Y rank
a query's relevant item inside language block Y, multi X→all ranks it in the whole pool. So each
query's scores against the pool are computed once, in row chunks sized to a memory budget (no
N×M matrix is ever held), and reduced to two small integer matrices:

* ``block_rank[q, l]``: 1-based rank of query ``q``'s relevant item among language ``l``'s
  candidates (0 where ``q`` has none there);
* ``pool_rank[q, l]``: 1-based rank of the same item among all candidates.

Scores follow the grid rule of :mod:`xlbench.core.scoring` (exact, the same bits on every CPU,
kernel path, thread count and device), so ranks are a function of the embeddings alone. Ties are
broken stably by candidate order: ``rank(d) = 1 + #{j: s_j > s_d} + #{j < d: s_j = s_d}``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from xlbench.core.scoring import GridVectors, exact_scores

DEFAULT_BUDGET_BYTES = 256 * 2**20


def _row_chunk(n_candidates: int, budget_bytes: int) -> int:
    # Per query row: the float64 scores, their sorted copy, and a boolean block mask.
    per_row = max(1, n_candidates) * 17
    return int(max(1, min(1024, budget_bytes // per_row)))


def _count_greater_sorted(sorted_rows: np.ndarray, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row and threshold: #values > t and #values == t, via batched binary search."""
    import torch

    s = torch.from_numpy(sorted_rows)
    t = torch.from_numpy(np.ascontiguousarray(thresholds))
    right = torch.searchsorted(s, t, right=True).numpy()
    left = torch.searchsorted(s, t, right=False).numpy()
    n = sorted_rows.shape[1]
    return n - right, right - left


def rank_relevant(
    query_emb: np.ndarray,
    cand_emb: np.ndarray,
    lang_offsets: np.ndarray,
    relevant: np.ndarray,
    *,
    budget_bytes: int = DEFAULT_BUDGET_BYTES,
    on_chunk: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Block and pool ranks of every query's relevant items (see the module docstring).

    ``relevant[q, l]`` is the global candidate index of query ``q``'s relevant item in language
    block ``l`` (-1 if none). ``on_chunk(done, total)`` is called after each row chunk; it may
    raise to stop early.
    """
    n_q, n_l = relevant.shape
    n_c = cand_emb.shape[0]
    cand = GridVectors(cand_emb)
    queries = GridVectors(query_emb, bits=cand.bits)
    block_rank = np.zeros((n_q, n_l), dtype=np.int64)
    pool_rank = np.zeros((n_q, n_l), dtype=np.int64)
    step = _row_chunk(n_c, budget_bytes)
    has = relevant >= 0
    for a in range(0, n_q, step):
        b = min(n_q, a + step)
        s = exact_scores(queries, cand, a, b)
        rel = relevant[a:b]
        ok = has[a:b]
        rows = np.arange(b - a)[:, None]
        t = np.where(ok, s[rows, np.where(ok, rel, 0)], np.inf)
        # Within each language block: one threshold per row, a linear count.
        for lang in range(n_l):
            lo, hi = int(lang_offsets[lang]), int(lang_offsets[lang + 1])
            sub = s[:, lo:hi]
            tl = t[:, lang : lang + 1]
            gt = (sub > tl).sum(axis=1)
            eq = (sub == tl).sum(axis=1)
            block_rank[a:b, lang] = np.where(ok[:, lang], gt + 1, 0)
            _add_tie_breaks(block_rank[a:b], sub, tl[:, 0], rel[:, lang] - lo, eq, ok[:, lang], lang)
        # Across the pool: sort each row once, then binary-search every threshold.
        gt_pool, eq_pool = _count_greater_sorted(np.sort(s, axis=1), t)
        pool_rank[a:b] = np.where(ok, gt_pool + 1, 0)
        tied = ok & (eq_pool > 1)
        for r, lang in zip(*np.nonzero(tied)):
            before = int((s[r, : rel[r, lang]] == t[r, lang]).sum())
            pool_rank[a + r, lang] += before
        if on_chunk is not None:
            on_chunk(b, n_q)
    return block_rank, pool_rank


def _add_tie_breaks(out: np.ndarray, sub: np.ndarray, t: np.ndarray, local_idx: np.ndarray,
                    eq: np.ndarray, ok: np.ndarray, lang: int) -> None:
    """Add #{j < d: s_j = s_d} for rows whose relevant score is tied with another candidate."""
    for r in np.nonzero(ok & (eq > 1))[0]:
        out[r, lang] += int((sub[r, : local_idx[r]] == t[r]).sum())
