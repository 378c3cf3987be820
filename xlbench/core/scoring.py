"""Exact scores: the same embeddings give the same scores, bit for bit, on every machine.

A float32 dot product depends on the order its terms are summed, and that order is chosen per CPU
by the math kernel (MKL, OpenBLAS, oneDNN, faiss' SIMD code), by the thread count and by the device.
Near-tied candidates then swap between machines and a stored metric moves in the sixth decimal.
xlbench therefore never ranks by a float32 product. The rule (the *grid rule*):

1. each vector ``v`` (query or candidate, dimension ``d``) is put on its own power-of-two grid:
   ``e(v) = frexp(max|v_i|)[1]`` (so every ``|v_i| < 2**e(v)``) and
   ``Q(v) = rint(v * 2**(B - e(v)))``, integers with ``|Q(v)_i| <= 2**B``, where
   ``B = (53 - ceil(log2 d)) // 2`` (22 bits for d = 384 or 512, 21 for 768 or 1024);
2. ``score(q, c) = (Q(q) · Q(c)) * 2**(e(q) + e(c) - 2B)``.

Every partial sum of ``Q(q) · Q(c)`` is an integer of magnitude at most ``d * 2**(2B) <= 2**53``,
which float64 holds exactly; so the float64 product is the exact integer whatever the summation
order, blocking, FMA use, thread count or device, and the power-of-two scaling is exact too.
Each step (float32 → float64, ``ldexp``, ``rint``) is a correctly rounded IEEE operation, so the
score is a function of the two float32 vectors alone. Ties are then real ties and the documented
tie rules (candidate order for LAReQA, trec_eval's docid order for MIRACL) decide them.

Limits: the grid has ``2**B`` steps per unit of a vector's largest component (relative step
2.4e-7 for d = 384, about four float32 ulps): two candidates whose true scores differ by less than
that may tie here, where float32 would have ordered them by rounding noise. Embeddings themselves
still come out of per-CPU kernels; docs/reproducibility.md measures how far that moves a metric.
"""

from __future__ import annotations

import math

import numpy as np

_F64_MANTISSA = 53
_U32 = 2.0**-24  # float32 unit roundoff


def grid_bits(dim: int) -> int:
    """``B``: integer bits per vector component that keep a ``dim``-term dot product exact in float64."""
    return (_F64_MANTISSA - math.ceil(math.log2(max(1, dim)))) // 2


def grid_exponents(vecs: np.ndarray) -> np.ndarray:
    """``e(v)`` of each row: the power of two above its largest absolute component (int64)."""
    vecs = np.asarray(vecs)
    if not vecs.size:
        return np.zeros(len(vecs), dtype=np.int64)
    # max |v| as the larger of max and -min, a block of rows at a time: no full-size temporary
    peak = np.empty(len(vecs), dtype=np.float64)
    for lo in range(0, len(vecs), 65536):
        rows = vecs[lo : lo + 65536]
        peak[lo : lo + 65536] = np.maximum(rows.max(axis=1), -rows.min(axis=1))
    return np.frexp(peak)[1].astype(np.int64)


def on_grid(vecs: np.ndarray, exps: np.ndarray, bits: int) -> np.ndarray:
    """Each row rounded to its grid, as float64: ``Q(v) * 2**(e - B)`` (exact: every step is a
    correctly rounded IEEE operation, and the result has at most B + 1 significant bits)."""
    shift = (bits - exps)[:, None].astype(np.int64)
    return np.ldexp(np.rint(np.ldexp(np.asarray(vecs, dtype=np.float64), shift)), -shift)


# Grid values have at most B + 1 ≤ 24 significant bits, so float32 holds them exactly: matrices up
# to this size keep a rounded float32 copy instead of re-rounding each block every time it is used.
ROUNDED_COPY_BYTES = 256 * 2**20


class GridVectors:
    """A float32 matrix with its grid exponents; rows are put on the grid a block at a time."""

    def __init__(self, vecs: np.ndarray, bits: int | None = None) -> None:
        self.vecs = np.ascontiguousarray(vecs, dtype=np.float32)
        self.bits = grid_bits(self.vecs.shape[1]) if bits is None else bits
        self.exps = grid_exponents(self.vecs)
        # small enough to keep a rounded copy (made on first use), so each row is rounded once
        self.keeps_rounded = self.vecs.nbytes <= ROUNDED_COPY_BYTES and self.bits <= 23
        self._rounded: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.vecs)

    def block(self, lo: int, hi: int) -> np.ndarray:
        if self.keeps_rounded:
            if self._rounded is None:
                self._rounded = on_grid(self.vecs, self.exps, self.bits).astype(np.float32)
            return self._rounded[lo:hi].astype(np.float64)
        return on_grid(self.vecs[lo:hi], self.exps[lo:hi], self.bits)


def exact_scores(queries: GridVectors, cands: GridVectors, q_lo: int, q_hi: int, *,
                 col_block: int = 16384) -> np.ndarray:
    """float64 scores of queries ``q_lo:q_hi`` against every candidate under the grid rule.

    The product of two grid-rounded vectors is ``Σ Q(q)_i Q(c)_i`` times one power of two, so
    every partial sum is an integer below 2**53 times that power: float64 holds it exactly, in any
    order. Candidates are put on the grid ``col_block`` rows at a time (no float64 copy of the
    whole candidate matrix is held).
    """
    import torch

    if queries.bits != cands.bits:
        raise ValueError("queries and candidates must share the grid")
    q = torch.from_numpy(queries.block(q_lo, q_hi))
    out = np.empty((q_hi - q_lo, len(cands)), dtype=np.float64)
    for lo in range(0, len(cands), col_block):
        hi = min(len(cands), lo + col_block)
        torch.mm(q, torch.from_numpy(cands.block(lo, hi)).T, out=torch.from_numpy(out[:, lo:hi]))
    return out


def exact_gathered(queries: GridVectors, cands: GridVectors, idx: np.ndarray, *, rows: int = 64) -> np.ndarray:
    """Grid-rule scores of query ``r`` against candidates ``idx[r, :]`` (float64, shape of ``idx``)."""
    out = np.empty(idx.shape, dtype=np.float64)
    for a in range(0, len(idx), rows):
        b = min(len(idx), a + rows)
        flat = idx[a:b].ravel()
        qc = on_grid(cands.vecs[flat], cands.exps[flat], cands.bits).reshape(b - a, idx.shape[1], -1)
        out[a:b] = np.einsum("rd,rkd->rk", queries.block(a, b), qc)
    return out


def float32_error_bound(query_norms: np.ndarray, cand_norm_max: float, dim: int) -> np.ndarray:
    """A bound on |grid score − float32 score| for any float32 kernel, per query.

    The float32 dot product (any order, with or without FMA) is within ``γ_d ‖q‖‖c‖`` of the real
    one (Higham, Accuracy and Stability, §3.1); the grid moves each component by at most half a
    step (at most ``2**-B`` times the vector's norm per component), which moves the score by at
    most ``(2√d 2**-B + d 2**-2B) ‖q‖‖c‖``. The sum is doubled: a margin, not a tight bound.
    """
    gamma = dim * _U32 / (1 - dim * _U32)
    step = 2.0 ** -grid_bits(dim)
    grid = 2 * math.sqrt(dim) * step + dim * step * step
    return 2 * (gamma + grid) * np.asarray(query_norms, dtype=np.float64) * cand_norm_max

