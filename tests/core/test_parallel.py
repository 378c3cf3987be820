"""Parallel training corpora: every loader on local files in the published formats, validation,
and the contamination guard."""

from __future__ import annotations

import json

import pytest

from xlbench.core.data import parallel
from xlbench.errors import DataError


def test_jsonl_groups_by_id_and_validates(tmp_path):
    path = tmp_path / "pairs.jsonl"
    rows = [{"id": "a", "lang": "en", "query": "q en", "passage": "p en", "negative": "n en"},
            {"id": "a", "lang": "de", "query": "q de", "passage": "p de"},
            {"id": 7, "lang": "en", "query": "q7", "passage": "p7"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    c = parallel.load_jsonl(path)
    assert c.languages == ["de", "en"] and c.group_ids == ["7", "a"]
    assert c.has.tolist() == [[False, True], [True, True]]
    assert c.pair(1, 0, 1) == ("q de", "p en", "n en")
    assert c.sizes() == {"de": 1, "en": 2}
    path.write_text(json.dumps(rows[0]) + "\n" + json.dumps({**rows[1], "query": ""}) + "\n")
    with pytest.raises(DataError, match=r"pairs\.jsonl: line 2: 'query' must be a non-empty string"):
        parallel.load_jsonl(path)
    path.write_text(json.dumps(rows[0]) + "\n" + json.dumps(rows[0]) + "\n")
    with pytest.raises(DataError, match="line 2: item 'a' in 'en' appears twice"):
        parallel.load_jsonl(path)
    path.write_text('{"id": "a", "lang":\n')
    with pytest.raises(DataError, match=r"line 1 column \d+: invalid JSON"):
        parallel.load_jsonl(path)


def test_lareqa_training_from_mlqa_r(shared_lareqa):
    c = parallel.load_lareqa_training(shared_lareqa / "mlqa-r")
    assert c.n_groups == 1148 and c.sizes()["en"] == 1148 and c.sizes()["de"] == 512
    g = c.group_ids.index(c.group_ids[0])
    en = c.lang_index("en")
    q, p, n = c.pair(g, en, en)
    assert q and p and n is None


def test_split_holds_out_whole_groups():
    from xlbench.core.data.sources import bundled_xquad_r

    c = parallel.load_lareqa_training(bundled_xquad_r(), languages=["en", "de"], articles="0:10")
    train, val = c.split(0.2, seed=1)
    assert train.n_groups + val.n_groups == c.n_groups
    assert not set(train.group_ids) & set(val.group_ids)


def test_mlqa_translate_train_from_local_rows(tmp_path):
    def row(qid, q, ctx):
        return json.dumps({"id": qid, "title": "t", "context": ctx, "question": q, "answers": {"answer_start": [0], "text": ["x"]}})

    (tmp_path / "squad-train.jsonl").write_text(row("s1", "Who?", "Ctx one.") + "\n" + row("s2", "When?", "Ctx two.") + "\n")
    (tmp_path / "mlqa-translate-train.de.jsonl").write_text(row("s1", "Wer?", "Kontext eins.") + "\n")
    c = parallel.load_mlqa_translate_train(["en", "de"], folder=tmp_path)
    assert c.group_ids == ["s1", "s2"] and c.sizes() == {"de": 1, "en": 2}
    assert c.pair(0, c.lang_index("de"), c.lang_index("en")) == ("Wer?", "Ctx one.", None)
    with pytest.raises(Exception, match="no language fr"):
        parallel.load_mlqa_translate_train(["fr"], folder=tmp_path)


def test_mmarco_from_local_files(tmp_path):
    (tmp_path / "data" / "google" / "queries" / "train").mkdir(parents=True)
    (tmp_path / "data" / "google" / "collections").mkdir(parents=True)
    (tmp_path / "data" / "triples.train.ids.small.tsv").write_text("1\t10\t11\n1\t12\t13\n2\t20\t21\n")
    for lang, word in (("english", "hello"), ("german", "hallo")):
        (tmp_path / "data" / "google" / "queries" / "train" / f"{lang}_queries.train.tsv").write_text(f"1\t{word} q1\n2\t{word} q2\n")
        (tmp_path / "data" / "google" / "collections" / f"{lang}_collection.tsv").write_text(
            "".join(f"{pid}\t{word} passage {pid}\n" for pid in (10, 11, 12, 20, 21)))
    c = parallel.load_mmarco(tmp_path, ["english", "german"])
    assert c.group_ids == ["1", "2"]
    assert c.pair(0, c.lang_index("german"), c.lang_index("english")) == ("hallo q1", "hello passage 10", "hello passage 11")


def test_contamination_guard_counts_normalised_overlap():
    import numpy as np

    c = parallel.ParallelCorpus("t", "v", "s", ["en"], ["a", "b"], np.array([[True], [True]]),
                                [["What is  the Capital?", "Other"]], [["p", "p2"]])
    assert parallel.normalise_question("What is the capital ") == parallel.normalise_question("what is  the CAPITAL?")
    assert parallel.overlap(c, {parallel.normalise_question("what is the capital")}) == {"en": 1}
