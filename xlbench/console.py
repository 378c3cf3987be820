"""Terminal output for headless commands: a Rich progress reporter and result tables."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich import box
from rich.table import Table
from rich.text import Text

from xlbench.core.metrics import METRICS
from xlbench.core.progress import Reporter



class RichReporter(Reporter):
    """One progress bar per phase; events printed above the bars."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False,
        )
        self.task = None
        self.done = 0

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self._close_task()
        self.progress.stop()

    def _close_task(self) -> None:
        if self.task is not None:
            task = self.progress.tasks[-1]
            if task.total is None:  # an open-ended phase: show it as complete
                self.progress.update(self.task, total=max(self.done, 1), completed=max(self.done, 1))
            self.progress.stop_task(self.task)

    def phase(self, name: str, total: int | None = None) -> None:
        self._close_task()
        self.done = 0
        self.task = self.progress.add_task(name, total=total)

    def advance(self, done: int, total: int | None = None) -> None:
        self.done = done
        if self.task is not None:
            self.progress.update(self.task, completed=done, total=total)

    def event(self, message: str, level: str = "info", **data) -> None:
        style = {"warning": "yellow", "error": "red"}.get(level, "dim")
        self.console.print(f"[{style}]{message}[/]")


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


MAX_METRIC_COLUMNS = 12  # more metrics than this (an imported record can hold any) become rows
MAX_METRIC_ROWS = 100


def family_table(report: dict) -> Table:
    summary = report["summary"]
    # the registry's metrics in its order (MIRACL's r@100 included), else whatever an import holds
    metrics = [m for m in METRICS if any(m in v for v in summary.values())] or sorted(
        {k for v in summary.values() for k in v if k != "n_cells"})
    if len(metrics) > MAX_METRIC_COLUMNS:
        return _family_rows(report, metrics)
    table = Table(title=f"{report['dataset']}: family means (macro over cells)")
    table.add_column("family")
    for m in metrics:
        table.add_column(m, justify="right")
    table.add_column("cells", justify="right")
    for family in ("mono", "cross", "multi"):
        if family in summary:
            row = summary[family]
            table.add_row(family, *(_fmt(row.get(m)) for m in metrics), str(row.get("n_cells", "")))
    if "multi" in summary and "map_micro" in summary["multi"]:
        row = summary["multi"]
        table.add_row("multi (micro)", *(_fmt(row.get(f"{m}_micro")) for m in metrics), "")
    return table


def _family_rows(report: dict, metrics: list[str]) -> Table:
    """A wide metric set folded: one row per metric (the first MAX_METRIC_ROWS), one column per family."""
    from xlbench.text import inert

    summary = report["summary"]
    families = [f for f in ("mono", "cross", "multi") if f in summary] or sorted(summary)[:MAX_METRIC_COLUMNS]
    shown = metrics[:MAX_METRIC_ROWS]
    more = len(metrics) - len(shown)
    table = Table(title=f"{report['dataset']}: family means (macro over cells), {len(metrics):,} metrics",
                  caption=f"… and {more:,} more metrics (all in `runs show --json`)" if more else None)
    table.add_column("metric")
    for family in families:
        table.add_column(Text(inert(family)), justify="right")
    for m in shown:
        table.add_row(Text(inert(m)), *(_fmt(summary[f].get(m)) for f in families))
    return table


def matrix_table(report: dict, metric: str = "map") -> Table | None:
    cells = report["cells"]
    if not any(c["setting"] == "cross" for c in cells):
        return None
    langs = sorted({c["query_lang"] for c in cells})
    value = {(c["query_lang"], c["corpus_lang"]): c["metrics"].get(metric) for c in cells}
    # ".763" rather than "0.763", no cell borders: 11 languages fit in 80 columns
    short = lambda v: "–" if v is None else f"{v:.3f}".lstrip("0") if v < 1 else f"{v:.2f}"  # noqa: E731
    table = Table(title=f"{report['dataset']}: {metric}, query language (rows) × corpus language (columns)",
                  box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), pad_edge=False)
    table.add_column("q\\c")
    for lang in langs:
        table.add_column(lang, justify="right")
    table.add_column("all", justify="right", style="bold")
    for q in langs:
        table.add_row(q, *(f"[bold]{short(value.get((q, c)))}[/]" if q == c else short(value.get((q, c))) for c in langs),
                      short(value.get((q, "all"))))
    return table


