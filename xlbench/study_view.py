"""A :class:`~xlbench.core.sweeps.SweepStudy` on a terminal: the table (Rich or Markdown) and the
curves (plotext), shared by ``xlbench sweep show`` and the app's Sweep screen."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from xlbench.core.sweeps import StudyRow, SweepStudy
from xlbench.text import MESSAGE_LIMIT, inert


def _title(study: SweepStudy) -> str:
    datasets = sorted({r.dataset for r in study.rows})
    return inert(f"{', '.join(datasets)}: by {study.x_key}")


def study_table(study: SweepStudy) -> Table:
    table = Table(title=Text(_title(study)), caption=Text(inert(study.legend(), limit=MESSAGE_LIMIT)),
                  caption_justify="left")
    table.add_column(Text(inert(study.x_key)))
    table.add_column("runs", justify="right")
    for row in study.rows:
        table.add_column(row.label + (" ↓" if row.lower_is_better else ""), justify="right")
    for k, x in enumerate(study.xs):
        cells = []
        for row in study.rows:
            marks = study.marks(row, k)
            best = _best(row) == k
            text = study.cell(row, k) + (f" {marks}" if marks else "")
            cells.append(Text(text, style="bold" if best else ""))
        n = {p.n for row in study.rows for p in row.points[k:k + 1]}
        table.add_row(Text(inert(x)), "/".join(map(str, sorted(n))), *cells)
    return table


def study_markdown(study: SweepStudy) -> str:
    lines = [f"| {inert(study.x_key)} | runs | " + " | ".join(r.label + (" ↓" if r.lower_is_better else "") for r in study.rows) + " |",
             "|---|---|" + "---|" * len(study.rows)]
    for k, x in enumerate(study.xs):
        cells = []
        for row in study.rows:
            text = study.cell(row, k)
            if _best(row) == k:
                text = f"**{text}**"
            marks = study.marks(row, k)
            cells.append(text + (f" {marks}" if marks else ""))
        n = sorted({row.points[k].n for row in study.rows})
        lines.append(f"| {inert(x)} | {'/'.join(map(str, n))} | " + " | ".join(cells) + " |")
    lines += ["", inert(study.legend(), limit=MESSAGE_LIMIT) + ". Bold: best mean in the column.", ""]
    lines += [f"- Power: {line}" for line in study.power_lines()]
    lines += [f"- Note: {inert(n, limit=MESSAGE_LIMIT)}" for n in study.notes]
    return "\n".join(lines) + "\n"


def _best(row: StudyRow) -> int:
    means = [p.mean for p in row.points]
    return means.index(min(means) if row.lower_is_better else max(means))


def draw_row(plt, study: SweepStudy, row: StudyRow, *, legend: bool = True) -> None:
    """One curve on a plotext figure (or a textual-plotext widget's ``plt``): the mean per point
    with its 95 % interval as error bars, each seed's value as a dot, and the significance marks
    (a / b against the references) written above the points."""
    numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in study.xs)
    xs = [float(x) for x in study.xs] if numeric else list(range(len(study.xs)))
    means = [p.mean for p in row.points]
    plt.plot(xs, means, marker="hd", label="mean" if legend else None)
    errors = [p.half_width or 0.0 for p in row.points]
    if any(errors):
        plt.error(xs, means, yerr=errors)
    dots_x = [x for x, p in zip(xs, row.points) for _ in p.values]
    dots_y = [v for p in row.points for v in p.values]
    plt.scatter(dots_x, dots_y, marker="dot", label="seeds" if legend else None)
    lows = [m - e for m, e in zip(means, errors)]
    highs = [m + e for m, e in zip(means, errors)]
    low, high = min(lows + dots_y), max(highs + dots_y)
    pad = (high - low) * 0.25 or abs(high) * 0.01 or 0.01
    plt.ylim(low - pad * 0.5, high + pad)
    for k, x in enumerate(xs):  # letters only on the curve (the table has the stars)
        letters = "".join(m[0] for m in study.marks(row, k).split())
        if letters:
            plt.text(letters, x, highs[k] + pad * 0.5, alignment="center")
    plt.xticks(xs, [f"{x:g}" for x in xs] if numeric else [str(x) for x in study.xs])
    plt.title(f"{row.label}{' (lower is better)' if row.lower_is_better else ''}")  # plotext drops a title wider than the plot
    plt.xlabel(study.x_key)


def study_figure(study: SweepStudy, width: int, height: int, *, colour: bool) -> str:
    """Every row of the study as a grid of small plots, built as text by plotext."""
    import re

    import plotext as plt

    plt.clear_figure()
    cols = 2 if len(study.rows) > 1 else 1
    rows = -(-len(study.rows) // cols)
    plt.subplots(rows, cols)
    plt.plotsize(width, height)
    for i, row in enumerate(study.rows):
        plt.subplot(i // cols + 1, i % cols + 1)
        if not colour:
            plt.theme("clear")
        draw_row(plt, study, row)
    text = plt.build()
    if not colour:  # plotext's "clear" theme still ends lines with colour resets
        text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    return text
