"""Write a LAReQA set (XQuAD-R, MLQA-R) as BEIR folders, one per language, for `-d beir=DIR`.

Each language gets its own collection: its candidate sentences as the corpus, its questions as the
queries, and its own answer sentence as the one relevant document (grade 1). Evaluated as a BEIR
folder, the per-language numbers are LAReQA's mono setting seen through trec_eval's measures, and
the merged pool is LAReQA's multilingual pool with only the asker's language judged — so own@10
shows how far an encoder prefers its query's language. docs/datasets.md uses it.

    python scripts/lareqa_to_beir.py OUT [--dataset xquad-r] [--languages ar,de,en,zh]
                                         [--candidate-text sentence] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--dataset", default="xquad-r", help="xquad-r (bundled) or mlqa-r (with --data-dir)")
    parser.add_argument("--languages", default="ar,de,en,zh")
    parser.add_argument("--candidate-text", default="sentence", choices=["sentence", "sentence+context"])
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()

    from xlbench.config import DatasetRef, EvalConfig
    from xlbench.runs.jobs.evaluation import load_dataset, registry_for

    config = EvalConfig(datasets=[DatasetRef(name=args.dataset)], data_dir=args.data_dir,
                        languages=args.languages.split(","), candidate_text=args.candidate_text)
    ds = load_dataset(registry_for(config), config.datasets[0], config)
    if args.out.exists():
        raise SystemExit(f"{args.out} exists; choose a new folder")
    for li, lang in enumerate(ds.languages):
        folder = args.out / lang
        (folder / "qrels").mkdir(parents=True)
        lo, hi = int(ds.lang_offsets[li]), int(ds.lang_offsets[li + 1])
        with open(folder / "corpus.jsonl", "w", encoding="utf-8") as fh:
            for c in range(lo, hi):
                fh.write(json.dumps({"_id": f"c{c - lo}", "text": ds.cand_text[c]}, ensure_ascii=False) + "\n")
        with open(folder / "queries.jsonl", "w", encoding="utf-8") as q, open(folder / "qrels" / "test.tsv", "w") as t:
            t.write("query-id\tcorpus-id\tscore\n")
            for row in range(len(ds.query_ids)):
                if int(ds.query_lang[row]) != li or int(ds.relevant[row, li]) < 0:
                    continue
                qid = ds.query_ids[row]
                q.write(json.dumps({"_id": qid, "text": ds.query_text[row]}, ensure_ascii=False) + "\n")
                t.write(f"{qid}\tc{int(ds.relevant[row, li]) - lo}\t1\n")
    (args.out / "collection.json").write_text(json.dumps({"name": f"{args.dataset}-beir"}) + "\n")
    print(f"{args.out}: {', '.join(ds.languages)} ({ds.name}, candidate text {args.candidate_text})")


if __name__ == "__main__":
    main()
