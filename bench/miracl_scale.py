"""MIRACL-size evaluation: time per million passages and peak memory against corpus size, side by
side with a plain streaming baseline, in one run.

For each size (default 1M, 2M, 5M, 10M passages) it writes a MIRACL-layout corpus on the fly (one
language, 4 gzip shards, 300 judged topics; deterministic text), then runs, each in a fresh process:

* ``xlbench eval -d miracl=DIR`` with a fast hashing encoder plugin (``bench/plugins/fast_hash.py``),
  1 thread, embedding cache on (a fresh workspace, so every chunk is encoded and cached);
* the baseline: a plain script that streams the same files through the same encoder, keeps a
  running exact top-200 per query with numpy and the list of docids (no cache, no validation),
  and hands the top lists to pytrec_eval.

It prints seconds per million passages and peak RSS for both, the ratios that matter (10M vs 1M;
xlbench vs baseline), and checks that both give the same nDCG@10 and R@100.

    python bench/miracl_scale.py                   # 1M, 2M, 5M, 10M (about 30 minutes on 2 cores)
    python bench/miracl_scale.py --sizes 0.2,0.5   # a quick look (millions of passages)
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
LANG = "xx"
TOPICS = 300
SHARDS = 4

BASELINE = r'''
import gzip, json, sys, time
from pathlib import Path
import numpy as np
sys.path.insert(0, sys.argv[2])
from fast_hash import FastHashEncoder
import pytrec_eval

root, lang = Path(sys.argv[1]), "xx"
enc = FastHashEncoder()
topics = [l.rstrip("\n").split("\t") for l in open(next(root.rglob("topics.*-dev.tsv")), encoding="utf-8")]
qrels = {}
for line in open(next(root.rglob("qrels.*-dev.tsv")), encoding="utf-8"):
    qid, _, docid, rel = line.split()
    qrels.setdefault(qid, {})[docid] = int(rel)
q = enc.encode([t for _, t in topics], role="query")
K = 200  # top-100 plus room for ties at the cut (trec_eval then orders by score, docid)
best_s = np.full((len(q), 0), -np.inf, dtype=np.float32)
best_i = np.zeros((len(q), 0), dtype=np.int64)
docids, texts = [], []

def flush():
    global best_s, best_i, texts
    first = len(docids) - len(texts)
    s = q @ enc.encode(texts, role="passage").T            # (queries, chunk)
    s_all = np.concatenate([best_s, s], axis=1)
    i_all = np.concatenate([best_i, np.broadcast_to(np.arange(first, len(docids)), s.shape)], axis=1)
    keep = np.argpartition(-s_all, min(K, s_all.shape[1]) - 1, axis=1)[:, :K]
    best_s, best_i = np.take_along_axis(s_all, keep, 1), np.take_along_axis(i_all, keep, 1)
    texts = []

for f in sorted((root / f"miracl-corpus-v1.0-{lang}").glob("docs-*.jsonl.gz")):
    with gzip.open(f, "rt", encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            docids.append(d["docid"]); texts.append(f"{d['title']} {d['text']}" if d.get("title") else d["text"])
            if len(texts) >= 65536:
                flush()
if texts:
    flush()
run = {qid: {docids[j]: float(s) for j, s in zip(best_i[i], best_s[i])} for i, (qid, _) in enumerate(topics)}
res = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100"}).evaluate(run)
print(json.dumps({"ndcg@10": sum(res.get(k, {}).get("ndcg_cut_10", 0.0) for k in qrels) / len(qrels),
                  "r@100": sum(res.get(k, {}).get("recall_100", 0.0) for k in qrels) / len(qrels)}))
'''


def build_corpus(root: Path, n: int) -> None:
    """MIRACL layout: topics, qrels (3 judged passages per topic, the topic's own text), 4 shards."""
    corpus = root / f"miracl-corpus-v1.0-{LANG}"
    corpus.mkdir(parents=True)
    judged = {}  # passage index -> (topic, k); k = 0 is the topic's own text, so it ranks first
    for t in range(TOPICS):
        for k in range(3):
            judged[(t * 7919 + k * 104729) % n] = (t, k)
    handles = [gzip.open(corpus / f"docs-{s}.jsonl.gz", "wt", encoding="utf-8", compresslevel=1) for s in range(SHARDS)]
    per = -(-n // SHARDS)
    for i in range(n):
        t, k = judged.get(i, (None, None))
        text = f"what is topic {t}" if t is not None else f"passage {i} on subject {i % 9973} in part {i % 101}"
        title = "doc 0" if k == 0 else f"doc {i // 7}"
        handles[i // per].write(json.dumps({"docid": f"{i}#0", "title": title, "text": text}) + "\n")
    for h in handles:
        h.close()
    base = root / f"miracl-v1.0-{LANG}"
    (base / "topics").mkdir(parents=True)
    (base / "qrels").mkdir(parents=True)
    with open(base / "topics" / f"topics.miracl-v1.0-{LANG}-dev.tsv", "w", encoding="utf-8") as fh:
        for t in range(TOPICS):
            fh.write(f"{LANG}{t}\tdoc 0 what is topic {t}\n")
    with open(base / "qrels" / f"qrels.miracl-v1.0-{LANG}-dev.tsv", "w", encoding="utf-8") as fh:
        for i, (t, k) in sorted(judged.items()):
            fh.write(f"{LANG}{t} Q0 {i}#0 {2 if k == 0 else 1}\n")


def measured(cmd: list[str], env: dict, cwd: Path) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB) and stdout of a fresh process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate()
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])}… failed:\n{err[-3000:]}")
    return seconds, _peak_mb(err), out


