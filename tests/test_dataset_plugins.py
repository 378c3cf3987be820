"""Evaluation datasets as plugins, through the CLI: a BEIR folder evaluated with `xlbench eval -d
beir=DIR` equals pytrec_eval exactly; bad collections are one line with nothing stored; the example
plugin in plugins/ (another layout) is listed, checked and evaluated from the plugins folder."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.core.test_beir import WORDS, _collection, make_collection, trec_reference
from tests.helpers import write_plugin, xlbench

LETTER_COUNTS = f'''
import numpy as np

WORDS = {WORDS!r}


class LetterCounts:
    kind = "encoder"
    name = "letter-counts"

    def encode(self, texts, *, role):
        return np.array([[t.split().count(w) for w in WORDS] for t in texts], dtype=np.float32)
'''


@pytest.fixture
def collection(tmp_path):
    return make_collection(tmp_path / "tri", [(150, 12), (90, 9), (110, 10)], first_seed=4)


def _runs(workspace: Path) -> int:
    db = workspace / "db" / "xlbench.sqlite"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        return conn.execute("select count(*) from runs").fetchone()[0]


def test_eval_beir_folder_equals_pytrec_eval(tmp_path, workspace, collection):
    plugins = tmp_path / "enc"
    write_plugin(plugins, "letters.py", LETTER_COUNTS)
    out = tmp_path / "res.json"
    res = xlbench("--plugins-dir", str(plugins), "eval", "--encoder", "letter-counts", "-d", f"beir={collection}",
                  "--json", str(out))
    assert res.returncode == 0, res.stderr
    data = json.loads(out.read_text())
    cells = {(c["setting"], c["query_lang"]): c["metrics"] for c in data["cells"]}
    from tests.core.test_beir import LetterCounts

    for lang in ("de", "sw", "te"):
        corpus, queries, qrels = _collection(collection / lang)
        ref = trec_reference(corpus, queries, qrels, LetterCounts())
        for metric in ("ndcg@10", "r@100", "mrr@10"):
            assert cells["mono", lang][metric] == pytest.approx(ref[metric], abs=1e-12), (lang, metric)
        assert ("multi", lang) in cells
    assert set(data["bias"]) >= {"own@10", "rank_distance", "max_at_r"}
    assert "pool" in res.stdout and "language bias" in res.stdout and "r@100" in res.stdout
    res = xlbench("--plugins-dir", str(plugins), "runs", "show", "1")
    assert res.returncode == 0 and "tri" in res.stdout


@pytest.mark.parametrize("damage, where", [
    (lambda root: (root / "te" / "qrels" / "test.tsv").unlink(), "te/qrels/test.tsv: no qrels for split 'test'"),
    (lambda root: open(root / "de" / "qrels" / "test.tsv", "a").write("q0\tnope\t2\n"), "names document 'nope'"),
    (lambda root: open(root / "de" / "corpus.jsonl", "ab").write(b"{oops\n"), "de/corpus.jsonl: line 151 column 2: invalid JSON"),
    (lambda root: (root / "sw" / "queries.jsonl").unlink(), "sw: a collection folder without queries.jsonl"),
])
def test_bad_collection_is_one_line_and_stores_nothing(workspace, collection, damage, where):
    damage(collection)
    res = xlbench("eval", "--encoder", "hashing", "-d", f"beir={collection}")
    assert res.returncode != 0
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("xlbench: error:") and where in lines[0], res.stderr
    assert _runs(workspace) == 0


def test_split_option_and_a_path_for_a_split_is_refused(workspace, collection):
    (collection / "te" / "qrels" / "test.tsv").rename(collection / "te" / "qrels" / "dev.tsv")
    res = xlbench("datasets", "check", f"beir={collection}", "-l", "te", "--split", "dev")
    assert res.returncode == 0, res.stderr
    stats = json.loads(res.stdout)
    assert stats["split"] == "dev" and stats["per_language"]["te"]["judged_queries"] == 10
    res = xlbench("eval", "--encoder", "hashing", "-d", f"beir={collection}", "--split", "../../etc/passwd")
    assert res.returncode != 0 and "must be a plain name" in res.stderr and _runs(workspace) == 0


def _trec_folders(root: Path) -> Path:
    for lang, words in (("en", ["alpha beta", "gamma", "beta delta", "alpha"]), ("fr", ["alpha", "omega beta", "gamma gamma"])):
        folder = root / lang
        folder.mkdir(parents=True)
        (folder / "docs.tsv").write_text("".join(f"{lang}{i}\t{w}\n" for i, w in enumerate(words)))
        (folder / "topics.tsv").write_text("t1\talpha\nt2\tgamma\n")
        (folder / "qrels.txt").write_text(f"t1 0 {lang}0 1\nt1 0 {lang}1 2\nt2 0 {lang}2 1\n")
    return root


@pytest.mark.slow
def test_example_dataset_plugin_is_listed_checked_and_evaluated(tmp_path, workspace):
    """plugins/trec_dataset.py (the folder the workspace uses) — a third-party layout."""
    root = _trec_folders(tmp_path / "trec")
    res = xlbench("plugins")
    assert res.returncode == 0 and "trec-folders" in res.stdout
    listing = xlbench("datasets", "list")
    assert listing.returncode == 0 and "trec-folders" in listing.stdout and "beir" in listing.stdout
    res = xlbench("datasets", "check", f"trec-folders={root}")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["per_language"]["fr"] == {"queries": 2, "judged_queries": 2, "documents": 3}
    res = xlbench("eval", "--encoder", "hashing", "-d", f"trec-folders={root}", "--json", str(tmp_path / "r.json"))
    assert res.returncode == 0, res.stderr
    data = json.loads((tmp_path / "r.json").read_text())
    assert {(c["setting"], c["query_lang"]) for c in data["cells"]} == {("mono", "en"), ("mono", "fr"), ("multi", "en"), ("multi", "fr")}
    (root / "fr" / "qrels.txt").write_text("t1 0 fr9 1\n")
    res = xlbench("eval", "--encoder", "hashing", "-d", f"trec-folders={root}")
    assert res.returncode != 0 and "fr/qrels.txt: line 1: names unknown document 'fr9'" in res.stderr
    assert _runs(workspace) == 1
