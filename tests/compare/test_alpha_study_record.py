"""The committed α study (results/alpha-study.json) re-derives the table in docs/results.md: import it
into an empty database, `xlbench sweep show 1 --format md`, and every table row printed is a row of
the document. A number edited in the document, or a record changed, fails here."""

from __future__ import annotations

import pytest

import json
from pathlib import Path

from tests.helpers import xlbench

ROOT = Path(__file__).resolve().parents[2]
RECORD = ROOT / "results" / "alpha-study.json"
DOC = ROOT / "docs" / "results.md"


def test_the_committed_alpha_study_holds_the_grid_and_its_added_seeds():
    """The first 15 documents are the 5 α × 3 seed study as exported then; every later one is a
    seed 4–8 at α 0, 0.5 or 1 (sweep extend), each cell once, all finished, all on all of XQuAD-R."""
    runs = json.loads(RECORD.read_text())
    assert runs[0]["sweep"]["grid"] == {"train.seed": [1, 2, 3], "sampler.alpha": [0, 0.25, 0.5, 0.75, 1]}
    cells = []
    for record in runs:
        assert record["run"]["status"] == "finished" and record["run"]["kind"] == "train"
        config = json.loads(record["run"]["config_json"])
        cells.append((config["train"]["seed"], config["sampler"]["alpha"]))
        [ranks] = record["query_results"]
        assert ranks["dataset"] == "xquad-r" and json.loads(ranks["info_json"])["queries"] == 13090
    assert set(cells[:15]) == {(s, a) for s in (1, 2, 3) for a in (0, 0.25, 0.5, 0.75, 1)}
    assert len(set(cells)) == len(cells)
    assert all(s in range(4, 9) and a in (0, 0.5, 1) for s, a in cells[15:])


@pytest.mark.slow
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
