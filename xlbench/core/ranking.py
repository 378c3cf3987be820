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
    # Per query row: the float64 scores and two boolean comparison rows.
    per_row = max(1, n_candidates) * 10
    return int(max(1, min(1024, budget_bytes // per_row)))


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
        # One threshold per row and language: count what beats it (and ties it) in the whole pool
        # and, from the same comparison, inside its language block. For the few languages of a
        # LAReQA set this is cheaper than sorting every row.
        for lang in range(n_l):
            lo, hi = int(lang_offsets[lang]), int(lang_offsets[lang + 1])
            tl = t[:, lang : lang + 1]
            above, level = s > tl, s == tl
            okl = ok[:, lang]
            block_rank[a:b, lang] = np.where(okl, np.count_nonzero(above[:, lo:hi], axis=1) + 1, 0)
            pool_rank[a:b, lang] = np.where(okl, np.count_nonzero(above, axis=1) + 1, 0)
            # ties go to the candidate that comes first: add the tied candidates before the relevant one
            for r in np.nonzero(okl & (np.count_nonzero(level, axis=1) > 1))[0]:
                d = int(rel[r, lang])
                pool_rank[a + r, lang] += np.count_nonzero(level[r, :d])
                block_rank[a + r, lang] += np.count_nonzero(level[r, lo:d])
        if on_chunk is not None:
            on_chunk(b, n_q)
    return block_rank, pool_rank

