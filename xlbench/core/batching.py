"""Feeding an accelerator: work prepared ahead in a thread, texts batched by token length.

Two pieces used by evaluation (:mod:`xlbench.core.encoders.st`) and training
(:mod:`xlbench.core.train`) on a GPU:

* :func:`prefetched`: an iterator whose items are produced by a background thread, ``depth``
  items ahead, so tokenising the next batch overlaps the device's work on this one (fast
  tokenizers release the GIL). Errors in the thread are raised where the item would have come;
  closing the iterator stops the thread.
* :func:`by_token_length` / :func:`take_rows`: a tokenised group cut into batches of texts of
  similar length, each padded only to its own longest text, within a budget of padded tokens
  per forward pass (so short queries go many to a batch, long paragraphs few).

Nothing here changes what a text's vector is in exact arithmetic: padding is masked out of
attention and pooling. Float results may move in the last bits with the batch's shape, which is
why the CPU path of the encoder keeps its equal-length batches (see the encoder's docstring).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

import numpy as np

T = TypeVar("T")

_DONE = object()


class prefetched(Iterator[T]):
    """Iterate ``items`` with a background thread running ``depth`` items ahead.

    Use as a context manager (or call :meth:`close`) so the thread stops when the consumer does."""

    def __init__(self, items: Iterable[T], depth: int = 2) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._finished = False
        self._thread = threading.Thread(target=self._produce, args=(iter(items),), name="xlbench-prefetch", daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self, items: Iterator[T]) -> None:
        try:
            for item in items:
                if not self._put((item, None)):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            self._put((_DONE, exc))
            return
        self._put((_DONE, None))

    def __next__(self) -> T:
        if self._finished:
            raise StopIteration
        item, error = self._queue.get()
        if item is _DONE:
            self._finished = True
            self._thread.join()
            if error is not None:
                raise error
            raise StopIteration
        return item

    def close(self) -> None:
        self._stop.set()
        self._finished = True
        self._thread.join(timeout=10)

    def __enter__(self) -> prefetched[T]:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def by_token_length(lengths: np.ndarray, token_budget: int, max_batch: int | None = None) -> list[np.ndarray]:
    """Indices of ``lengths`` (tokens per text) in batches, longest first, each batch holding as
    many texts as fit ``count × longest ≤ token_budget`` (at least one; at most ``max_batch``).

    Every index appears exactly once; within equal lengths the original order is kept."""
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    while start < len(order):
        longest = max(1, int(lengths[order[start]]))
        count = max(1, token_budget // longest)
        if max_batch:
            count = min(count, max_batch)
        batches.append(order[start : start + count])
        start += count
    return batches


def equal_count_groups(lengths: np.ndarray, groups: int) -> list[np.ndarray]:
    """Indices sorted by length (longest first), cut into ``groups`` runs of near-equal count: the
    fewest padded tokens for a fixed number of forward passes. Empty runs are left out."""
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    return [part for part in np.array_split(order, max(1, min(groups, len(order)))) if len(part)]


def take_rows(features: dict, rows: np.ndarray, padding_side: str = "right") -> dict:
    """The features of texts ``rows`` of a tokenised group, padded only to their own longest.

    ``features`` is a tokenizer's output for the whole group (2-D tensors ``[texts, tokens]`` with an
    ``attention_mask``); other entries (a prompt length, say) are passed on unchanged."""
    import torch

    mask = features["attention_mask"]
    index = torch.as_tensor(np.asarray(rows, dtype=np.int64))
    width = int(mask[index].sum(dim=1).max()) if len(rows) else 0
    total = mask.shape[1]
    cols = slice(0, width) if padding_side == "right" else slice(total - width, total)
    out = {}
    for key, value in features.items():
        if isinstance(value, torch.Tensor) and value.dim() == 2 and value.shape == mask.shape:
            out[key] = value[index][:, cols].contiguous()
        else:
            out[key] = value
    return out


def token_lengths(features: dict) -> np.ndarray:
    """Tokens per text (the attention mask's row sums) of a tokenised group."""
    return features["attention_mask"].sum(dim=1).numpy()


def pin(tensor, enabled: bool):
    """A page-locked copy of ``tensor`` when ``enabled`` (a copy to the GPU can then run without a
    host wait); the tensor itself otherwise."""
    return tensor.pin_memory() if enabled else tensor


def pinned(features: dict, enabled: bool) -> dict:
    """:func:`pin` for every tensor of a features dict."""
    if not enabled:
        return features
    import torch

    return {k: (pin(v, True) if isinstance(v, torch.Tensor) else v) for k, v in features.items()}


def on_device(tensor, device):
    """``tensor`` on ``device``; a pinned one is copied without waiting for the device."""
    return tensor.to(device, non_blocking=tensor.is_pinned())


def to_device(features: dict, device) -> dict:
    """:func:`on_device` for every tensor of a features dict."""
    import torch

    return {k: (on_device(v, device) if isinstance(v, torch.Tensor) else v) for k, v in features.items()}
