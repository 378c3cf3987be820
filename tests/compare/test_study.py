"""A sweep as a study (`xlbench sweep show`): points are the runs' own table values, intervals are
Student-t over seeds, tests are the procedure-level tests of `compare --group-by` (over seeds and
questions), Holm runs over every distinct test, and each row states what it could detect.
Synthetic runs: integer ranks, the same on every machine."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from tests.helpers import store_synthetic_sweep, xlbench
from xlbench.core.compare import PROCEDURE_TEST, aligned_units, compare_runs, lareqa_units
from xlbench.core.lareqa_report import LareqaRanks
from xlbench.core.seed_variance import procedure_test
from xlbench.core.significance import holm
from xlbench.core.sweeps import sweep_study
from xlbench.store.results import report_from_rows

XS = (0, 0.5, 1)


def _study(store, run_ids, **kw):
    return sweep_study(store.run_inputs(run_ids), "sampler.alpha", **kw)


def test_points_are_the_runs_values_with_a_student_t_interval(store):
    _, ids = store_synthetic_sweep(store, XS, seeds=(1, 2, 3))
    study = _study(store, ids)
    assert study.xs == [0, 0.5, 1] and study.references == [0, 2]
    assert [(r.family, r.metric) for r in study.rows] == [("mono", "map"), ("cross", "map"), ("multi", "map"),
                                                          ("bias", "rank_distance")]
    reports = {i: report_from_rows(store.metrics(i))[0] for i in ids}
    for row in study.rows:
        for point in row.points:
            assert len(point.run_ids) == 3 and sorted(point.seeds) == [1, 2, 3]
            stored = [reports[i]["bias"]["rank_distance"]["macro"] if row.family == "bias"
                      else reports[i]["summary"][row.family]["map"] for i in point.run_ids]
            assert point.values == pytest.approx(stored, abs=1e-9)
            lo, hi = stats.t.interval(0.95, 2, loc=np.mean(stored), scale=stats.sem(stored))
            assert (point.mean - point.half_width, point.mean + point.half_width) == pytest.approx((lo, hi), abs=1e-9)


def test_tests_are_the_procedure_tests_of_compare_group_by_and_holm_runs_over_all(store):
    _, ids = store_synthetic_sweep(store, XS, seeds=(1, 2, 3), strength=0.02)  # small effects: p well above 0
    study = _study(store, ids)
    inputs = store.run_inputs(ids)
    by_x = {x: [i for i, r in enumerate(inputs) if r.config["sampler"]["alpha"] == x] for x in XS}
    raw = []
    for row in study.rows:
        units = aligned_units([lareqa_units(LareqaRanks.from_bytes(r.results["xquad-r"][1]), row.family, row.metric)
                               for r in inputs])
        for k, point in enumerate(row.points):
            assert [study.xs[t.reference] for t in point.tests] == [x for x in (0, 1) if x != study.xs[k]]
            for test in point.tests:
                ref = study.xs[test.reference]
                direct = procedure_test(units[by_x[ref]], units[by_x[study.xs[k]]])
                assert (test.delta, test.p, test.n) == (pytest.approx(direct.delta, abs=1e-12), direct.p, (3, 3))
                # the same test through `compare`: the reference group against this point's group
                c = compare_runs(inputs, groups=[by_x[ref], by_x[study.xs[k]]])
                cell = next(r for r in c.rows if (r.family, r.metric) == (row.family, row.metric)).cells[1]
                assert cell.test == PROCEDURE_TEST and test.p == cell.p
                assert test.delta == pytest.approx(cell.delta, abs=1e-12)
                raw.append((row.label, k, test.reference, test.p, test.p_adjusted))
    distinct = {(label, tuple(sorted((k, ref)))): (p, adj) for label, k, ref, p, adj in raw}
    assert len(distinct) == 4 * 3 == study.n_tests()  # per row: 0.5–0, 0.5–1 and 0–1 (counted once)
    ps = [p for p, _ in distinct.values()]
    assert [adj for _, adj in distinct.values()] == pytest.approx(holm(ps))
    assert any(0.01 < p < 1 for p in ps)


def test_every_row_says_what_it_could_detect_and_what_a_target_needs(store):
    _, ids = store_synthetic_sweep(store, XS, seeds=(1, 2, 3), strength=0.2)
    study = _study(store, ids, target=0.01)
    for row in study.rows:
        assert row.spread.df == 3 * 2 and row.spread.seed_sd > 0
        [((a, b), mde)] = row.detectable()
        assert (a, b) == (3, 3) and mde > 0
        if row.family != "bias":
            needed = row.seeds_for(0.01)
            assert needed is None or needed > 3  # a Δ below the 3-seed MDE needs more seeds
    lines = study.power_lines()
    assert len(lines) == 4 and all("detectable at 80 % power" in line and "(3 vs 3 seeds)" in line for line in lines)
    assert all(("Δ = 0.01" in line) == ("rank distance" not in line) for line in lines)  # mAP units only


def test_a_clear_effect_is_marked_against_both_references(store):
    _, ids = store_synthetic_sweep(store, XS, seeds=(1, 2, 3, 4), strength=1.0)
    study = _study(store, ids)
    mono = study.rows[0]
    assert mono.points[0].mean < mono.points[1].mean < mono.points[2].mean
    assert study.marks(mono, 1) == "a*** b***" and study.marks(mono, 0) == "b***" and study.marks(mono, 2) == "a***"
    assert study.rows[-1].lower_is_better and study.rows[-1].points[2].mean < study.rows[-1].points[0].mean


def test_an_incomplete_sweep_says_so_and_one_run_has_no_interval(store):
    _, ids = store_synthetic_sweep(store, XS, seeds=(1, 2))
    study = _study(store, ids[:4])  # seed 1 for every α, seed 2 only for α = 0
    assert [p.n for p in study.rows[0].points] == [2, 1, 1]
    assert study.rows[0].points[1].half_width is None and "± " not in study.cell(study.rows[0], 1)
    assert any("different numbers of runs" in n for n in study.notes)
    # one seed: seed variance unknown, so nothing involving α = 0.5 or α = 1 is tested
    assert any("sampler.alpha=0.5, 1: one seed" in n and "not tested" in n for n in study.notes)
    assert all(t.p is None and t.p_adjusted is None and not t.mark for row in study.rows for p in row.points
               for t in p.tests)


def test_a_sweep_with_one_finished_run_shows_it_without_tests(store):
    sweep_id, ids = store_synthetic_sweep(store, (0,), seeds=(1,))
    study = _study(store, ids)
    assert study.xs == [0] and study.references == [0] and all(not p.tests for r in study.rows for p in r.points)
    assert "nothing to test against" in study.legend()
    for fmt in ("table", "md", "json"):
        assert xlbench("sweep", "show", str(sweep_id), "--format", fmt).returncode == 0


@pytest.mark.slow
def test_sweep_show_prints_table_curves_markdown_and_json(store):
    sweep_id, ids = store_synthetic_sweep(store, XS, seeds=(1, 2, 3))
    res = xlbench("sweep", "show", str(sweep_id), "--target-delta", "0.01", env={"COLUMNS": "160"})
    assert res.returncode == 0, res.stderr
    assert "mean ± 95 % CI over seeds" in res.stdout and "rank distance" in res.stdout
    assert "as a training procedure" in res.stdout and "sampler.alpha" in res.stdout
    assert "detectable at 80 % power" in res.stdout and "Δ = 0.01" in res.stdout
    assert "rank distance (lower is better)" in res.stdout  # the curves (plotext)
    md = xlbench("sweep", "show", str(sweep_id), "--format", "md", "--no-plot")
    assert md.returncode == 0 and md.stdout.startswith("| sampler.alpha | runs | mono mAP | cross mAP | multi mAP |")
    doc = json.loads(xlbench("sweep", "show", str(sweep_id), "--format", "json").stdout)
    study = _study(store, ids)
    assert doc["x"] == [0, 0.5, 1] and doc["references"] == [0, 1]
    for row, stored in zip(study.rows, doc["rows"]):
        assert [p["mean"] for p in stored["points"]] == pytest.approx([p.mean for p in row.points], abs=1e-12)
        assert stored["detectable"] == [{"seeds": list(pair), "delta": mde} for pair, mde in row.detectable()]
        assert [[t["p_holm"] for t in p["tests"]] for p in stored["points"]] == \
            [[t.p_adjusted for t in p.tests] for p in row.points]
    bad = xlbench("sweep", "show", str(sweep_id), "--dataset", "mlqa-r")
    assert bad.returncode != 0 and "mlqa-r" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_an_exported_sweep_imported_elsewhere_shows_the_same_study(store, tmp_path):
    """results/alpha-study.json's promise: import into an empty database, `sweep show` re-derives
    every number (the runs arrive as records, in one sweep with the same name and grid)."""
    sweep_id, ids = store_synthetic_sweep(store, XS, seeds=(1, 2))
    export = tmp_path / "study.json"
    assert xlbench("export", *map(str, ids), "-o", str(export)).returncode == 0
    here = json.loads(xlbench("sweep", "show", str(sweep_id), "--format", "json").stdout)
    other = f"sqlite:///{tmp_path / 'other.sqlite'}"
    res = xlbench("--db", other, "import", str(export))
    assert res.returncode == 0, res.stderr
    assert "its sweep 1 is sweep 1 here: `xlbench sweep show 1`" in res.stdout
    there = json.loads(xlbench("--db", other, "sweep", "show", "1", "--format", "json").stdout)
    assert there["name"] == here["name"] == "alpha" and there["grid"] == here["grid"]
    assert there["rows"] == here["rows"] and there["x"] == here["x"]
    resume = xlbench("--db", other, "sweep", "resume", "1", "--no-run")
    assert resume.returncode == 0 and "requeued 0 runs; 6 finished runs are kept" in resume.stdout


def test_while_the_last_grid_value_runs_points_are_tested_against_the_ends_of_the_grid_only(store):
    """A sweep in progress: with α = 1 not finished, nothing is marked against 'the last point so
    far' (α = 0.5 here); only α = 0 is a reference until α = 1 arrives."""
    _, ids = store_synthetic_sweep(store, XS, seeds=(1, 2))
    partial = [i for i, r in zip(ids, store.run_inputs(ids)) if r.config["sampler"]["alpha"] != 1]
    study = _study(store, partial, ends=(0, 1))
    assert study.xs == [0, 0.5] and study.references == [0]
    assert [t.reference for t in study.rows[0].points[1].tests] == [0] and not study.rows[0].points[0].tests
    assert "a: different from sampler.alpha=0 as a training procedure" in study.legend() and " / " not in study.legend().split(";")[1]
    full = _study(store, ids, ends=(0, 1))
    assert full.references == [0, 2] and "a / b: different from sampler.alpha=0 / sampler.alpha=1 as" in full.legend()


