"""Two or more runs side by side: the compare table with Δ and significance marks, the loss
curves overlaid, and the Δ heatmap. Uses the same core functions as `xlbench compare`."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Footer, Header, Static, TabbedContent, TabPane

from xlbench.text import MESSAGE_LIMIT, inert
from xlbench.tui.screens.tabbed import TabbedScreen, tab_bindings
from xlbench.tui.widgets.heatmap import Heatmap
from xlbench.tui.widgets.loss_plot import LossPlot


class CompareScreen(TabbedScreen):
    BINDINGS = [
        Binding("escape", "app.back", "back"),
        Binding("right_square_bracket", "next_delta", "next Δ", show=False),
        *tab_bindings(("tab-table", "table"), ("tab-curves", "loss"), ("tab-delta", "Δ heatmap"), ("tab-diff", "config")),
    ]

    def __init__(self, run_ids: list[int]) -> None:
        super().__init__()
        self.run_ids = run_ids
        self.comparison = None
        self.delta_index = 0

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"comparing runs {', '.join(map(str, self.run_ids))} (paired tests running…)", id="compare-status")
        with TabbedContent(id="compare-tabs"):
            with TabPane("Table", id="tab-table"):
                yield DataTable(id="compare-table", zebra_stripes=True)
            with TabPane("Loss", id="tab-curves"):
                yield LossPlot(title="training loss", id="curves")
            with TabPane("Δ heatmap", id="tab-delta"):
                with VerticalScroll():
                    yield Heatmap("…", id="delta")
            with TabPane("Config", id="tab-diff"):
                with VerticalScroll():
                    yield Static("", id="config-diff")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "compare"
        self.load()

    @work(thread=True, exclusive=True, group="compare")
    def load(self) -> None:
        """The loss curves from the store; the paired tests (10,000 permutations per row) in an
        ``xlbench compare --format json`` process, so the app's own process stays light."""
        import json

        from xlbench.core.compare import Comparison
        from xlbench.errors import XlbenchError

        store = self.app.store
        curves = {}
        for run_id in self.run_ids:
            pts = store.train_points(run_id, split="train")
            curves[f"run {run_id}"] = ([p.step for p in pts], [p.loss for p in pts])
        with_results = [i for i in self.run_ids if store.query_results_count(i)]
        missing = [i for i in self.run_ids if i not in with_results]
        comparison = None
        if len(with_results) >= 2:
            try:
                out = self.app.run_cli("compare", *map(str, with_results), "--format", "json",
                                       "--permutations", str(self.app.permutations))
                comparison = Comparison.from_dict(json.loads(out))
            except XlbenchError as exc:
                self.app.call_from_thread(self.app.show_error, str(exc))
        self.app.call_from_thread(self.show, comparison, curves, missing)

    def show(self, comparison, curves, missing) -> None:
        from xlbench.compare_tables import row_label

        self.comparison = comparison
        self.query_one("#curves", LossPlot).set_series({k: v for k, v in curves.items() if v[0]})
        status = self.query_one("#compare-status", Static)
        if comparison is None:
            status.update("fewer than two of these runs have results to compare")
            return
        note = f" · runs {', '.join(map(str, missing))} have no results (left out)" if missing else ""
        status.update(Text(inert(f"Δ to {comparison.columns[0]}; * p<.05 ** p<.01 *** p<.001 ({comparison.legend()}){note}"
                                 + "".join(f" · {n}" for n in comparison.notes), limit=20 * MESSAGE_LIMIT)))
        table = self.query_one("#compare-table", DataTable)
        table.clear(columns=True)
        table.add_column("row", key="row")
        for label in comparison.columns:
            table.add_column(Text(inert(label, limit=24)))
        for row in comparison.rows:
            digits = row.digits
            best = row.best()
            cells = []
            for k, cell in enumerate(row.cells):
                text = f"{cell.value:.{digits}f}" + ("◀" if k == best else "")
                if cell.delta is not None:
                    text += f" {cell.delta:+.{digits}f}{cell.mark}"
                cells.append(text)
            table.add_row(row_label(row), *cells)
        diff = "\n".join(f"{k}: " + " | ".join(str(v) for v in values) for k, values in comparison.config_diff.items())
        if comparison.env_diff:
            diff += ("\n\n" if diff else "") + f"where it ran (runs {' | '.join(comparison.env_runs)}):\n" + "\n".join(
                f"{k}: " + " | ".join(str(v) for v in values) for k, values in comparison.env_diff.items())
        self.query_one("#config-diff", Static).update(diff or "the configs are identical")
        self.show_delta()

    def show_delta(self) -> None:
        if not self.comparison or not self.comparison.matrices:
            self.query_one("#delta", Heatmap).update("no per-language matrix (no LAReQA results in common)")
            return
        dataset, m = next(iter(self.comparison.matrices.items()))
        k = self.delta_index % len(m["delta"])
        self.query_one("#delta", Heatmap).show(
            f"{dataset}: Δ mAP {self.comparison.columns[k + 1]} − {self.comparison.columns[0]} (] next)",
            m["languages"], m["columns"], m["delta"][k], diverging=True)

    def action_next_delta(self) -> None:
        self.delta_index += 1
        self.show_delta()
