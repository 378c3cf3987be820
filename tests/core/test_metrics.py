"""Metric functions against hand-computed cases and sklearn's average_precision_score."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score

from xlbench.core import metrics


def ranks_from_relevance(relevance_in_rank_order: list[int]) -> np.ndarray:
    return np.array([[i + 1 for i, r in enumerate(relevance_in_rank_order) if r]])


def test_average_precision_hand_computed():
    # relevant at ranks 1, 3, 6 of a ranking: AP = (1/1 + 2/3 + 3/6) / 3
    assert metrics.average_precision(np.array([[1, 3, 6]]))[0] == pytest.approx((1 + 2 / 3 + 0.5) / 3, abs=1e-12)
    # padding with 0 means "no such item": |R| = 2 here, ranks 2 and 4
    assert metrics.average_precision(np.array([[4, 0, 2]]))[0] == pytest.approx((1 / 2 + 2 / 4) / 2, abs=1e-12)
    # a single relevant item: AP = 1 / rank
    assert metrics.average_precision(np.array([[7]]))[0] == pytest.approx(1 / 7, abs=1e-12)
    # no relevant item at all: 0 (trec_eval -c semantics)
    assert metrics.average_precision(np.array([[0, 0]]))[0] == 0.0


def test_recall_ndcg_mrr_hand_computed():
    r = np.array([[2, 5, 12]])
    assert metrics.recall_at_k(r, 1)[0] == 0.0
    assert metrics.recall_at_k(r, 10)[0] == pytest.approx(2 / 3)
    assert metrics.mrr_at_k(r, 10)[0] == pytest.approx(0.5)
    assert metrics.mrr_at_k(np.array([[11]]), 10)[0] == 0.0
    dcg = 1 / math.log2(3) + 1 / math.log2(6)
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert metrics.ndcg_at_k(r, 10)[0] == pytest.approx(dcg / idcg, abs=1e-12)
    assert metrics.ndcg_at_k(np.array([[1]]), 10)[0] == pytest.approx(1.0)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=1, max_value=60).flatmap(
        lambda n: st.tuples(
            st.permutations(list(range(n))),
            st.lists(st.booleans(), min_size=n, max_size=n).filter(any),
        )
    )
)
def test_average_precision_matches_sklearn(case):
    order, relevant = case
    n = len(order)
    # distinct scores: item i gets score n - order[i], so its rank is order[i] + 1
    scores = np.array([n - order[i] for i in range(n)], dtype=np.float64)
    ranks = np.array([[order[i] + 1 for i in range(n) if relevant[i]]])
    ours = metrics.average_precision(ranks)[0]
    ref = average_precision_score(np.array(relevant, dtype=int), scores)
    assert abs(ours - ref) < 1e-9


def test_average_precision_vectorised_rows_match_single_rows():
    rng = np.random.default_rng(3)
    ranks = np.zeros((50, 6), dtype=np.int64)
    for q in range(50):
        k = rng.integers(1, 7)
        ranks[q, :k] = rng.choice(np.arange(1, 200), size=k, replace=False)
    batch = metrics.average_precision(ranks)
    for q in range(50):
        assert batch[q] == metrics.average_precision(ranks[q : q + 1])[0]


def test_trec_ndcg_cut_and_recall_hand_computed():
    # graded: retrieved grades in rank order, judged positives {3, 2, 1, 1}
    gains = [0, 3, 0, 1]
    judged = [3, 2, 1, 1, 0]
    dcg = 3 / math.log2(3) + 1 / math.log2(5)
    idcg = 3 / 1 + 2 / math.log2(3) + 1 / 2 + 1 / math.log2(5)
    assert metrics.trec_ndcg_cut(gains, judged, 10) == pytest.approx(dcg / idcg, abs=1e-12)
    assert metrics.trec_ndcg_cut(gains, judged, 1) == 0.0
    assert metrics.trec_recall(gains, 4, 100) == pytest.approx(2 / 4)
    assert metrics.trec_recall([], 3, 100) == 0.0
    assert metrics.trec_ndcg_cut([], [1], 10) == 0.0


def test_language_bias_hand_computed():
    # 2 languages; query 0 (lang 0): own answer rank 3, other rank 10; query 1 (lang 1): own 2, other 1
    pool = np.array([[3, 10], [1, 2], [5, 0]])
    qlang = np.array([0, 1, 0])
    b = metrics.language_bias(pool, qlang, 2)
    assert b["rank_distance"][0] == 7 and b["rank_distance"][1] == 1
    assert b["max_at_r"][0] == 10 and b["max_at_r"][1] == 2
    assert b["lang_pref"][0] == 1.0 and b["lang_pref"][1] == 0.0
    assert np.isnan(b["rank_distance"][2])  # |R| = 1: undefined
    vis = metrics.visibility(pool, qlang, 2)
    assert vis[0] == pytest.approx(1.0)  # lang-0 answers seen from lang-1 queries: rank 1
    assert vis[1] == pytest.approx(10.0)  # lang-1 answers from lang-0 queries that have one: rank 10
