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

from xlbench.core.scoring import GridVectors, exact_gathered

DEFAULT_BUDGET_BYTES = 256 * 2**20


# Candidates put on the grid at a time when the pool is too large to keep a rounded copy.
CANDIDATE_BLOCK = 16384


def _row_chunk(n_columns: int, budget_bytes: int) -> int:
    # Per query row: the float64 scores, their float32 copy and two boolean comparison rows. At most
    # 256 rows: the rows compared against every language's threshold stay in cache (measured faster
    # than 1024 on XQuAD-R).
    per_row = max(1, n_columns) * 14
    return int(max(1, min(256, budget_bytes // per_row)))


def rank_relevant(
    query_emb: np.ndarray,
    cand_emb: np.ndarray,
    lang_offsets: np.ndarray,
    relevant: np.ndarray,
    *,
    budget_bytes: int = DEFAULT_BUDGET_BYTES,
    on_chunk: Callable[[int, int], None] | None = None,
    device: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Block and pool ranks of every query's relevant items (see the module docstring).

    ``relevant[q, l]`` is the global candidate index of query ``q``'s relevant item in language
    block ``l`` (-1 if none). ``on_chunk(done, total)`` is called after each row chunk; it may
    raise to stop early.

    The relevant items' scores are computed first; they are the thresholds every candidate is
    counted against, block of candidates by block of queries (the counts add up across blocks).
    Scores are exact, so a threshold equals its entry in any score block bit for bit. The counting
    runs on float32 copies (half the memory traffic): rounding is monotone, so a float32 comparison
    is exact except between equal float32 values, and those rare rows are settled on the exact
    scores. A pool small enough keeps a grid-rounded copy and is one block; a larger one is put on
    the grid ``CANDIDATE_BLOCK`` rows at a time, once each.

    With ``device`` (a torch device such as ``"cuda"``), the products and the counting run there
    instead (:func:`_rank_on_device`), with the same exact scores and so the same ranks; when the
    grid-rounded pool does not fit in half the device's free memory, on the host as above.
    """
    import torch

    n_q, n_l = relevant.shape
    n_c = cand_emb.shape[0]
    cand = GridVectors(cand_emb)
    queries = GridVectors(query_emb, bits=cand.bits)
    has = relevant >= 0
    t = np.where(has, exact_gathered(queries, cand, np.where(has, relevant, 0)), np.inf)
    block_rank = has.astype(np.int64)  # 1 + what beats the item, added below
    pool_rank = has.astype(np.int64)
    if device is not None and _fits(device, n_c * cand.vecs.shape[1] * 8 + budget_bytes):
        _rank_on_device(queries, cand, t, relevant, lang_offsets, block_rank, pool_rank, torch.device(device),
                        budget_bytes, on_chunk)
        return block_rank, pool_rank
    t32 = t.astype(np.float32)
    width = n_c if cand.keeps_rounded else min(n_c, CANDIDATE_BLOCK)
    step = _row_chunk(width, budget_bytes)
    n_blocks = max(1, -(-n_c // width))
    for k, c_lo in enumerate(range(0, n_c, width)):
        c_hi = min(n_c, c_lo + width)
        block = torch.from_numpy(cand.block(c_lo, c_hi)).T
        for a in range(0, n_q, step):
            b = min(n_q, a + step)
            s = torch.from_numpy(queries.block(a, b)).mm(block).numpy()
            _count_block(s, t[a:b], t32[a:b], has[a:b], relevant[a:b], lang_offsets, c_lo,
                         block_rank[a:b], pool_rank[a:b])
            if on_chunk is not None:
                on_chunk((k * n_q + b) // n_blocks, n_q)
    return block_rank, pool_rank


def _fits(device: str, need: int) -> bool:
    import torch

    dev = torch.device(device)
    if dev.type != "cuda":
        return True
    free, _total = torch.cuda.mem_get_info(dev)
    return need <= free // 2


def _rank_on_device(queries: GridVectors, cand: GridVectors, t: np.ndarray, relevant: np.ndarray,
                    lang_offsets: np.ndarray, block_rank: np.ndarray, pool_rank: np.ndarray, device,
                    budget_bytes: int, on_chunk: Callable[[int, int], None] | None) -> None:
    """The counting of :func:`rank_relevant` with the pool held on ``device``: float64 products of
    grid-rounded vectors (exact in any summation order, so the same bits as on the host), then
    ``rank(d) = 1 + #{j: s_j > s_d} + #{j < d: s_j = s_d}`` counted per language directly on the
    exact scores (no float32 copy, no second pass for ties). Adds to ``block_rank`` / ``pool_rank``."""
    import torch

    n_q, n_l = relevant.shape
    n_c = len(cand)
    # the grid-rounded pool, float64 on the device, put on the grid a block at a time (no host copy of it all)
    pool = torch.empty((cand.vecs.shape[1], n_c), dtype=torch.float64, device=device)
    for lo in range(0, n_c, CANDIDATE_BLOCK):
        hi = min(n_c, lo + CANDIDATE_BLOCK)
        pool[:, lo:hi] = torch.from_numpy(cand.block(lo, hi)).to(device).T
    thresholds = torch.from_numpy(t).to(device)
    rel = torch.from_numpy(relevant).to(device)
    column = torch.arange(n_c, device=device)
    bounds = [(int(lang_offsets[lang]), int(lang_offsets[lang + 1])) for lang in range(n_l)]
    # per query row: the float64 scores and two boolean rows
    step = int(max(1, min(n_q, budget_bytes // (max(1, n_c) * 10))))
    block_out = torch.zeros((n_q, n_l), dtype=torch.int64, device=device)
    pool_out = torch.zeros((n_q, n_l), dtype=torch.int64, device=device)
    for a in range(0, n_q, step):
        b = min(n_q, a + step)
        s = torch.from_numpy(queries.block(a, b)).to(device) @ pool
        for lang, (lo, hi) in enumerate(bounds):
            thr, mine = thresholds[a:b, lang : lang + 1], rel[a:b, lang : lang + 1]
            beats = (s > thr) | ((s == thr) & (column < mine))
            pool_out[a:b, lang] = beats.sum(dim=1)
            block_out[a:b, lang] = beats[:, lo:hi].sum(dim=1)
        if on_chunk is not None:
            on_chunk(b, n_q)
    block_rank += block_out.cpu().numpy()
    pool_rank += pool_out.cpu().numpy()


def _count_block(s: np.ndarray, t: np.ndarray, t32: np.ndarray, ok: np.ndarray, rel: np.ndarray,
                 lang_offsets: np.ndarray, c_lo: int, block_rank: np.ndarray, pool_rank: np.ndarray) -> None:
    """Add, for each row and language, the candidates of columns ``c_lo:`` that rank before the
    relevant item: a higher score, or an equal one earlier in candidate order."""
    c_hi = c_lo + s.shape[1]
    s32 = s.astype(np.float32)
    mine = (rel >= c_lo) & (rel < c_hi)  # the relevant item is in this block: it equals its own threshold
    for lang in range(t.shape[1]):
        okl = ok[:, lang]
        if not okl.any():
            continue
        lo, hi = int(lang_offsets[lang]), int(lang_offsets[lang + 1])
        tl = t32[:, lang : lang + 1]
        above, level = s32 > tl, s32 == tl
        pool_rank[:, lang] += np.where(okl, np.count_nonzero(above, axis=1), 0)
        b_lo, b_hi = max(lo, c_lo) - c_lo, min(hi, c_hi) - c_lo
        if b_hi > b_lo:
            block_rank[:, lang] += np.where(okl, np.count_nonzero(above[:, b_lo:b_hi], axis=1), 0)
        others = np.count_nonzero(level, axis=1) - mine[:, lang]
        for r in np.nonzero(okl & (others > 0))[0]:
            same = np.nonzero(level[r])[0]
            exact, j = s[r, same], same + c_lo
            beats = (exact > t[r, lang]) | ((exact == t[r, lang]) & (j < rel[r, lang]))
            pool_rank[r, lang] += int(np.count_nonzero(beats))
            block_rank[r, lang] += int(np.count_nonzero(beats & (j >= lo) & (j < hi)))
