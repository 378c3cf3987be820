"""Evaluation results ↔ metric rows. What the CLI prints and ``--json`` writes is read back from
the rows, so the database always holds exactly what was shown."""

from __future__ import annotations

import json
from collections import defaultdict

from xlbench.store.models import Metric, QueryResult

MACRO = "macro"
MICRO = "micro"
OTHERS = "others"


def result_rows(run_id: int, result) -> tuple[list[Metric], QueryResult]:
    """Metric rows and the per-query payload row for one dataset's ``DatasetResult``."""
    base = {"run_id": run_id, "dataset": result.dataset, "dataset_version": result.version}
    rows: list[Metric] = []
    for cell in result.cells:
        for metric, value in cell.metrics.items():
            rows.append(Metric(**base, setting=cell.setting, query_lang=cell.query_lang, corpus_lang=cell.corpus_lang,
                               metric=metric, value=value, n_queries=cell.n_queries))
    for family, values in result.summary.items():
        n_cells = int(values.get("n_cells", 0))
        for metric, value in values.items():
            if metric == "n_cells":
                continue
            if metric.endswith("_micro"):
                rows.append(Metric(**base, setting=family, query_lang=MICRO, corpus_lang="all",
                                   metric=metric[: -len("_micro")], value=value))
            else:
                rows.append(Metric(**base, setting=family, query_lang=MACRO, corpus_lang=MACRO, metric=metric,
                                   value=value, n_queries=n_cells))
    for metric, spec in result.bias.items():
        if metric == "visibility":
            for item in spec:
                rows.append(Metric(**base, setting="bias", query_lang=OTHERS, corpus_lang=item["lang"],
                                   metric="visibility_rank", value=item["mean_rank"]))
            continue
        for lang, value in spec["per_lang"].items():
            rows.append(Metric(**base, setting="bias", query_lang=lang, corpus_lang="all", metric=metric, value=value))
        rows.append(Metric(**base, setting="bias", query_lang=MACRO, corpus_lang="all", metric=metric, value=spec["macro"]))
    payload = QueryResult(**base, format=result.payload_format, payload=result.payload,
                          info_json=json.dumps(result.info, default=str))
    return rows, payload


def report_from_rows(rows: list[Metric]) -> list[dict]:
    """One results object per dataset, shaped like ``xlbench eval --json`` documents it."""
    by_dataset: dict[str, list[Metric]] = defaultdict(list)
    for row in rows:
        by_dataset[row.dataset].append(row)
    reports = []
    for dataset, ds_rows in by_dataset.items():
        cells: dict[tuple[str, str, str], dict] = {}
        summary: dict[str, dict[str, float]] = defaultdict(dict)
        bias: dict = {}
        visibility = []
        for r in ds_rows:
            if r.setting == "bias":
                if r.query_lang == OTHERS:
                    visibility.append({"lang": r.corpus_lang, "mean_rank": r.value})
                else:
                    entry = bias.setdefault(r.metric, {"per_lang": {}, "macro": None})
                    if r.query_lang == MACRO:
                        entry["macro"] = r.value
                    else:
                        entry["per_lang"][r.query_lang] = r.value
            elif r.query_lang == MACRO:
                summary[r.setting][r.metric] = r.value
                summary[r.setting]["n_cells"] = r.n_queries
            elif r.query_lang == MICRO:
                summary[r.setting][f"{r.metric}_micro"] = r.value
            else:
                key = (r.setting, r.query_lang, r.corpus_lang)
                cell = cells.setdefault(key, {"setting": r.setting, "query_lang": r.query_lang,
                                              "corpus_lang": r.corpus_lang, "n_queries": r.n_queries, "metrics": {}})
                cell["metrics"][r.metric] = r.value
        if visibility:
            bias["visibility"] = sorted(visibility, key=lambda v: v["mean_rank"])
        reports.append({"dataset": dataset, "version": ds_rows[0].dataset_version, "cells": list(cells.values()),
                        "summary": dict(summary), "bias": bias})
    return reports
