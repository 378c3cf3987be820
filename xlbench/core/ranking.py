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
    # Per query row: the float64 scores, their float32 copy and two boolean comparison rows. At most
    # 256 rows: the rows compared against every language's threshold stay in cache (measured faster
    # than 1024 on XQuAD-R).
    per_row = max(1, n_candidates) * 14
    return int(max(1, min(256, budget_bytes // per_row)))


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
        # One threshold per row and language: count what beats it in the whole pool and, from the
        # same comparison, inside its language block (cheaper than sorting every row for a LAReQA
        # set's few languages). The counting runs on float32 copies, half the memory traffic;
        # rounding is monotone, so a float32 comparison is exact except between equal float32
        # values, and rows where another candidate shares the threshold's float32 value (rare) are
        # settled on the exact scores.
        s32, t32 = s.astype(np.float32), t.astype(np.float32)
        for lang in range(n_l):
            lo, hi = int(lang_offsets[lang]), int(lang_offsets[lang + 1])
            tl = t32[:, lang : lang + 1]
            above, level = s32 > tl, s32 == tl
            okl = ok[:, lang]
            block_rank[a:b, lang] = np.where(okl, np.count_nonzero(above[:, lo:hi], axis=1) + 1, 0)
            pool_rank[a:b, lang] = np.where(okl, np.count_nonzero(above, axis=1) + 1, 0)
            for r in np.nonzero(okl & (np.count_nonzero(level, axis=1) > 1))[0]:
                _settle_exactly(s[r], t[r, lang], np.nonzero(level[r])[0], int(rel[r, lang]), lo, hi,
                                block_rank[a + r], pool_rank[a + r], lang)
        if on_chunk is not None:
            on_chunk(b, n_q)
    return block_rank, pool_rank


def _settle_exactly(scores: np.ndarray, t: float, same32: np.ndarray, d: int, lo: int, hi: int,
                    block_row: np.ndarray, pool_row: np.ndarray, lang: int) -> None:
    """Candidates whose float32 score equals the threshold's: count, on the exact scores, those
    above it, and (ties go to the candidate that comes first) those equal to it before ``d``."""
    exact = scores[same32]
    beats = (exact > t) | ((exact == t) & (same32 < d))
    in_block = (same32 >= lo) & (same32 < hi)
    pool_row[lang] += int(np.count_nonzero(beats))
    block_row[lang] += int(np.count_nonzero(beats & in_block))