BIAS_COLUMNS = {"rank_distance": "rank distance", "max_at_r": "Max@R", "lang_pref": "own-lang pref", "own@10": "own@10"}


def bias_table(report: dict) -> Table | None:
    """Languages ranked by how visible their answers are in the multilingual pool (most visible
    first, where the set has cross-language answers), with each query language's bias measures
    (those the set reports: rank distance, Max@R, own-language preference, own@10)."""
    from xlbench.core.metrics import spec

    bias = report.get("bias") or {}
    if not bias:
        return None
    columns = [k for k in BIAS_COLUMNS if k in bias]
    per = {k: bias[k].get("per_lang", {}) for k in columns}
    ranked = [v["lang"] for v in bias.get("visibility", [])]
    langs = ranked + sorted(set().union(*per.values()) - set(ranked))
    vis = {v["lang"]: v["mean_rank"] for v in bias.get("visibility", [])}
    title = "most visible first; " if vis else ""
    table = Table(title=f"{report['dataset']}: language bias in the multilingual pool ({title}"
                        "lower rank distance is better)", show_edge=False, pad_edge=False, min_width=60)
    headers = (["#"] if vis else []) + ["lang"] + (["mean rank"] if vis else []) + [BIAS_COLUMNS[k] for k in columns]
    for col in headers:
        table.add_column(col, justify="left" if col == "lang" else "right")
    digits = {k: spec(k).digits for k in columns}
    for i, lang in enumerate(langs, start=1):
        lead = ([str(i) if lang in vis else "–"] if vis else []) + [lang] + ([_fmt(vis.get(lang), 1)] if vis else [])
        table.add_row(*lead, *(_fmt(per[k].get(lang), digits[k]) for k in columns))
    lead = ([""] if vis else []) + ["macro"] + ([""] if vis else [])
    table.add_row(*lead, *(_fmt(bias[k].get("macro"), digits[k]) for k in columns), style="bold")
    return table


def per_language_table(report: dict) -> Table:
    """For ad-hoc sets (MIRACL, BEIR folders): one row per language, its own collection's measures
    and, where the set has a merged pool, the same measures in the pool."""
    settings = [s for s in ("mono", "multi") if any(c["setting"] == s for c in report["cells"])]
    value = {(c["setting"], c["query_lang"]): c for c in report["cells"]}
    metrics = sorted({m for c in report["cells"] for m in c["metrics"]})
    table = Table(title=f"{report['dataset']}: per language" + (" (pool: every language's documents in one corpus)"
                                                                 if "multi" in settings else ""))
    table.add_column("lang")
    table.add_column("queries", justify="right")
    for setting in settings:
        for m in metrics:
            table.add_column(m if setting == "mono" else f"pool {m}", justify="right")
    for lang in sorted({c["query_lang"] for c in report["cells"] if c["setting"] == "mono"}):
        mono = value[("mono", lang)]
        table.add_row(lang, str(mono["n_queries"]), *(_fmt(value.get((s, lang), {}).get("metrics", {}).get(m), 4)
                                                      for s in settings for m in metrics))
    return table


def _inert_report(report: dict) -> dict:
    """The report with its stored names (dataset, languages) made inert markup-safe text."""
    from xlbench.text import plain_markup as safe

    bias = report.get("bias") or {}
    return {**report, "dataset": safe(report.get("dataset")),
            "cells": [{**c, "query_lang": safe(c["query_lang"]), "corpus_lang": safe(c["corpus_lang"])} for c in report["cells"]],
            "bias": {k: ({**v, "per_lang": {safe(lang): x for lang, x in v.get("per_lang", {}).items()}} if isinstance(v, dict) else
                         [{**e, "lang": safe(e.get("lang"))} for e in v] if k == "visibility" else v) for k, v in bias.items()}}


def print_report(console: Console, report: dict) -> None:
    report = _inert_report(report)
    console.print(family_table(report))
    matrix = matrix_table(report)
    console.print(matrix if matrix is not None else per_language_table(report))
    bias = bias_table(report)
    if bias is not None:
        console.print(bias)


