"""Sweep results as curves: a family's metric against one grid key, mean ± std over seeds."""

from __future__ import annotations

import numpy as np

SEED_KEY = "train.seed"


def _get(config: dict, dotted: str):
    node = config
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def sweep_curves(grid: dict[str, list], finished: list[tuple[dict, list[dict]]], *, dataset: str | None = None,
                 metric: str = "map") -> dict:
    """``finished`` is ``[(run config, results reports)]``; the x axis is the first non-seed grid key
    (or the seed itself if that is all the grid varies)."""
    keys = [k for k in grid if k != SEED_KEY] or [SEED_KEY]
    x_key = keys[0]
    dataset = dataset or finished[0][1][0]["dataset"]
    families = [f for f in ("mono", "cross", "multi") if any(
        f in r["summary"] for _, reports in finished for r in reports if r["dataset"] == dataset)]
    by_x: dict = {}
    for config, reports in finished:
        report = next((r for r in reports if r["dataset"] == dataset), None)
        if report is None:
            continue
        x = _get(config, x_key)
        entry = by_x.setdefault(json_key(x), {"x": x, "values": {f: [] for f in families}})
        for f in families:
            if metric in report["summary"].get(f, {}):
                entry["values"][f].append(report["summary"][f][metric])
    order = sorted(by_x.values(), key=lambda e: (not isinstance(e["x"], (int, float)), e["x"] if isinstance(e["x"], (int, float)) else str(e["x"])))
    return {
        "dataset": dataset, "x_key": x_key, "families": families, "x": [e["x"] for e in order],
        "mean": {f: [float(np.mean(e["values"][f])) if e["values"][f] else float("nan") for e in order] for f in families},
        "std": {f: [float(np.std(e["values"][f], ddof=1)) if len(e["values"][f]) > 1 else 0.0 for e in order] for f in families},
        "n": [max(len(v) for v in e["values"].values()) for e in order],
    }


def json_key(value) -> str:
    import json

    return json.dumps(value, sort_keys=True, default=str)
