"""Render a :class:`~xlbench.core.compare.Comparison` as Markdown, LaTeX, CSV or JSON.

Paper-table conventions: the best value of each row in bold, significance stars (Holm-adjusted,
against the first column: a per-question test of these models, or for groups of seeds a test of
the training procedures) after each Δ; lower is better for rank distance and Max@R.
"""

from __future__ import annotations

import csv
import io
import json

from xlbench.core.compare import Comparison, Row
from xlbench.core.metrics import spec


def _value(row: Row, k: int) -> str:
    cell = row.cells[k]
    text = f"{cell.value:.{row.digits}f}"
    if cell.std is not None:
        text += f" ± {cell.std:.{row.digits}f}"
    return text


def _delta(row: Row, k: int) -> str:
    cell = row.cells[k]
    if cell.delta is None:
        return ""
    return f"{cell.delta:+.{row.digits}f}{cell.mark}"


def row_label(row: Row) -> str:
    return f"{row.dataset} {row.family} {spec(row.metric).label}"


def to_markdown(c: Comparison) -> str:
    lines = ["| | " + " | ".join(c.columns) + " |", "|---|" + "---|" * len(c.columns)]
    for row in c.rows:
        best = row.best()
        cells = []
        for k in range(len(c.columns)):
            text = _value(row, k)
            if k == best:
                text = f"**{text}**"
            if k > 0:
                text += f" ({_delta(row, k)})"
            cells.append(text)
        lines.append(f"| {row_label(row)} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Δ to the first column; * p < 0.05, ** p < 0.01, *** p < 0.001 ({c.legend()}). "
                 "Bold: best in row (lower is better for rank distance and Max@R).")
    for note in c.notes:
        lines.append(f"Note: {note}")
    if c.config_diff:
        lines += ["", "| config key | " + " | ".join(c.columns) + " |", "|---|" + "---|" * len(c.columns)]
        for key, values in c.config_diff.items():
            lines.append(f"| {key} | " + " | ".join(json.dumps(v) for v in values) + " |")
    if c.env_diff:
        lines += ["", "| where it ran | " + " | ".join(f"run {r}" for r in c.env_runs) + " |",
                  "|---|" + "---|" * len(c.env_runs)]
        for key, values in c.env_diff.items():
            lines.append(f"| {key} | " + " | ".join(json.dumps(v) for v in values) + " |")
    return "\n".join(lines) + "\n"


def _tex(text: str) -> str:
    return text.replace("\\", "\\textbackslash{}").replace("&", "\\&").replace("%", "\\%").replace("_", "\\_").replace("#", "\\#")


def to_latex(c: Comparison) -> str:
    cols = "l" + "r" * len(c.columns)
    lines = ["\\begin{tabular}{" + cols + "}", "\\toprule", " & " + " & ".join(_tex(x) for x in c.columns) + " \\\\", "\\midrule"]
    for row in c.rows:
        best = row.best()
        cells = []
        for k in range(len(c.columns)):
            text = _value(row, k).replace(" ± ", " $\\pm$ ")
            if k == best:
                text = f"\\textbf{{{text}}}"
            if k > 0 and row.cells[k].delta is not None:
                d = row.cells[k]
                text += f" ({d.delta:+.{row.digits}f}$^{{{d.mark}}}$)" if d.mark else f" ({d.delta:+.{row.digits}f})"
            cells.append(text)
        lines.append(_tex(row_label(row)) + " & " + " & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines) + "\n"


def to_csv(c: Comparison) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["dataset", "family", "metric", "column", "value", "std", "n", "delta", "p", "p_holm", "ci_low", "ci_high", "mark",
                "test"])
    for row in c.rows:
        for label, cell in zip(c.columns, row.cells):
            w.writerow([row.dataset, row.family, row.metric, label, cell.value, cell.std, cell.n, cell.delta, cell.p,
                        cell.p_adjusted, cell.ci[0] if cell.ci else None, cell.ci[1] if cell.ci else None, cell.mark,
                        cell.test])
    return buf.getvalue()


def matrix_csv(c: Comparison) -> str:
    """Every (query language, corpus language) cell: the reference mAP and each column's Δ."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["dataset", "query_lang", "corpus_lang", "column", "reference_map", "delta_map"])
    for dataset, m in c.matrices.items():
        for k, delta in enumerate(m["delta"], start=1):
            for i, q in enumerate(m["languages"]):
                for j, col in enumerate(m["columns"]):
                    w.writerow([dataset, q, col, c.columns[k], m["reference"][i][j], delta[i][j]])
    return buf.getvalue()


def to_json(c: Comparison) -> str:
    return json.dumps(c.as_dict(), indent=2, default=float)


RENDERERS = {"md": to_markdown, "latex": to_latex, "csv": to_csv, "json": to_json}
