"""Languages ranked by how visible their answers are in the multilingual pool: the table, and the
same numbers as bars (each language's mean rank in the pool, and each query language's rank
distance), side by side when the terminal is wide, one above the other when it is not."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widget import Widget

EIGHTHS = " ▏▎▍▌▋▊▉█"
SIDE_BY_SIDE = 110  # columns from which the bars go beside the table


def hbar(value: float, top: float, width: int) -> str:
    """A horizontal bar of ``value / top`` of ``width`` cells, in eighths of a cell."""
    if not top > 0 or value != value:  # nothing to scale by, or NaN
        return ""
    eighths = int(round(max(0.0, min(1.0, value / top)) * width * 8))
    full, part = divmod(eighths, 8)
    return "█" * full + (EIGHTHS[part] if part else "")


def _bars(title: str, items: list[tuple[str, float]], width: int, style: str) -> Group:
    top = max((v for _, v in items if v == v), default=0.0)
    lines = [Text(title, style="bold")]
    for lang, value in items:
        line = Text(f"{lang:>5} ")
        line.append(hbar(value, top, width).ljust(width), style=style)
        line.append(f" {value:7.1f}")
        lines.append(line)
    return Group(*lines)


def bias_bars(report: dict, width: int) -> Group:
    """Visibility (mean rank of each language's answers in the pool: shorter is more visible) and
    each query language's rank distance (how far its own-language answers sit ahead of the others:
    shorter is less biased), as bars ``width`` cells long at most."""
    bias = report.get("bias") or {}
    visibility = [(item["lang"], item["mean_rank"]) for item in bias.get("visibility", [])]
    distance = sorted(bias.get("rank_distance", {}).get("per_lang", {}).items(), key=lambda kv: -kv[1])
    return Group(
        _bars("visibility: mean rank of each language's answers in the pool (shorter = more visible)", visibility,
              width, "cyan"),
        Text(""),
        _bars("rank distance per query language (shorter = less language bias)", distance, width, "magenta"),
    )


def bias_view(report: dict, width: int):
    """Table and bars laid out for ``width`` columns."""
    from xlbench.console import bias_table

    table = bias_table(report)
    if width >= SIDE_BY_SIDE:
        layout = Table.grid(padding=(0, 3))
        layout.add_column()
        layout.add_column()
        layout.add_row(table, bias_bars(report, max(10, width - 70 - 16)))
        return layout
    return Group(table, Text(""), bias_bars(report, max(10, width - 16)))


class BiasRanking(Widget):
    """The bias tab: redrawn for its own width."""

    DEFAULT_CSS = "BiasRanking { height: auto; }"

    def __init__(self, placeholder: str = "", **kwargs) -> None:
        super().__init__(**kwargs)
        self.placeholder = placeholder
        self.report: dict | None = None

    def show(self, report: dict) -> None:
        self.report = report
        self.refresh(layout=True)

    def render(self):
        if self.report is None:
            return self.placeholder
        if not self.report.get("bias"):
            return "no multilingual results for this dataset"
        return bias_view(self.report, self.size.width or 80)
