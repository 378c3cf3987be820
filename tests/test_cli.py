"""The command line as a person uses it: fast help, one-line errors, JSON results, encode once."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

from tests.core.test_lareqa_loader import _bad_docs, _good_doc, _write_lang
from tests.helpers import COUNTING_ENCODER, write_plugin, xlbench


def test_help_does_not_import_torch_or_sentence_transformers():
    code = ("import sys; sys.argv=['xlbench','--help']\n"
            "from xlbench.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "heavy=[m for m in ('torch','sentence_transformers','faiss','datasets','transformers') if m in sys.modules]\n"
            "print('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in out.stdout, out.stdout[-500:]
    assert "eval" in out.stdout


@pytest.mark.parametrize("case", list(_bad_docs()))
def test_malformed_dataset_is_one_line_nonzero_and_writes_nothing(tmp_path, workspace, case):
    doc, pattern = _bad_docs()[case]
    folder = tmp_path / "broken"
    _write_lang(folder, "en", _good_doc())
    _write_lang(folder, "de", doc)
    res = xlbench("eval", "--encoder", "hashing", "--dataset", f"lareqa={folder}")
    assert res.returncode != 0
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    assert "de.json" in lines[0] and lines[0].startswith("xlbench: error:")
    db = workspace / "db" / "xlbench.sqlite"
    if db.exists():
        with sqlite3.connect(db) as conn:
            assert conn.execute("select count(*) from runs").fetchone()[0] == 0


def test_unknown_encoder_suggests_close_match():
    res = xlbench("eval", "--encoder", "hashin")
    assert res.returncode != 0
    assert "did you mean 'hashing'" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_debug_shows_traceback():
    res = xlbench("--debug", "eval", "--encoder", "nope")
    assert res.returncode != 0 and "Traceback" in res.stderr


@pytest.mark.slow
def test_json_results_shape(tmp_path):
    out = tmp_path / "res.json"
    res = xlbench("eval", "--encoder", "hashing", "-l", "en,de", "--json", str(out))
    assert res.returncode == 0, res.stderr
    data = json.loads(out.read_text())
    assert data["dataset"] == "xquad-r"
    keys = {(c["setting"], c["query_lang"], c["corpus_lang"]) for c in data["cells"]}
    assert keys == {("mono", "en", "en"), ("mono", "de", "de"), ("cross", "en", "de"), ("cross", "de", "en"),
                    ("multi", "en", "all"), ("multi", "de", "all")}
    cell = data["cells"][0]
    assert cell["n_queries"] == 1190 and set(cell["metrics"]) == {"map", "r@1", "r@10", "ndcg@10", "mrr@10"}
    assert set(data["summary"]) == {"mono", "cross", "multi"} and "map_micro" in data["summary"]["multi"]
    assert set(data["bias"]) == {"rank_distance", "max_at_r", "lang_pref", "visibility"}
    assert "family means" in res.stdout and "language bias" in res.stdout


@pytest.mark.slow
def test_each_unique_text_is_encoded_once_and_never_again(tmp_path, monkeypatch):
    plugins = tmp_path / "count-plugins"
    write_plugin(plugins, "counting.py", COUNTING_ENCODER)
    count_file = tmp_path / "count.jsonl"
    monkeypatch.setenv("COUNT_FILE", str(count_file))
    res = xlbench("--plugins-dir", str(plugins), "eval", "--encoder", "counting", "-l", "en,de,zh")
    assert res.returncode == 0, res.stderr
    seen = [tuple(json.loads(line)) for line in count_file.read_text().splitlines()]
    assert len(seen) == len(set(seen))  # no text encoded twice
    from xlbench.core.data.sources import XquadR

    ds = XquadR().load(languages=["de", "en", "zh"])
    assert {t for r, t in seen if r == "query"} == set(ds.query_text)
    assert {t for r, t in seen if r == "passage"} == set(ds.cand_text)
    # second evaluation of the same model: everything comes from the cache
    res2 = xlbench("--plugins-dir", str(plugins), "eval", "--encoder", "counting", "-l", "en,de,zh")
    assert res2.returncode == 0, res2.stderr
    assert len(count_file.read_text().splitlines()) == len(seen)
    from xlbench.store.store import Store

    second = Store().list_runs()[0]
    assert any(f"encoded 0 texts ({len(seen)} from cache) of {len(seen)} unique" in e.message for e in Store().events(second.id))


@pytest.mark.slow
def test_runs_and_plugins_listing():
    assert xlbench("eval", "--encoder", "hashing", "-l", "en").returncode == 0
    runs = xlbench("runs")
    assert runs.returncode == 0 and "finished" in runs.stdout
    plugins = xlbench("plugins")
    assert plugins.returncode == 0
    assert "sentence-transformers" in plugins.stdout and "hashing" in plugins.stdout and "xquad-r" in plugins.stdout
