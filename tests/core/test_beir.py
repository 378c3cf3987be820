"""BEIR-format folders: per language equal to trec_eval (pytrec_eval) exactly, the merged pool equal
to trec_eval on the pooled run, the pool's bias ranks equal to a brute-force ranking, and every kind
of bad input one line naming the file and the line."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from xlbench.core.data.beir import load_beir
from xlbench.core.evaluate import evaluate
from xlbench.errors import ConfigError, DataError

WORDS = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "theta"]


class LetterCounts:
    """Small-integer vectors (word counts): every dot product is exact, ties are everywhere."""

    kind, name = "encoder", "letter-counts"

    def encode(self, texts, *, role):
        return np.array([[t.split().count(w) for w in WORDS] for t in texts], dtype=np.float32)


def make_beir(root: Path, n_docs: int, n_queries: int, seed: int, *, gz: bool = False) -> None:
    """One language: graded qrels (0–2) with ties everywhere, a judged query with no relevant
    document, a query outside the split, a header line, and (with ``gz``) a gzipped corpus."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    (root / "qrels").mkdir()
    opener = gzip.open if gz else open
    with opener(root / ("corpus.jsonl.gz" if gz else "corpus.jsonl"), "wt", encoding="utf-8") as fh:
        for i in range(n_docs):
            words = rng.choice(WORDS, size=rng.integers(1, 4))
            fh.write(json.dumps({"_id": f"d{i}", "title": str(words[0]), "text": " ".join(words[1:])}) + "\n")
    with open(root / "queries.jsonl", "w") as q, open(root / "qrels" / "test.tsv", "w") as t:
        t.write("query-id\tcorpus-id\tscore\n")
        for n in range(n_queries):
            qid = f"q{n}"
            q.write(json.dumps({"_id": qid, "text": " ".join(rng.choice(WORDS, size=2))}) + "\n")
            docs = rng.choice(n_docs, size=rng.integers(1, 6), replace=False)
            for d in docs:
                grade = 0 if n == 1 else int(rng.integers(0, 3))  # q1: judged, nothing relevant
                t.write(f"{qid}\td{d}\t{grade}\n")
        q.write(json.dumps({"_id": "unjudged", "text": "alpha beta"}) + "\n")


def make_collection(root: Path, sizes: list[tuple[int, int]], first_seed: int) -> Path:
    """Per-language folders de, sw (its corpus gzipped) and te, of (documents, queries) each."""
    for k, (lang, (n_docs, n_queries)) in enumerate(zip(("de", "sw", "te"), sizes)):
        make_beir(root / lang, n_docs=n_docs, n_queries=n_queries, seed=first_seed + k, gz=lang == "sw")
    return root


@pytest.fixture
def beir_dir(tmp_path):
    return make_collection(tmp_path / "collection", [(300, 20), (120, 12), (200, 15)], first_seed=1)


