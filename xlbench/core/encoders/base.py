"""The encoder contract and the one place that turns texts into vectors.

An encoder is any class with class attributes ``kind = "encoder"`` and ``name``, a constructor
with no required arguments, and::

    def encode(self, texts: list[str], *, role: str) -> numpy.ndarray

returning float32 vectors of shape ``[len(texts), d]``; ``role`` is ``"query"`` or ``"passage"``.
xlbench scores by the dot product of the vectors as returned (normalise them for cosine).

Optional members xlbench uses when present:

* ``fingerprint() -> str``: identifies the weights and settings; enables the on-disk embedding
  cache (an encoder without one is never cached, since a stale vector would be silent);
* ``describe() -> dict``: what the run record should say about the model (label, source, dim).
* ``threads``: a settable attribute; xlbench sets the CPU thread count for the encoder.
* ``texts_per_call``: how many texts one ``encode`` call should get at most (None: xlbench's
  choice); an encoder that batches and overlaps work itself asks for large calls.
* ``scoring_device``: a torch device (``"cuda:0"``) where the evaluation should score its vectors
  (None: the host); the scores are exact either way, so the ranks are the same.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np

from xlbench.core.encoders.cache import EmbeddingCache, text_keys
from xlbench.errors import PluginError

ROLES = ("query", "passage")


@runtime_checkable
class Encoder(Protocol):
    kind: ClassVar[str]
    name: ClassVar[str]

    def encode(self, texts: list[str], *, role: str) -> np.ndarray: ...


def fingerprint(encoder: Encoder) -> str | None:
    fp = getattr(encoder, "fingerprint", None)
    if fp is None:
        return None
    value = fp() if callable(fp) else fp
    if not value:
        return None
    return hashlib.sha256(f"{type(encoder).name}\0{value}".encode()).hexdigest()[:24]


def describe(encoder: Encoder) -> dict:
    info = {"encoder": type(encoder).name}
    fn = getattr(encoder, "describe", None)
    if callable(fn):
        info.update(fn())
    return info


def check_dimension(encoder: Encoder, queries: np.ndarray, passages: np.ndarray) -> None:
    """Query and passage vectors must share a dimension (a plugin may get this wrong)."""
    if len(queries) and len(passages) and queries.shape[1] != passages.shape[1]:
        raise PluginError(f"encoder {type(encoder).name!r} returned {queries.shape[1]}-dimensional query vectors but "
                          f"{passages.shape[1]}-dimensional passage vectors; scores need one dimension")


def _checked(encoder: Encoder, out, n: int) -> np.ndarray:
    name = type(encoder).name
    if not isinstance(out, np.ndarray):
        raise PluginError(f"encoder {name!r} returned {type(out).__name__}, expected a numpy.ndarray")
    if out.ndim != 2 or out.shape[0] != n:
        raise PluginError(f"encoder {name!r} returned shape {out.shape} for {n} texts, expected ({n}, d)")
    if not np.issubdtype(out.dtype, np.floating):
        raise PluginError(f"encoder {name!r} returned dtype {out.dtype}, expected float32")
    out = out.astype(np.float32, copy=False)
    if not np.isfinite(out).all():
        raise PluginError(f"encoder {name!r} returned NaN or infinite values")
    return out


class EncodeStats:
    """How many texts were asked for, how many were unique, how many the encoder actually saw."""

    def __init__(self) -> None:
        self.requested = 0
        self.unique = 0
        self.from_cache = 0
        self.encoded = 0
        self.seconds = 0.0

    def as_dict(self) -> dict:
        return dict(vars(self))


def encode_texts(
    encoder: Encoder,
    texts: list[str],
    role: str,
    *,
    cache: EmbeddingCache | None = None,
    batch_size: int = 256,
    flush_seconds: float | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    stats: EncodeStats | None = None,
) -> np.ndarray:
    """Vectors for ``texts`` in order; each unique text is encoded at most once (and never if cached).

    Texts are encoded longest first in calls of ``batch_size`` (or the encoder's larger
    ``texts_per_call``) so padding stays small; new vectors are flushed to the cache at least every
    ``flush_seconds`` (default ``$XLBENCH_CACHE_FLUSH_SECONDS`` or 20: what a killed process loses
    at most). ``on_progress(done, total)`` counts unique texts and may raise to stop (what was
    flushed stays cached).
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    stats = stats or EncodeStats()
    if flush_seconds is None:
        flush_seconds = float(os.environ.get("XLBENCH_CACHE_FLUSH_SECONDS", "20"))
    t0 = time.perf_counter()
    unique: dict[str, int] = {}
    index = np.fromiter((unique.setdefault(t, len(unique)) for t in texts), dtype=np.int64, count=len(texts))
    uniq = list(unique)
    stats.requested += len(texts)
    stats.unique += len(uniq)
    vecs: np.ndarray | None = None
    todo = np.arange(len(uniq))
    keys = None
    if cache is not None and uniq:
        keys = text_keys(uniq, role)
        hit, cached = cache.get(keys)
        if cached is not None:
            vecs = np.empty((len(uniq), cached.shape[1]), dtype=np.float32)
            vecs[hit] = cached
        todo = np.nonzero(~hit)[0]
        stats.from_cache += int(hit.sum())
    done = len(uniq) - len(todo)
    if on_progress:
        on_progress(done, len(uniq))
    order = todo[np.argsort([-len(uniq[i]) for i in todo], kind="stable")] if len(todo) else todo
    pending: list[np.ndarray] = []
    last_flush = time.monotonic()

    def flush() -> None:
        nonlocal pending, last_flush
        if cache is not None and pending:
            idx = np.concatenate(pending)
            cache.append(keys[idx], vecs[idx])
        pending, last_flush = [], time.monotonic()

    if len(order):
        batch_size = max(batch_size, getattr(encoder, "texts_per_call", None) or 0)
    try:
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            out = _checked(encoder, encoder.encode([uniq[i] for i in batch], role=role), len(batch))
            if vecs is None:
                vecs = np.empty((len(uniq), out.shape[1]), dtype=np.float32)
            elif out.shape[1] != vecs.shape[1]:
                raise PluginError(f"encoder {type(encoder).name!r} changed its dimension from {vecs.shape[1]} to {out.shape[1]}")
            vecs[batch] = out
            pending.append(batch)
            stats.encoded += len(batch)
            done += len(batch)
            if time.monotonic() - last_flush >= flush_seconds:
                flush()
            if on_progress:
                on_progress(done, len(uniq))
    finally:
        flush()
        stats.seconds += time.perf_counter() - t0
    if vecs is None:
        return np.zeros((len(texts), 0), dtype=np.float32)
    return vecs[index]
