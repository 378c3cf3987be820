"""Sampler throughput, and the share of a training step that drawing a batch costs.

Measured side by side in one run:

* batches of 100 per second for each built-in sampler on a corpus shaped like the paper's
  public analogue (87,599 SQuAD-train items in 7 languages, ~90 % of items in every language);
  target ≥ 10,000 batches/s;
* the time of one real training step (tiny BERT, batch 100, 1 CPU thread: the cheapest step
  xlbench runs, so the share is an upper bound) and the sampler's share of it; target < 1 %.

    python bench/sampler.py [--batches 20000] [--steps 5]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from xlbench.core.samplers.base import CorpusShape

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def paper_shaped_corpus(n_groups: int = 87_599, seed: int = 0) -> CorpusShape:
    langs = ["ar", "de", "en", "es", "hi", "vi", "zh"]
    has = np.random.default_rng(seed).random((n_groups, len(langs))) < 0.9
    has[:, langs.index("en")] = True  # every SQuAD item has its English original
    return CorpusShape(langs, [f"q{i}" for i in range(n_groups)], has)


def throughput(cls, corpus, n_batches: int, **options) -> float:
    sampler = cls(corpus, batch_size=100, seed=0, **options)
    it = iter(sampler)
    next(it)
    t0 = time.perf_counter()
    for _ in range(n_batches):
        next(it)
    return n_batches / (time.perf_counter() - t0)


def training_step_seconds(n_steps: int) -> float:
    import torch

    torch.set_num_threads(1)
    from xlbench.core.data.parallel import load_lareqa_training
    from xlbench.core.data.sources import bundled_xquad_r
    from xlbench.core.encoders.st import SentenceTransformerEncoder
    from xlbench.core.encoders.tiny import build_tiny_model
    from xlbench.core.samplers.builtin import HybridSampler
    from xlbench.core.train import Trainer
    from xlbench.core.train_settings import TrainSettings

    corpus = load_lareqa_training(bundled_xquad_r(), languages=["de", "en", "es"], candidate_text="sentence")
    with tempfile.TemporaryDirectory() as tmp:
        texts = [q for col in corpus.queries for q in col if q][::3] + [p for col in corpus.passages for p in col if p][::3]
        folder = build_tiny_model(Path(tmp) / "tiny", texts, max_seq_length=64)
        enc = SentenceTransformerEncoder(str(folder))
        sampler = HybridSampler(corpus, batch_size=100, seed=0)
        trainer = Trainer(enc.trainable(), corpus, sampler, TrainSettings(batch_size=100, max_steps=n_steps + 1, val_every=0, checkpoint_every=0),
                          run_dir=Path(tmp) / "run")
        batches = iter(sampler)
        trainer.step(next(batches))  # warm-up
        t0 = time.perf_counter()
        for _ in range(n_steps):
            trainer.step(next(batches))
        return (time.perf_counter() - t0) / n_steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=20_000)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    from xlbench.core.samplers.builtin import CrosslingualSampler, HybridSampler, MonolingualSampler

    corpus = paper_shaped_corpus()
    print(f"corpus: {len(corpus.group_ids):,} items × {len(corpus.languages)} languages; batches of 100")
    rates = {}
    for label, cls, opts in (("monolingual", MonolingualSampler, {}), ("monolingual weights=size", MonolingualSampler, {"weights": "size"}),
                             ("crosslingual", CrosslingualSampler, {}), ("crosslingual mode=direction", CrosslingualSampler, {"mode": "direction"}),
                             ("hybrid alpha=0.5", HybridSampler, {"alpha": 0.5})):
        rates[label] = throughput(cls, corpus, args.batches, **opts)
        print(f"  {label:28s} {rates[label]:>10,.0f} batches/s  (target ≥ 10,000)")
    step = training_step_seconds(args.steps)
    slowest = min(rates.values())
    share = (1 / slowest) / step
    print(f"training step (tiny BERT, batch 100, 1 thread): {step * 1000:.0f} ms; slowest sampler "
          f"{1e6 / slowest:.0f} µs per batch = {share:.3%} of a step  (target < 1 %)")


if __name__ == "__main__":
    main()