def _read(path: Path) -> list[dict]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _collection(folder: Path, prefix: str = ""):
    corpus_file = next(p for p in (folder / "corpus.jsonl", folder / "corpus.jsonl.gz") if p.exists())
    corpus = {prefix + d["_id"]: f"{d['title']} {d['text']}" if d.get("title") else d["text"] for d in _read(corpus_file)}
    queries = {d["_id"]: d["text"] for d in _read(folder / "queries.jsonl")}
    qrels: dict[str, dict[str, int]] = {}
    for line in (folder / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        qid, docid, grade = line.split("\t")
        qrels.setdefault(qid, {})[prefix + docid] = int(grade)
    return corpus, queries, qrels


def trec_reference(corpus: dict[str, str], queries: dict[str, str], qrels: dict, encoder) -> dict[str, float]:
    """trec_eval -c -M 100 through pytrec_eval: every judged query counts; MRR@10 is recip_rank
    on the full ranking, kept when the first relevant document is within the top 10."""
    import pytrec_eval

    ids = list(corpus)
    docs = encoder.encode([corpus[d] for d in ids], role="passage")
    run = {}
    for qid in qrels:
        scores = docs @ encoder.encode([queries[qid]], role="query")[0]
        run[qid] = {d: float(s) for d, s in zip(ids, scores)}  # a full ranking: -M 100 changes neither ndcg_cut.10 nor recall.100
    res = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100", "recip_rank"}).evaluate(run)
    mrr10 = [res[q]["recip_rank"] if res[q]["recip_rank"] >= 0.1 else 0.0 for q in qrels]
    return {"ndcg@10": float(np.mean([res[q]["ndcg_cut_10"] for q in qrels])),
            "r@100": float(np.mean([res[q]["recall_100"] for q in qrels])), "mrr@10": float(np.mean(mrr10))}


@pytest.mark.parametrize("search_chunk", [65536, 37])
def test_per_language_and_merged_pool_equal_trec_eval(beir_dir, search_chunk):
    from xlbench.core.evaluate import evaluate_collection

    ds = load_beir(beir_dir)
    assert ds.languages == ["de", "sw", "te"] and ds.merged and ds.kind == "beir"
    assert len(ds.per_lang["de"].query_ids) == 20  # the unjudged query is not evaluated
    enc = LetterCounts()
    result = evaluate_collection(ds, enc, search_chunk=search_chunk)
    cells = {(c.setting, c.query_lang): c for c in result.cells}
    pooled_corpus: dict[str, str] = {}
    for lang in ds.languages:
        corpus, _, _ = _collection(beir_dir / lang, f"{lang}:")
        pooled_corpus.update(corpus)
    for lang in ds.languages:
        corpus, queries, qrels = _collection(beir_dir / lang)
        mono = trec_reference(corpus, queries, qrels, enc)
        _, _, pooled_qrels = _collection(beir_dir / lang, f"{lang}:")
        multi = trec_reference(pooled_corpus, queries, pooled_qrels, enc)
        for metric in ("ndcg@10", "r@100", "mrr@10"):
            assert cells["mono", lang].metrics[metric] == pytest.approx(mono[metric], abs=1e-12), (lang, metric)
            assert cells["multi", lang].metrics[metric] == pytest.approx(multi[metric], abs=1e-12), (lang, metric)
        assert cells["mono", lang].n_queries == len(qrels)
    assert result.summary["multi"]["ndcg@10"] == pytest.approx(np.mean([cells["multi", lang].metrics["ndcg@10"] for lang in ds.languages]))


def brute_force_bias(beir_dir: Path, languages: list[str], encoder) -> dict[str, dict[str, float]]:
    """Rank distance, Max@R and own@10 per query language from a full sort of the pooled corpus
    (score descending, then pooled id descending, as trec_eval orders ties)."""
    pooled: dict[str, str] = {}
    for lang in languages:
        pooled.update(_collection(beir_dir / lang, f"{lang}:")[0])
    ids = list(pooled)
    docs = encoder.encode([pooled[d] for d in ids], role="passage").astype(np.float64)
    out: dict[str, dict[str, float]] = {"rank_distance": {}, "max_at_r": {}, "own@10": {}}
    for lang in languages:
        _, queries, qrels = _collection(beir_dir / lang, f"{lang}:")
        rd, mr, own = [], [], []
        for qid, judged in qrels.items():
            scores = docs @ encoder.encode([queries[qid]], role="query")[0].astype(np.float64)
            order = sorted(range(len(ids)), key=lambda i: (-scores[i], _desc(ids[i])))
            rank = {ids[i]: r + 1 for r, i in enumerate(order)}
            own.append(np.mean([ids[i].startswith(f"{lang}:") for i in order[:10]]))
            relevant = [rank[d] for d, g in judged.items() if g > 0]
            if len(relevant) >= 2:
                rd.append(max(relevant) - min(relevant))
                mr.append(max(relevant))
        out["own@10"][lang] = float(np.mean(own))
        if rd:
            out["rank_distance"][lang] = float(np.mean(rd))
            out["max_at_r"][lang] = float(np.mean(mr))
    return out


class _desc(str):
    """Sorts strings descending inside an ascending sort key."""

    def __lt__(self, other):
        return str.__gt__(self, other)


@pytest.mark.parametrize("search_chunk", [65536, 41])
def test_merged_pool_bias_equals_a_full_sort(beir_dir, search_chunk):
    from xlbench.core.evaluate import evaluate_collection

    ds = load_beir(beir_dir)
    result = evaluate_collection(ds, LetterCounts(), search_chunk=search_chunk)
    want = brute_force_bias(beir_dir, ds.languages, LetterCounts())
    for metric, per_lang in want.items():
        assert set(result.bias[metric]["per_lang"]) == set(per_lang)
        for lang, value in per_lang.items():
            assert result.bias[metric]["per_lang"][lang] == pytest.approx(value, abs=1e-12), (metric, lang)
        assert result.bias[metric]["macro"] == pytest.approx(np.mean(list(per_lang.values())))


def test_cached_second_pass_encodes_nothing_more(beir_dir, tmp_path):
    """The merged pool's rank pass reads the chunk vectors back from the cache: each passage is
    encoded once, and a second evaluation encodes nothing."""
    from xlbench.core.encoders.cache import EmbeddingCache
    from xlbench.core.evaluate import evaluate_collection

    class Counting(LetterCounts):
        passages = 0

        def encode(self, texts, *, role):
            if role == "passage":
                Counting.passages += len(texts)
            return super().encode(texts, role=role)

    unmerged = load_beir(beir_dir, merge=False)
    evaluate_collection(unmerged, Counting(), cache=EmbeddingCache(tmp_path / "u", "counts"))
    once, Counting.passages = Counting.passages, 0
    assert once > 0
    ds = load_beir(beir_dir)
    first = evaluate_collection(ds, Counting(), cache=EmbeddingCache(tmp_path / "c", "counts"))
    assert Counting.passages == once
    again = evaluate_collection(ds, Counting(), cache=EmbeddingCache(tmp_path / "c", "counts"))
    assert Counting.passages == once
    assert [c.metrics for c in first.cells] == [c.metrics for c in again.cells] and first.bias == again.bias


def test_single_collection_and_opt_out_of_the_merged_pool(beir_dir):
    one = load_beir(beir_dir / "de")
    assert one.languages == ["und"] and not one.merged
    (beir_dir / "collection.json").write_text(json.dumps({"name": "tri", "merge": False}))
    ds = load_beir(beir_dir)
    assert ds.name == "tri" and not ds.merged
    result = evaluate(ds, LetterCounts())
    assert {c.setting for c in result.cells} == {"mono"} and result.bias == {}
    assert load_beir(beir_dir, languages=["te", "de"]).languages == ["de", "te"]
    with pytest.raises(ConfigError, match="has no language xx"):
        load_beir(beir_dir, languages=["xx"])


def _bad(beir_dir: Path, match: str) -> None:
    with pytest.raises(DataError, match=match) as info:
        load_beir(beir_dir)
    assert "\n" not in str(info.value)


def _append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)


