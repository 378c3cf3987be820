"""MIRACL: loaders validate, and nDCG@10 / Recall@100 equal trec_eval (-c -M 100) on a synthetic
set full of exact ties (checked against pytrec_eval, i.e. trec_eval's own code)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from xlbench.core.data.miracl import load_miracl
from xlbench.core.evaluate import evaluate
from xlbench.core.index import TopK
from xlbench.errors import DataError

WORDS = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "theta"]


class LetterCounts:
    """Small-integer vectors (word counts): every dot product is exact, ties are everywhere."""

    kind, name = "encoder", "letter-counts"

    def encode(self, texts, *, role):
        return np.array([[t.split().count(w) for w in WORDS] for t in texts], dtype=np.float32)


def make_miracl(root: Path, lang: str, n_docs: int, n_queries: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    corpus_dir = root / f"miracl-corpus-v1.0-{lang}"
    corpus_dir.mkdir(parents=True)
    docids = [f"{i // 3}#{i % 3}" for i in range(n_docs)]
    for shard in range(2):
        with gzip.open(corpus_dir / f"docs-{shard}.jsonl.gz", "wt", encoding="utf-8") as fh:
            for i in range(shard, n_docs, 2):
                words = rng.choice(WORDS, size=rng.integers(1, 4))
                fh.write(json.dumps({"docid": docids[i], "title": str(words[0]), "text": " ".join(words[1:])}) + "\n")
    topics = root / f"miracl-v1.0-{lang}" / "topics"
    qrels = root / f"miracl-v1.0-{lang}" / "qrels"
    topics.mkdir(parents=True)
    qrels.mkdir(parents=True)
    with open(topics / f"topics.miracl-v1.0-{lang}-dev.tsv", "w") as t, open(qrels / f"qrels.miracl-v1.0-{lang}-dev.tsv", "w") as q:
        for n in range(n_queries):
            qid = f"{lang}{n}"
            if n != 0:  # query 0 is judged but has no topic: trec_eval -c counts it as 0
                t.write(f"{qid}\t{' '.join(rng.choice(WORDS, size=2))}\n")
            for d in rng.choice(n_docs, size=rng.integers(1, 6), replace=False):
                q.write(f"{qid} Q0 {docids[d]} {int(rng.integers(0, 3))}\n")
        t.write(f"{lang}999\tunjudged query alpha\n")  # in topics, absent from qrels: ignored


@pytest.fixture
def miracl_dir(tmp_path):
    root = tmp_path / "miracl"
    make_miracl(root, "sw", n_docs=400, n_queries=25, seed=1)
    make_miracl(root, "te", n_docs=150, n_queries=12, seed=2)
    return root


def trec_reference(folder: Path, lang: str, encoder) -> dict[str, float]:
    import pytrec_eval

    corpus = []
    for f in sorted((folder / f"miracl-corpus-v1.0-{lang}").glob("docs-*.jsonl.gz")):
        with gzip.open(f, "rt") as fh:
            corpus += [json.loads(line) for line in fh]
    docs = encoder.encode([f"{d['title']} {d['text']}" for d in corpus], role="passage")
    topics = dict(line.rstrip("\n").split("\t") for line in open(next(folder.rglob(f"topics.*-{lang}-dev.tsv"))))
    qrels: dict[str, dict[str, int]] = {}
    for line in open(next(folder.rglob(f"qrels.*-{lang}-dev.tsv"))):
        qid, _, docid, rel = line.split()
        qrels.setdefault(qid, {})[docid] = int(rel)
    run = {}
    for qid in qrels:
        if qid in topics:
            scores = docs @ encoder.encode([topics[qid]], role="query")[0]
            run[qid] = {d["docid"]: float(s) for d, s in zip(corpus, scores)}  # full ranking: -M 100 changes neither measure
    res = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100"}).evaluate(run)
    # -c: every judged query counts, a query with no results scores 0
    return {"ndcg@10": sum(res.get(q, {}).get("ndcg_cut_10", 0.0) for q in qrels) / len(qrels),
            "r@100": sum(res.get(q, {}).get("recall_100", 0.0) for q in qrels) / len(qrels)}


@pytest.mark.parametrize("search_chunk", [65536, 37])
def test_matches_trec_eval_with_ties(miracl_dir, search_chunk):
    from xlbench.core.evaluate import evaluate_miracl

    ds = load_miracl(miracl_dir)
    assert ds.languages == ["sw", "te"]
    enc = LetterCounts()
    result = evaluate_miracl(ds, enc, search_chunk=search_chunk)
    for cell in result.cells:
        ref = trec_reference(miracl_dir, cell.query_lang, enc)
        assert cell.n_queries == len(ds.per_lang[cell.query_lang].qrels)
        for metric in ("ndcg@10", "r@100"):
            assert cell.metrics[metric] == pytest.approx(ref[metric], abs=1e-12), (cell.query_lang, metric)
    assert result.summary["mono"]["ndcg@10"] == pytest.approx(np.mean([c.metrics["ndcg@10"] for c in result.cells]))


def test_cached_rerun_and_an_interrupted_one_give_the_same_numbers(miracl_dir, tmp_path):
    from xlbench.core.encoders.cache import EmbeddingCache
    from xlbench.core.evaluate import evaluate_miracl
    from xlbench.core.progress import Reporter

    class StopAfter(Reporter):
        def advance(self, done, total=None):
            if done >= 200:
                raise KeyboardInterrupt

    ds = load_miracl(miracl_dir)
    enc = LetterCounts()
    clean = evaluate_miracl(ds, enc, search_chunk=64)
    cache = EmbeddingCache(tmp_path, "letters")
    with pytest.raises(KeyboardInterrupt):
        evaluate_miracl(ds, enc, cache=cache, search_chunk=64, reporter=StopAfter())
    done = sorted((tmp_path / "letters" / "chunks").glob("*.sum.json"))
    assert 0 < len(done) < 10  # the chunks finished before the interruption are kept
    resumed = evaluate_miracl(ds, enc, cache=EmbeddingCache(tmp_path, "letters"), search_chunk=64)
    again = evaluate_miracl(ds, enc, cache=EmbeddingCache(tmp_path, "letters"), search_chunk=64)
    assert resumed.info["encode"]["from_cache"] > 0 and again.info["encode"]["encoded"] == 0
    for r in (resumed, again):
        assert [c.metrics for c in r.cells] == [c.metrics for c in clean.cells]
        assert r.payload == clean.payload


def test_malformed_corpus_line_is_named(miracl_dir):
    bad = miracl_dir / "miracl-corpus-v1.0-te" / "docs-1.jsonl.gz"
    with gzip.open(bad, "at") as fh:
        fh.write('{"docid": "x", "title": "t", "text": \n')
    ds = load_miracl(miracl_dir, languages=["te"])
    with pytest.raises(DataError, match=r"docs-1\.jsonl\.gz: line \d+ column \d+: invalid JSON"):
        evaluate(ds, LetterCounts())


def test_malformed_qrels_and_missing_files(miracl_dir):
    qrels = next(miracl_dir.rglob("qrels.miracl-v1.0-sw-dev.tsv"))
    qrels.write_text(qrels.read_text() + "sw1 Q0 onlythree\n")
    with pytest.raises(DataError, match=r"qrels\.miracl-v1\.0-sw-dev\.tsv: line \d+: expected 'qid Q0 docid rel'"):
        load_miracl(miracl_dir, languages=["sw"])
    with pytest.raises(DataError, match="holds no topics"):
        load_miracl(miracl_dir, split="test-b")


def test_topk_keeps_every_tie_of_the_kth_score_across_chunks():
    rng = np.random.default_rng(5)
    corpus = rng.integers(0, 3, size=(700, 3)).astype(np.float32)
    queries = rng.integers(0, 3, size=(40, 3)).astype(np.float32)
    top = TopK(queries, k=20, margin=4)
    for a in range(0, 700, 53):
        top.add(corpus[a : a + 53])
    full = queries @ corpus.T
    for r in range(40):
        kth = np.sort(full[r])[::-1][19]
        scores, ids = top.candidates(r)
        assert set(np.nonzero(full[r] >= kth)[0]) <= set(ids.tolist())
        np.testing.assert_array_equal(scores, full[r, ids])
