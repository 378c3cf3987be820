"""The engine against a straightforward independent computation on real XQuAD-R, every cell.

The reference re-reads the published JSON itself, builds each setting's pool explicitly, sorts
every query's scores with a stable argsort and computes each metric from the sorted relevance
vector. Nothing is shared with the engine except the encoder (the deterministic hashing plugin,
whose vectors are the same bits on every machine).

Scores follow the grid rule (xlbench/core/scoring.py) from its definition, in integer arithmetic
(tests.helpers.grid_scores: no floating-point sum, no BLAS kernel). So the equality below is
exact and holds on every CPU and kernel path (CI runs it under two).
"""

from __future__ import annotations

import json
import lzma
import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from tests.helpers import grid_scores
from xlbench.core.data.sources import XquadR, bundled_xquad_r
from xlbench.core.evaluate import evaluate


def read_language(lang: str):
    doc = json.loads(lzma.decompress((bundled_xquad_r() / f"{lang}.json.xz").read_bytes()))
    candidates, answer_of, questions = [], {}, []
    for article in doc["data"]:
        for para in article["paragraphs"]:
            first = len(candidates)
            for start, end in para["sentence_breaks"]:
                candidates.append(para["context"][start:end] + " " + para["context"])
            for qa in para["qas"]:
                a = qa["answers"][0]["answer_start"]
                hit = [i for i, (s, e) in enumerate(para["sentence_breaks"]) if s <= a < e]
                answer_of[qa["id"]] = first + hit[0]
                questions.append((qa["id"], qa["question"]))
    return candidates, answer_of, questions


def metrics_from_relevance(rel_sorted: np.ndarray) -> dict[str, float]:
    """rel_sorted: 0/1 relevance of the pool in ranked order (one query)."""
    hits = np.nonzero(rel_sorted)[0] + 1
    n_rel = len(hits)
    ap = sum((i + 1) / r for i, r in enumerate(hits)) / n_rel
    dcg = sum(1 / math.log2(r + 1) for r in hits if r <= 10)
    idcg = sum(1 / math.log2(i + 2) for i in range(min(n_rel, 10)))
    return {"map": ap, "r@1": float((hits <= 1).sum()) / n_rel, "r@10": float((hits <= 10).sum()) / n_rel,
            "ndcg@10": dcg / idcg, "mrr@10": (1 / hits[0]) if hits[0] <= 10 else 0.0}


def reference_cells(encoder, languages):
    data = {lang: read_language(lang) for lang in languages}
    cand_vec = {lang: encoder.encode(data[lang][0], role="passage") for lang in languages}
    query_vec = {lang: encoder.encode([q for _, q in data[lang][2]], role="query") for lang in languages}
    pool = np.concatenate([cand_vec[lang] for lang in languages])
    pool_offset = dict(zip(languages, np.cumsum([0] + [len(cand_vec[lang]) for lang in languages])))
    cells = {}
    rank_distance = {}
    sklearn_checked = 0
    for x in languages:
        qids = [qid for qid, _ in data[x][2]]
        pool_scores = grid_scores(query_vec[x], pool)  # the grid is per vector: a block is a slice
        for y in languages + ["all"]:
            cands = pool if y == "all" else cand_vec[y]
            lo = 0 if y == "all" else pool_offset[y]
            scores = pool_scores[:, lo : lo + len(cands)]
            per_query = []
            for i, qid in enumerate(qids):
                rel = np.zeros(len(cands), dtype=int)
                if y == "all":
                    for lang in languages:
                        rel[pool_offset[lang] + data[lang][1][qid]] = 1
                else:
                    rel[data[y][1][qid]] = 1
                order = np.argsort(-scores[i], kind="stable")
                per_query.append(metrics_from_relevance(rel[order]))
                if y == "all":
                    ranks = np.nonzero(rel[order])[0] + 1
                    rank_distance.setdefault(x, []).append(ranks.max() - ranks.min())
                if len(np.unique(scores[i])) == len(scores[i]) and sklearn_checked < 200:
                    ap = average_precision_score(rel, scores[i])  # no ties: sklearn must agree
                    assert abs(ap - per_query[-1]["map"]) < 1e-9
                    sklearn_checked += 1
            setting = "multi" if y == "all" else ("mono" if x == y else "cross")
            cells[(setting, x, y)] = {m: float(np.mean([p[m] for p in per_query])) for m in per_query[0]}
    assert sklearn_checked == 200
    return cells, {x: float(np.mean(v)) for x, v in rank_distance.items()}


@pytest.mark.slow
def test_every_xquad_r_cell_matches_independent_computation(hashing_encoder):
    ds = XquadR().load()
    languages = ds.languages
    result = evaluate(ds, hashing_encoder)
    reference, rank_distance = reference_cells(hashing_encoder, languages)
    assert len(result.cells) == len(reference) == 132
    for cell in result.cells:
        ref = reference[(cell.setting, cell.query_lang, cell.corpus_lang)]
        assert cell.n_queries == 1190
        for metric, value in ref.items():
            assert cell.metrics[metric] == pytest.approx(value, abs=1e-12), (cell.setting, cell.query_lang, cell.corpus_lang, metric)
    for x in languages:
        assert result.bias["rank_distance"]["per_lang"][x] == pytest.approx(rank_distance[x], abs=1e-9)
    mono = [reference[("mono", x, x)]["map"] for x in languages]
    assert result.summary["mono"]["map"] == pytest.approx(np.mean(mono), abs=1e-12)