def test_missing_qrels_names_the_file_and_the_splits_there(beir_dir):
    (beir_dir / "te" / "qrels" / "test.tsv").rename(beir_dir / "te" / "qrels" / "dev.tsv")
    _bad(beir_dir, r"te/qrels/test\.tsv: no qrels for split 'test' \(splits here: dev; choose one with --split\)")
    assert load_beir(beir_dir, languages=["te"], split="dev").languages == ["te"]


@pytest.mark.parametrize("row, match", [
    ("q0\tnope\t1\n", r"de/qrels/test\.tsv: line {line}: names document 'nope', which corpus\.jsonl does not hold"),
    ("ghost\td1\t1\n", r"de/qrels/test\.tsv: line {line}: names query 'ghost', which queries\.jsonl does not hold"),
    ("q0\td1\tvery\n", r"de/qrels/test\.tsv: line {line}: grade 'very' is not an integer"),
    ("q0\td1\n", r"de/qrels/test\.tsv: line {line}: expected 'query-id<TAB>corpus-id<TAB>grade'"),
    ("q0\td1\t1\nq0\td1\t2\n", r"de/qrels/test\.tsv: line {line}: query 'q0' judges document 'd1' twice"),
])
def test_bad_qrels_rows(beir_dir, row, match):
    qrels = beir_dir / "de" / "qrels" / "test.tsv"
    _append(qrels, row)
    _bad(beir_dir, match.format(line=len(qrels.read_text().splitlines())))


