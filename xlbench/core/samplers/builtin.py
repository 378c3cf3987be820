"""The paper's three batch schemes, registered as ``xlbench.samplers`` plugins like any other.

* ``monolingual`` (X-X): one language per batch, drawn uniformly (the paper) or ∝ its size.
* ``crosslingual`` (X-Y): every pair has query language ≠ passage language; random languages per
  pair, or one fixed direction per batch (``mode=direction``).
* ``hybrid``: each batch is monolingual with probability ``alpha`` (paper: 0.5), else cross-lingual.
"""

from __future__ import annotations

from xlbench.core.samplers.base import Batch, BuiltinSampler, Option, cross_batch, cross_index, mono_batch, mono_index

WEIGHTS = Option(str, "uniform", "how a monolingual batch's language is drawn", choices=("uniform", "size"))
MODE = Option(str, "pair", "cross-lingual languages per pair, or one direction per batch", choices=("pair", "direction"))


class MonolingualSampler(BuiltinSampler):
    name = "monolingual"
    options = {"weights": WEIGHTS}

    def _setup(self) -> None:
        self.mono = mono_index(self, self.opts["weights"])

    def next_batch(self) -> Batch:
        return mono_batch(self, self.mono)


class CrosslingualSampler(BuiltinSampler):
    name = "crosslingual"
    options = {"mode": MODE}

    def _setup(self) -> None:
        self.cross = cross_index(self, self.opts["mode"])

    def next_batch(self) -> Batch:
        return cross_batch(self, self.cross, self.opts["mode"])


class HybridSampler(BuiltinSampler):
    name = "hybrid"
    options = {
        "alpha": Option(float, 0.5, "probability that a batch is monolingual", min=0.0, max=1.0),
        "weights": WEIGHTS,
        "mode": MODE,
    }

    def _setup(self) -> None:
        alpha = self.opts["alpha"]
        self.mono = mono_index(self, self.opts["weights"]) if alpha > 0 else None
        self.cross = cross_index(self, self.opts["mode"]) if alpha < 1 else None

    def next_batch(self) -> Batch:
        if self.rng.random() < self.opts["alpha"]:
            return mono_batch(self, self.mono)
        return cross_batch(self, self.cross, self.opts["mode"])