def _peak_mb(stderr: str) -> float:
    for line in stderr.splitlines():
        if line.startswith("PEAK_RSS_KB "):
            return int(line.split()[1]) / 1024
    return float("nan")


PEAK = "import atexit, resource, sys; atexit.register(lambda: print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr))"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,2,5,10", help="corpus sizes in millions of passages")
    parser.add_argument("--keep", type=Path, help="build corpora here and keep them (default: a temporary folder)")
    args = parser.parse_args()
    sizes = [float(x) for x in args.sizes.split(",")]
    work = args.keep or Path(tempfile.mkdtemp(prefix="miracl-scale-"))
    rows = []
    try:
        for size in sizes:
            n = int(size * 1_000_000)
            root = work / f"corpus-{n}"
            if not root.exists():
                t0 = time.perf_counter()
                build_corpus(root, n)
                print(f"built a {n:,}-passage corpus in {time.perf_counter() - t0:.0f} s", flush=True)
            home = work / f"ws-{n}"
            shutil.rmtree(home, ignore_errors=True)
            home.mkdir()
            env = {**os.environ, "XLBENCH_HOME": str(home), "OMP_NUM_THREADS": "1"}
            xl = [sys.executable, "-c", f"{PEAK}; import sys; sys.argv = ['xlbench'] + sys.argv[1:]; "
                  "from xlbench.cli import main; main()",
                  "--plugins-dir", str(HERE / "plugins"), "eval", "--encoder", "fast-hash", "-d", f"miracl={root}",
                  "--languages", LANG, "--threads", "1", "--json", str(home / "out.json")]
            t_x, rss_x, _ = measured(xl, env, home)
            got = json.loads((home / "out.json").read_text())["summary"]["mono"]
            t_b, rss_b, out = measured([sys.executable, "-c", PEAK + "\n" + BASELINE, str(root), str(HERE / "plugins")],
                                       env, home)
            ref = json.loads(out.strip().splitlines()[-1])
            same = abs(got["ndcg@10"] - ref["ndcg@10"]) < 1e-12 and abs(got["r@100"] - ref["r@100"]) < 1e-12
            rows.append((n, t_x, rss_x, t_b, rss_b, got, ref, same))
            print(f"{n:>11,} passages: xlbench {t_x / size:6.1f} s/M, peak {rss_x:6.0f} MB | baseline {t_b / size:6.1f} s/M, "
                  f"peak {rss_b:6.0f} MB | nDCG@10 {got['ndcg@10']:.4f} R@100 {got['r@100']:.4f} "
                  f"{'= baseline' if same else f'≠ baseline {ref}'}", flush=True)
            shutil.rmtree(home, ignore_errors=True)
            if not args.keep:
                shutil.rmtree(root, ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if len(rows) > 1:
        (n0, t0, r0, *_), (n1, t1, r1, tb1, *_) = rows[0], rows[-1]
        m0, m1 = n0 / 1e6, n1 / 1e6
        print(f"time per million at {m1:g}M ÷ at {m0:g}M: {t1 / m1 / (t0 / m0):.2f} (target ≤ 1.2); "
              f"peak RSS at {m1:g}M ÷ at {m0:g}M: {r1 / r0:.2f} (target ≤ 1.5); "
              f"xlbench ÷ baseline at {m1:g}M: {t1 / tb1:.2f} (target ≤ 1.0)")
    if not all(r[-1] for r in rows):
        raise SystemExit("metrics differ from the baseline")


if __name__ == "__main__":
    main()
