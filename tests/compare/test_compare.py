"""`xlbench compare`, exports and export → import round trips, on real stored runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import PLUGINS
from tests.helpers import xlbench
from xlbench.core.compare import compare_runs, lareqa_units
from xlbench.core.lareqa_report import LareqaRanks, lareqa_report
from xlbench.store.store import Store


@pytest.fixture(scope="module")
def three_runs_db(tmp_path_factory):
    """Two identical hashing runs and a much weaker one (16 dims), on three XQuAD-R languages,
    evaluated once per module; each test gets its own copy of the database."""
    from xlbench.config import EvalConfig
    from xlbench.runs.execute import execute_run
    from xlbench.runs.jobs import evaluation
    from xlbench.runs.launch import submit

    home = tmp_path_factory.mktemp("three-runs")
    (home / "db").mkdir()
    store = Store(f"sqlite:///{home}/db/xlbench.sqlite")
    for dim in (512, 512, 16):  # in this process, through the one entry `xlbench eval` takes too
        config = EvalConfig(encoder="hashing", encoder_options={"dim": dim}, languages=["en", "de", "es"], cache=False,
                            plugins_dir=str(PLUGINS))
        prepared = evaluation.prepare(config)
        execute_run(store, submit(store, "eval", config, f"hashing {dim}"), prepared=prepared)
        assert store.list_runs()[0].status == "finished"
    store.dispose()
    return home / "db" / "xlbench.sqlite"


@pytest.fixture
def three_runs(three_runs_db, workspace):
    import shutil

    (workspace / "db").mkdir(exist_ok=True)
    shutil.copy(three_runs_db, workspace / "db" / "xlbench.sqlite")
    return Store()


def test_unit_contributions_sum_to_the_reported_family_means(three_runs):
    qr = three_runs.query_results(1)[0]
    ranks = LareqaRanks.from_bytes(qr.payload)
    report = lareqa_report(ranks)
    for family in ("mono", "cross", "multi"):
        for metric in ("map", "r@1", "r@10"):
            assert lareqa_units(ranks, family, metric).contrib.sum() == pytest.approx(report.summary[family][metric], abs=1e-12)
    assert lareqa_units(ranks, "bias", "rank_distance").contrib.sum() == pytest.approx(report.bias["rank_distance"]["macro"], abs=1e-9)


def test_identical_runs_p_one_and_a_large_difference_is_significant(three_runs):
    c = compare_runs(three_runs.run_inputs([1, 2, 3]), permutations=2000)
    for row in c.rows:
        same = row.cells[1]
        assert same.delta == 0.0 and same.p == 1.0 and same.p_adjusted == 1.0 and same.mark == ""
        assert row.cells[0].value == same.value
    maps = [r for r in c.rows if r.metric == "map"]
    assert all(r.cells[2].delta < -0.05 and r.cells[2].p < 0.001 and r.cells[2].mark == "***" for r in maps)
    assert c.config_diff == {"encoder_options.dim": [512, 512, 16]}
    m = c.matrices["xquad-r"]
    assert m["columns"] == ["de", "en", "es", "all"] and all(v == 0 for row in m["delta"][0] for v in row)


@pytest.mark.slow
def test_compare_cli_table_and_markdown(three_runs, tmp_path):
    res = xlbench("compare", "1", "2", "3", "--permutations", "2000")
    assert res.returncode == 0, res.stderr
    assert "xquad-r cross mAP" in res.stdout and "***" in res.stdout and "encoder_options.dim" in res.stdout
    md = tmp_path / "t.md"
    res = xlbench("compare", "1", "3", "--format", "md", "--output", str(md), "--permutations", "2000",
                  "--matrix-csv", str(tmp_path / "m.csv"))
    assert res.returncode == 0, res.stderr
    text = md.read_text()
    assert text.startswith("| | 1: hashing 512 | 3: hashing 16 |") and "**" in text and "***)" in text
    assert (tmp_path / "m.csv").read_text().splitlines()[0] == "dataset,query_lang,corpus_lang,column,reference_map,delta_map"
    latex = xlbench("compare", "1", "3", "--format", "latex", "--permutations", "2000").stdout
    assert "\\textbf{" in latex and "$^{***}$" in latex


def test_where_and_last_select_runs(three_runs):
    res = xlbench("compare", "--last", "2", "--format", "json", "--permutations", "1000")
    assert json.loads(res.stdout)["columns"] == ["2: hashing 512", "3: hashing 16"]
    res = xlbench("compare", "--where", "encoder_options.dim=512", "--format", "json", "--permutations", "1000")
    assert json.loads(res.stdout)["columns"] == ["1: hashing 512", "2: hashing 512"]


@pytest.mark.slow
def test_language_sets_differ_compared_on_intersection(three_runs):
    assert xlbench("eval", "--encoder", "hashing", "-l", "en,de", "--no-cache").returncode == 0
    c = compare_runs(three_runs.run_inputs([1, 4]), permutations=1000)
    assert any("intersection de,en" in n for n in c.notes)
    assert {r.family for r in c.rows} == {"mono", "cross"}


def test_group_by_pools_seeds(tmp_path):
    from xlbench.core.compare import group_runs

    configs = [{"sampler": {"alpha": a}, "train": {"seed": s}} for a in (0.0, 0.5) for s in (1, 2)]
    assert group_runs(configs, "sampler.alpha") == [[0, 1], [2, 3]]


@pytest.mark.slow
def test_export_import_into_fresh_database_compares_identically(three_runs, tmp_path):
    before = xlbench("compare", "1", "2", "3", "--format", "json", "--permutations", "1000").stdout
    out = tmp_path / "runs.json"
    assert xlbench("export", "1", "2", "3", "--output", str(out)).returncode == 0
    other = f"sqlite:///{tmp_path / 'other.sqlite'}"
    res = xlbench("--db", other, "import", str(out))
    assert res.returncode == 0 and "as run 3" in res.stdout, res.stdout + res.stderr
    after = xlbench("--db", other, "compare", "1", "2", "3", "--format", "json", "--permutations", "1000").stdout
    assert json.loads(after) == json.loads(before)
    again = xlbench("--db", other, "import", str(out))
    assert "was taken" in again.stdout
    assert np.isclose(Store(other).metrics(1)[0].value, Store().metrics(1)[0].value)


def test_miracl_rows_recompute_the_stored_means_and_test_the_difference(tmp_path):
    """MIRACL rows come from each run's decoded per-query payload: a run against itself gives its
    stored nDCG@10 / R@100 with Δ = 0 and p = 1; a weaker encoder (half the words) gives its own
    means and the difference of the two."""
    from tests.core.test_miracl import WORDS, LetterCounts, make_miracl
    from xlbench.core.compare import RunInput
    from xlbench.core.data.miracl import load_miracl
    from xlbench.core.evaluate import evaluate

    class HalfWords(LetterCounts):
        def encode(self, texts, *, role):
            return super().encode(texts, role=role)[:, : len(WORDS) // 2]

    make_miracl(tmp_path, "sw", n_docs=300, n_queries=30, seed=3)
    make_miracl(tmp_path, "te", n_docs=120, n_queries=15, seed=4)
    ds = load_miracl(tmp_path, languages=["sw", "te"])
    results = [evaluate(ds, enc) for enc in (LetterCounts(), LetterCounts(), HalfWords())]
    inputs = [RunInput(i + 1, f"run {i + 1}", {}, {ds.name: (r.payload_format, r.payload)}) for i, r in enumerate(results)]
    comparison = compare_runs(inputs, permutations=2000)
    assert [(row.family, row.metric) for row in comparison.rows] == [("mono", "ndcg@10"), ("mono", "r@100")]
    for row in comparison.rows:
        values = [r.summary["mono"][row.metric] for r in results]
        assert [c.value for c in row.cells] == pytest.approx(values, abs=1e-12)
        assert row.cells[1].delta == pytest.approx(0, abs=1e-12) and row.cells[1].p == 1.0
        assert row.cells[2].delta == pytest.approx(values[2] - values[0], abs=1e-12)


def test_where_a_run_reports_is_not_a_config_difference():
    from xlbench.core.compare import config_diff

    runs = [{"train": {"lr": 1e-5}, "report": {"to": ["mlflow"], "every": 5.0}}, {"train": {"lr": 3e-5}}]
    assert config_diff(runs) == {"train.lr": [1e-5, 3e-5]}
