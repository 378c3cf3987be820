"""The committed α study (results/alpha-study.json) re-derives the table in docs/results.md: import it
into an empty database, `xlbench sweep show 1 --format md`, and every table row printed is a row of
the document. A number edited in the document, or a record changed, fails here."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import xlbench

ROOT = Path(__file__).resolve().parents[2]
RECORD = ROOT / "results" / "alpha-study.json"
DOC = ROOT / "docs" / "results.md"


def test_the_committed_alpha_study_holds_fifteen_finished_runs_of_the_grid():
    runs = json.loads(RECORD.read_text())
    grid = runs[0]["sweep"]["grid"]
    assert grid == {"train.seed": [1, 2, 3], "sampler.alpha": [0, 0.25, 0.5, 0.75, 1]}
    cells = set()
    for record in runs:
        assert record["run"]["status"] == "finished" and record["run"]["kind"] == "train"
        config = json.loads(record["run"]["config_json"])
        cells.add((config["train"]["seed"], config["sampler"]["alpha"]))
        [ranks] = record["query_results"]
        assert ranks["dataset"] == "xquad-r" and json.loads(ranks["info_json"])["queries"] == 13090
    assert cells == {(s, a) for s in grid["train.seed"] for a in grid["sampler.alpha"]}


def test_importing_the_alpha_study_prints_the_table_in_the_results_document(workspace):
    imported = xlbench("import", str(RECORD))
    assert imported.returncode == 0, imported.stderr
    shown = xlbench("sweep", "show", "1", "--format", "md", "--no-plot")
    assert shown.returncode == 0, shown.stderr
    rows = [line for line in shown.stdout.splitlines() if line.startswith("|")]
    assert len(rows) == 2 + 5, shown.stdout  # header, rule and one row per α
    document = DOC.read_text().splitlines()
    missing = [row for row in rows if row not in document]
    assert not missing, f"rows of `sweep show` not in {DOC.name}: {missing}"