@pytest.mark.slow
def test_a_growing_study_is_exported_by_appending_and_imports_with_its_widened_grid(store, tmp_path):
    """The α study's way across sessions: import the record, extend the sweep, export --append:
    the earlier documents stay as written, only the new runs are added, and importing the record
    gives one sweep whose grid holds every value."""
    from xlbench.store.transfer import read_document

    sweep_id, ids = store_synthetic_sweep(store, XS, seeds=(1, 2))
    record = tmp_path / "study.json"
    assert xlbench("export", *map(str, ids[:3]), "-o", str(record)).returncode == 0
    first = list(read_document(record))
    other = f"sqlite:///{tmp_path / 'other.sqlite'}"
    assert xlbench("--db", other, "import", str(record)).returncode == 0
    # the imported records, exported again into the record: nothing new
    again = xlbench("--db", other, "export", "--sweep", "1", "-o", str(record), "--append")
    assert again.returncode == 0 and "exported 0 run(s)" in again.stdout, again.stdout + again.stderr
    res = xlbench("export", "--sweep", str(sweep_id), "-o", str(record), "--append")
    assert res.returncode == 0 and "exported 3 run(s)" in res.stdout, res.stdout + res.stderr
    docs = list(read_document(record))
    assert docs[:3] == first and len(docs) == 6
    assert xlbench("export", "--sweep", str(sweep_id), "-o", str(record), "--append").stdout.startswith("exported 0 run(s)")
    docs[4]["sweep"]["grid"]["train.seed"] = [1, 2, 3]  # a later document of a sweep that grew
    record.write_text(json.dumps(docs))
    third = f"sqlite:///{tmp_path / 'third.sqlite'}"
    assert xlbench("--db", third, "import", str(record)).returncode == 0
    shown = json.loads(xlbench("--db", third, "sweep", "show", "1", "--format", "json").stdout)
    assert shown["grid"] == {"train.seed": [1, 2, 3], "sampler.alpha": [0, 0.5, 1]}
