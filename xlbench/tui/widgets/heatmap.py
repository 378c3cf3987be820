"""Query language × corpus language matrix, colour-scaled, numbers kept readable."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from xlbench.heatmap import cell_colour, readable_on


def heatmap_table(title: str, rows: list[str], columns: list[str], values: list[list[float | None]],
                  *, diverging: bool = False, digits: int = 3, cell_width: int = 7) -> Table:
    flat = [v for row in values for v in row if v is not None]
    lo, hi = (min(flat), max(flat)) if flat else (0.0, 1.0)
    table = Table(title=title, show_edge=False, pad_edge=False, padding=(0, 0), expand=False)
    table.add_column("q\\c", justify="left")
    for col in columns:
        table.add_column(col, justify="right")
    for name, row in zip(rows, values):
        rendered = []
        for v in row:
            if v is None:
                rendered.append(Text("–".center(cell_width)))
                continue
            rgb = cell_colour(v, lo, hi, diverging)
            bg, fg = f"rgb{rgb}".replace(" ", ""), readable_on(rgb)
            text = f"{v:+.{digits}f}" if diverging else f"{v:.{digits}f}".lstrip("0")
            rendered.append(Text(text.center(cell_width), style=f"{fg} on {bg}"))
        table.add_row(name, *rendered)
    return table


MIN_CELL, MAX_CELL = 7, 12


class Heatmap(Static):
    """Cells as wide as the widget allows (7 to 12 columns each); redrawn when it is resized."""

    shown: tuple | None = None

    def show(self, title: str, rows: list[str], columns: list[str], values, *, diverging: bool = False) -> None:
        self.shown = (title, rows, columns, values, diverging)
        label = max((len(r) for r in rows), default=3) + 1
        width = max(MIN_CELL, min(MAX_CELL, (self.size.width - label) // max(1, len(columns)))) if self.size.width else MIN_CELL
        self.update(heatmap_table(title, rows, columns, values, diverging=diverging, cell_width=width))

    def on_resize(self) -> None:
        if self.shown:
            title, rows, columns, values, diverging = self.shown
            self.show(title, rows, columns, values, diverging=diverging)
