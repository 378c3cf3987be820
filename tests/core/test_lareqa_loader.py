"""LAReQA loading: counts from SOURCE.md, bundled == published, and one clear line per malformed file."""

from __future__ import annotations

import json
import lzma
from pathlib import Path

import numpy as np
import pytest

from xlbench.core.data.lareqa import load_lareqa
from xlbench.core.data.sources import XquadR, bundled_xquad_r
from xlbench.errors import ConfigError, DataError

XQUAD_CANDIDATES = {"ar": 1222, "de": 1276, "el": 1234, "en": 1180, "es": 1215, "hi": 1244,
                    "ru": 1219, "th": 852, "tr": 1167, "vi": 1209, "zh": 1196}


def test_bundled_xquad_r_counts_match_source_md():
    ds = XquadR().load()
    assert ds.languages == sorted(XQUAD_CANDIDATES)
    assert len(ds.query_ids) == 13090 and ds.n_candidates == 13014
    for li, lang in enumerate(ds.languages):
        assert ds.lang_offsets[li + 1] - ds.lang_offsets[li] == XQUAD_CANDIDATES[lang]
        assert (ds.query_lang == li).sum() == 1190
    assert (ds.relevant >= 0).all()  # fully parallel: 11 relevant per query


def test_bundled_copy_is_byte_identical_to_published_files(shared_lareqa):
    for xz in sorted(bundled_xquad_r().glob("*.json.xz")):
        published = shared_lareqa / "xquad-r" / xz.name[: -len(".xz")]
        assert lzma.decompress(xz.read_bytes()) == published.read_bytes(), xz.name
    assert (bundled_xquad_r() / "LICENSE").read_bytes() == (shared_lareqa / "LICENSE").read_bytes()
    assert XquadR().load().version == load_lareqa("xquad-r", shared_lareqa / "xquad-r").version


def test_mlqa_r_counts_and_partial_parallelism(shared_lareqa):
    ds = load_lareqa("mlqa-r", shared_lareqa / "mlqa-r")
    assert len(ds.query_ids) == 4199 and ds.n_candidates == 20534
    n_rel = (ds.relevant >= 0).sum(axis=1)
    assert {k: int((n_rel == k).sum()) for k in (2, 3, 4)} == {2: 130, 3: 789, 4: 3280}


def test_candidates_come_from_breaks_not_sentences(shared_lareqa):
    # xquad-r/tr.json, Victoria_(Australia) paragraph 3: `sentences` disagrees with the breaks there
    raw = json.loads((shared_lareqa / "xquad-r" / "tr.json").read_text())
    article = next(a for a in raw["data"] if a["title"] == "Victoria_(Australia)")
    para = article["paragraphs"][3]
    start, end = para["sentence_breaks"][2]
    ds = load_lareqa("xquad-r", shared_lareqa / "xquad-r", languages=["tr"], candidate_text="sentence")
    assert para["context"][start:end] in ds.cand_text
    assert para["sentences"][2] != para["context"][start:end]


def test_sentence_plus_context_is_the_default_candidate_text():
    ds = XquadR().load(languages=["en"])
    assert ds.cand_text[0].startswith("The Panthers defense gave up just 308 points")
    assert ds.cand_text[0].count("The Panthers defense gave up just 308 points") == 2


def test_languages_restrict_and_unknown_language_is_one_line():
    ds = XquadR().load(languages=["en", "de"])
    assert ds.languages == ["de", "en"] and len(ds.query_ids) == 2380
    with pytest.raises(ConfigError, match="no language xx"):
        XquadR().load(languages=["en", "xx"])


# --- malformed files -----------------------------------------------------------------------


def _write_lang(folder: Path, lang: str, doc) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{lang}.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def _good_doc():
    context = "First sentence here. Second one follows."
    return {"version": "1.1", "data": [{"title": "t", "paragraphs": [{
        "context": context, "sentence_breaks": [[0, 20], [21, 40]], "sentences": ["", ""],
        "qas": [{"id": "q1", "question": "What follows?", "answers": [{"text": "Second", "answer_start": 21}]}],
    }]}]}


def _bad_docs():
    truncated = json.dumps(_good_doc())[:-25]
    out_of_range = _good_doc()
    out_of_range["data"][0]["paragraphs"][0]["sentence_breaks"][1] = [21, 400]
    outside = _good_doc()
    outside["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] = 20  # the gap between breaks
    empty = {"version": "1.1", "data": [{"title": "t", "paragraphs": []}]}
    return {
        "truncated JSON": (truncated, r"de\.json: line 1 column \d+: invalid JSON"),
        "break out of range": (out_of_range, r"de\.json: data\[0\]\.paragraphs\[0\]\.sentence_breaks\[1\]: break \[21, 400\] out of range"),
        "answer outside any sentence": (outside, r"de\.json: data\[0\]\.paragraphs\[0\]\.qas\[0\]\.answers\[0\]\.answer_start: answer start 20 lies outside every sentence"),
        "empty language": (empty, r"de\.json: language 'de' has no questions"),
    }


@pytest.mark.parametrize("case", list(_bad_docs()))
def test_malformed_file_names_file_and_place(tmp_path, case):
    doc, pattern = _bad_docs()[case]
    _write_lang(tmp_path / "set", "en", _good_doc())
    _write_lang(tmp_path / "set", "de", doc)
    with pytest.raises(DataError, match=pattern) as info:
        load_lareqa("set", tmp_path / "set")
    assert "\n" not in str(info.value)


def test_good_synthetic_file_loads(tmp_path):
    _write_lang(tmp_path / "set", "en", _good_doc())
    ds = load_lareqa("set", tmp_path / "set", candidate_text="sentence")
    assert ds.cand_text == ["First sentence here.", "Second one follows."]
    assert ds.relevant.tolist() == [[1]]
    np.testing.assert_array_equal(ds.lang_offsets, [0, 2])
