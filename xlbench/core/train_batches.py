"""From a sampler's batch to what a training step feeds the device.

A batch names ``(group_id, query_lang, passage_lang)`` triples; :class:`BatchPreparer` turns it into
texts (queries, positives, hard negatives), tokenises this process's share of each role, optionally
in groups of similar length (``train.length_buckets``: each group padded only to its own longest
text, with the positions that put the embeddings back in order), marks passages that duplicate
another pair's positive, and counts real and padded tokens and model FLOPs
(:mod:`xlbench.core.flops`). It may run in a thread beside the step (the trainer's prefetching on
CUDA): the tokenizer is entered under a lock, since a fast tokenizer must not be used from two
threads at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from xlbench.core.batching import equal_count_groups, pin, pinned, take_rows, token_lengths
from xlbench.core.flops import encoder_shape


@dataclass
class Tokenised:
    """One role's texts tokenised for the device: one features dict per length bucket, and the
    positions that put the buckets' rows back in the texts' order (None: one bucket, in order)."""

    parts: list
    inverse: object | None = None


@dataclass
class PreparedBatch:
    """A batch ready for a step: its texts, this process's share tokenised (None when the cached
    loss embeds in mini-batches), the same-text mask, the token counts, and the sampler's state
    just after drawing it (what a checkpoint taken after this step must save)."""

    batch: list
    qs: list
    ps: list
    ns: list
    tokenised: dict | None = None
    same_text: object | None = None
    tokens: int = 0
    padded_tokens: int = 0
    flops: float | None = None
    sampler_state: dict | None = None


def same_text_mask(positives: list[str], columns: list[str]) -> np.ndarray | None:
    """``mask[i, j]``: column ``j`` holds the same text as row ``i``'s positive (and is not it), so
    it is no negative for row ``i``. None when nothing is masked."""
    mask = np.zeros((len(positives), len(columns)), dtype=bool)
    index: dict[str, list[int]] = {}
    for j, text in enumerate(columns):
        index.setdefault(text, []).append(j)
    for i, text in enumerate(positives):
        for j in index.get(text, ()):
            if j != i:
                mask[i, j] = True
    return mask if mask.any() else None


class BatchPreparer:
    """Texts, tokens and counts of batches for one trainable encoder (see the module docstring).

    ``local(items)`` is this process's slice of a global batch (all of it without torchrun);
    ``pin``: page-locked tensors, for copies to a GPU without a host wait."""

    def __init__(self, trainable, corpora, *, buckets: int, pin: bool, hard_negatives: bool,
                 local: Callable[[list], list]) -> None:
        self.enc = trainable
        self.buckets, self.pin, self.hard_negatives, self.local = buckets, pin, hard_negatives, local
        self.shape = encoder_shape(trainable.module)
        self.padding_side = getattr(getattr(trainable.module, "tokenizer", None), "padding_side", "right") or "right"
        self._lock = threading.Lock()
        # (group id → row, language → column) of each corpus, built once: batches name groups by id
        self.indexes = {id(c): ({g: i for i, g in enumerate(c.group_ids)}, {lang: i for i, lang in enumerate(c.languages)})
                        for c in corpora}

    def texts(self, batch, corpus) -> tuple[list[str], list[str], list[str]]:
        gi, li = self.indexes[id(corpus)]
        qs, ps, ns = [], [], []
        for gid, ql, pl in batch:
            q, p, n = corpus.pair(gi[gid], li[ql], li[pl])
            qs.append(q)
            ps.append(p)
            if n is not None and self.hard_negatives:
                ns.append(n)
        return qs, ps, ns

    def features(self, texts: list[str], role: str):
        with self._lock:
            return self.enc.features(texts, role)

    def tokenise(self, texts: list[str], role: str) -> tuple[Tokenised, np.ndarray | None, int]:
        """``texts`` tokenised in ``buckets`` groups of similar length; with their token lengths and
        the padded tokens the forward passes will carry (None / 0 when the encoder's features have
        no attention mask: an encoder plugin's own inputs go in one pass)."""
        import torch

        features = self.features(texts, role)
        mask = features.get("attention_mask") if isinstance(features, Mapping) else None
        if not isinstance(mask, torch.Tensor) or mask.dim() != 2:
            return Tokenised([features]), None, 0
        lengths = token_lengths(features)
        if self.buckets == 1 or len(texts) < 2:
            return Tokenised([pinned(features, self.pin)]), lengths, mask.numel()
        groups = equal_count_groups(lengths, self.buckets)
        parts = [pinned(take_rows(features, rows, self.padding_side), self.pin) for rows in groups]
        inverse = np.empty(len(texts), dtype=np.int64)
        inverse[np.concatenate(groups)] = np.arange(len(texts))
        padded = sum(part["attention_mask"].numel() for part in parts)
        return Tokenised(parts, pin(torch.from_numpy(inverse), self.pin)), lengths, padded

    def prepare(self, batch, corpus, *, tokenise: bool = True) -> PreparedBatch:
        """Texts of a batch and, with ``tokenise``, this process's share tokenised for the device."""
        prepared = PreparedBatch(batch, *self.texts(batch, corpus))
        return self.tokenise_batch(prepared) if tokenise else prepared

    def tokenise_batch(self, prepared: PreparedBatch) -> PreparedBatch:
        import torch

        qs, ps, ns = prepared.qs, prepared.ps, prepared.ns
        tokenised, lengths = {}, []
        for key, texts, role in (("q", qs, "query"), ("p", ps, "passage"), ("n", ns, "passage")):
            if texts:
                tokenised[key], lens, padded = self.tokenise(self.local(texts), role)
                prepared.padded_tokens += padded
                if lens is not None:
                    lengths.append(lens)
        prepared.tokenised = tokenised
        mask = same_text_mask(ps, ps + ns)
        if mask is not None:
            prepared.same_text = pin(torch.from_numpy(mask), self.pin)
        if lengths:
            lengths = np.concatenate(lengths)
            prepared.tokens = int(lengths.sum())
            prepared.flops = self.shape.training_flops(lengths) if self.shape else None
        return prepared
