"""The live table of runs on the home screen: one row per run, multi-select with space."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.binding import Binding
from textual.message import Message

from xlbench.text import inert
from textual.widgets import DataTable

from xlbench.store.views import RunSummary, duration

STATUS_STYLE = {"running": "bold cyan", "finished": "green", "failed": "bold red", "cancelled": "yellow",
                "lost": "bold magenta", "queued": "dim"}
COLUMNS = [("", "sel", 1), ("id", "id", 4), ("name", "name", 22), ("model", "model", 16), ("sampler α", "sampler", 12),
           ("status", "status", 9), ("progress", "progress", 14), ("step", "step", 9), ("loss", "loss", 6),
           ("smp/s", "sps", 6), ("ETA", "eta", 6), ("mAP m/c/x", "map", 14)]
# below this width (80×24 terminals) the table keeps only what fits
COMPACT_BELOW = 130
COMPACT = {"sel": 1, "id": 3, "name": 15, "sampler": 10, "status": 9, "progress": 9, "map": 14}


def bar(fraction: float | None, width: int = 8, percent: bool = True) -> str:
    if fraction is None:
        return ""
    full = int(round(fraction * width))
    return "█" * full + "░" * (width - full) + (f" {fraction:>4.0%}" if percent else "")


def cells(run: RunSummary, now: datetime, selected: bool, compact: bool = False) -> list:
    sampler = run.sampler if run.alpha is None else f"{run.sampler} {run.alpha:g}"
    h = run.headline
    maps = "/".join(f"{h[f]:.2f}".lstrip("0") if f in h else "–" for f in ("mono", "cross", "multi")) if h else ""
    step = f"{run.done}/{run.total}" if run.total else ""
    return [
        "●" if selected else " ", str(run.id), Text(inert(run.name)), Text(inert(run.model.split("/")[-1], limit=40)),
        Text(inert(sampler)),
        Text(run.status, style=STATUS_STYLE.get(run.status, "")), bar(run.progress(), 4 if compact else 8), step,
        f"{run.loss:.3f}" if run.loss is not None else "", f"{run.samples_per_s:.0f}" if run.samples_per_s else "",
        duration(run.eta_seconds(now)), maps,
    ]


class RunTable(DataTable):
    """Rows keyed by run id; updates in place so the cursor never jumps."""

    BINDINGS = [Binding("space", "toggle_select", "select", show=True)]

    class Selected(Message):
        """Enter on a row: open that run."""

        def __init__(self, run_id: int) -> None:
            super().__init__()
            self.run_id = run_id

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.selected: set[int] = set()
        self.runs: dict[int, RunSummary] = {}
        self.order: list[int] = []

        self.compact: bool | None = None
        self.now: datetime | None = None

    def _columns(self) -> list[tuple[str, str, int]]:
        if not self.compact:
            return COLUMNS
        return [(label, key, COMPACT[key]) for label, key, _ in COLUMNS if key in COMPACT]

    def _cells(self, run: RunSummary) -> list:
        values = cells(run, self.now, run.id in self.selected, bool(self.compact))
        return [v for (_, key, _), v in zip(COLUMNS, values) if not self.compact or key in COMPACT]

    def on_resize(self) -> None:
        compact = self.size.width < COMPACT_BELOW
        if compact != self.compact and self.now is not None:
            self.show(list(self.runs.values()), self.now, rebuild=True)

    def show(self, runs: list[RunSummary], now: datetime, *, rebuild: bool = False) -> None:
        self.now = now
        compact = self.size.width < COMPACT_BELOW if self.size.width else False
        if compact != self.compact:
            self.compact, rebuild = compact, True
            self.clear(columns=True)
            for label, key, width in self._columns():
                self.add_column(label, key=key, width=width)
        ids = [r.id for r in runs]
        if ids != self.order or rebuild:
            current = self.cursor_row
            self.clear()
            for run in runs:
                self.add_row(*self._cells(run), key=str(run.id))
            self.order = ids
            if runs:
                self.move_cursor(row=min(current, len(runs) - 1))
        else:
            for run in runs:
                if self.runs.get(run.id) != run or run.status == "running":
                    for (_, key, _), value in zip(self._columns(), self._cells(run)):
                        self.update_cell(str(run.id), key, value)
        self.runs = {r.id: r for r in runs}

    def current_run(self) -> int | None:
        if not self.order or self.cursor_row is None or self.cursor_row >= len(self.order):
            return None
        return self.order[self.cursor_row]

    def action_toggle_select(self) -> None:
        run_id = self.current_run()
        if run_id is None:
            return
        self.selected ^= {run_id}
        self.update_cell(str(run_id), "sel", "●" if run_id in self.selected else " ")

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.post_message(self.Selected(int(event.row_key.value)))