def test_duplicates_and_malformed_jsonl(beir_dir):
    corpus = beir_dir / "de" / "corpus.jsonl"
    saved = corpus.read_bytes()
    _append(corpus, json.dumps({"_id": "d7", "text": "again"}) + "\n")
    _bad(beir_dir, r"de/corpus\.jsonl: line 301: document id 'd7' appears twice \(first on line 8\)")
    corpus.write_bytes(saved + b'{"_id": "x", "text": "broken\n')
    _bad(beir_dir, r"de/corpus\.jsonl: line 301 column \d+: invalid JSON")
    corpus.write_bytes(saved + b'{"_id": "x", "text": "caf\xe9"}\n')
    _bad(beir_dir, r"de/corpus\.jsonl: line 301 column 26: not UTF-8 text \(byte 0xe9\)")
    corpus.write_bytes(saved + b'{"_id": 7, "text": "a"}\n')
    _bad(beir_dir, r'de/corpus\.jsonl: line 301: expected a non-empty string "_id"')
    corpus.write_bytes(saved)
    queries = beir_dir / "sw" / "queries.jsonl"
    _append(queries, json.dumps({"_id": "q3", "text": "beta"}) + "\n")
    _bad(beir_dir, r"sw/queries\.jsonl: line 14: query id 'q3' appears twice \(first on line 4\)")


def test_empty_split_language_without_queries_and_not_a_collection(beir_dir, tmp_path):
    (beir_dir / "te" / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n")
    _bad(beir_dir, r"te/qrels/test\.tsv: no judgements: the split is empty")
    (beir_dir / "te" / "queries.jsonl").unlink()
    _bad(beir_dir, r"te: a collection folder without queries\.jsonl")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="not a BEIR folder"):
        load_beir(tmp_path / "empty")
    (beir_dir / "collection.json").write_text('{"merge": "yes"}')
    with pytest.raises(DataError, match=r"collection\.json: merge: expected a bool"):
        load_beir(beir_dir)


def test_a_hash_collision_is_not_a_duplicate(beir_dir, monkeypatch):
    from xlbench.core.data import beir

    monkeypatch.setattr(beir, "_id_hash", lambda docid: 42)  # every id collides
    ds = beir.load_beir(beir_dir, languages=["sw"])
    assert ds.per_lang["sw"].documents == 120


def test_an_interrupted_evaluation_resumes_from_its_finished_chunks(beir_dir, tmp_path):
    """Ctrl-C in the middle of a merged-pool evaluation: the chunks finished before it stay cached,
    the next run encodes only the rest, and every number (pool ranks included) is the same."""
    from xlbench.core.encoders.cache import EmbeddingCache
    from xlbench.core.evaluate import evaluate_collection
    from xlbench.core.progress import Reporter

    class StopAfter(Reporter):
        def advance(self, done, total=None):
            if done >= 150:
                raise KeyboardInterrupt

    ds = load_beir(beir_dir)
    clean = evaluate_collection(ds, LetterCounts(), search_chunk=40)
    with pytest.raises(KeyboardInterrupt):
        evaluate_collection(ds, LetterCounts(), cache=EmbeddingCache(tmp_path, "letters"), search_chunk=40,
                            reporter=StopAfter())
    assert sorted((tmp_path / "letters" / "chunks").glob("*.sum.json"))  # finished chunks kept
    resumed = evaluate_collection(ds, LetterCounts(), cache=EmbeddingCache(tmp_path, "letters"), search_chunk=40)
    assert resumed.info["encode"]["from_cache"] > 0
    assert [c.metrics for c in resumed.cells] == [c.metrics for c in clean.cells] and resumed.bias == clean.bias
