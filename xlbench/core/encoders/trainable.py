"""The trainable side of the encoder contract.

An encoder that can be fine-tuned adds ``trainable() -> TrainableEncoder`` to the encoder contract
(eval-only encoders simply lack it). The trainer needs only this:

* ``module``: the ``torch.nn.Module`` whose parameters are optimised (under torchrun the trainer
  averages its gradients across ranks itself, so no wrapper is involved);
* ``features(texts, role)``: tokenised inputs (CPU tensors), prompts applied as ``encode`` would;
  with a 2-D ``attention_mask`` among them, the trainer may split a batch's texts into groups of
  similar length (``train.length_buckets``) and reports model FLOPs;
* ``embed(features)``: embeddings with gradients, exactly as ``encode`` computes them;
* ``save(folder)``: a folder that the same encoder loads again (and ``describe()`` can label).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable


@runtime_checkable
class TrainableEncoder(Protocol):
    module: object

    def features(self, texts: list[str], role: str) -> dict: ...

    def embed(self, features: dict): ...

    def save(self, folder: Path) -> None: ...


class SentenceTransformerTrainable:
    """Adapter over a loaded ``SentenceTransformer`` and the prompts its encoder uses."""

    def __init__(self, model, prompts: dict[str, str | None]) -> None:
        self.module = model
        self.prompts = prompts

    def features(self, texts: list[str], role: str) -> dict:
        return self.module.preprocess(texts, prompt=self.prompts.get(role) or None)

    def embed(self, features: dict):
        from xlbench.core.batching import to_device

        return self.module(to_device(features, next(self.module.parameters()).device))["sentence_embedding"]

    def save(self, folder: Path) -> None:
        self.module.save(str(folder))