def comparison_table(before: dict, after: dict, before_label: str, after_label: str) -> Table:
    """Family means of two evaluations of one dataset side by side, with the change."""
    table = Table(title=f"{after['dataset']}: before and after fine-tuning (macro means)")
    for col in ("family", "metric", before_label, after_label, "Δ"):
        table.add_column(col, justify="left" if col in ("family", "metric") else "right")
    for family in ("mono", "cross", "multi"):
        b, a = before["summary"].get(family, {}), after["summary"].get(family, {})
        for metric in ("map", "r@1", "r@10"):
            if metric in b and metric in a:
                table.add_row(family, metric, _fmt(b[metric]), _fmt(a[metric]), _signed(a[metric] - b[metric]))
    rd_b = before.get("bias", {}).get("rank_distance", {}).get("macro")
    rd_a = after.get("bias", {}).get("rank_distance", {}).get("macro")
    if rd_b is not None and rd_a is not None:
        table.add_row("bias", "rank distance", _fmt(rd_b, 1), _fmt(rd_a, 1), f"{rd_a - rd_b:+.1f}")
    return table


def _signed(v: float | None) -> str:
    if v is None:
        return "–"
    return f"[green]{v:+.3f}[/]" if v > 0 else f"[red]{v:+.3f}[/]" if v < 0 else f"{v:+.3f}"


def print_comparison(console: Console, comparison) -> None:
    """The compare table, config differences and Δ matrices, as Rich renderables."""
    from xlbench.compare_tables import row_label

    from xlbench.text import MESSAGE_LIMIT, inert

    table = Table(title="comparison (Δ to the first column; * p<.05 ** p<.01 *** p<.001)",
                  caption=comparison.legend(), caption_justify="left")
    table.add_column("row")
    for label in comparison.columns:
        table.add_column(Text(inert(label)), justify="right", overflow="fold")
    for row in comparison.rows:
        best = row.best()
        cells = []
        digits = row.digits
        for k, cell in enumerate(row.cells):
            text = f"{cell.value:.{digits}f}" + (f"±{cell.std:.{digits}f}" if cell.std is not None else "")
            if k == best:
                text = f"[bold]{text}[/]"
            if cell.delta is not None:
                colour = "green" if (cell.delta > 0) != row.lower_is_better else "red"
                text += f" [{colour}]{cell.delta:+.{digits}f}{cell.mark}[/]"
                if cell.ci is not None:
                    text += f"\n[dim][{cell.ci[0]:+.{digits}f}, {cell.ci[1]:+.{digits}f}][/]"
            cells.append(text)
        table.add_row(row_label(row), *cells)
    console.print(table)
    for note in comparison.notes:
        console.print(Text.assemble(("note:", "yellow"), " ", inert(note, limit=MESSAGE_LIMIT)))
    if comparison.config_diff:
        diff = Table(title="config keys that differ")
        diff.add_column("key")
        for label in comparison.columns:
            diff.add_column(Text(inert(label)), overflow="fold")
        for key, values in comparison.config_diff.items():
            diff.add_row(*(Text(inert(v)) for v in (key, *values)))
        console.print(diff)
    if comparison.env_diff:
        env = Table(title="where the runs ran: facts that differ")
        env.add_column("fact")
        for run_id in comparison.env_runs:
            env.add_column(f"run {run_id}", overflow="fold")
        for key, values in comparison.env_diff.items():
            env.add_row(*(Text(inert(v)) for v in (key, *values)))
        console.print(env)
    for dataset, m in comparison.matrices.items():
        for k, delta in enumerate(m["delta"], start=1):
            grid = Table(title=Text(f"{inert(dataset)}: Δ mAP of {inert(comparison.columns[k])} vs {inert(comparison.columns[0])} "
                                    "(rows: query language; columns: corpus language, all = multi)"),
                         box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), pad_edge=False)
            grid.add_column("q\\c")
            for col in m["columns"]:
                grid.add_column(Text(inert(col)), justify="right")
            for lang, row in zip(m["languages"], delta):
                grid.add_row(Text(inert(lang)), *(_signed(v) for v in row))
            console.print(grid)
