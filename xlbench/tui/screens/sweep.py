"""Sweeps: the list, and one sweep as a study — each family's curve against the grid value with
95 % intervals over seeds and significance marks, the table behind it, and every run (enter opens
one; enter on a table row compares that point's seeds). Uses the same core functions as
``xlbench sweep show``; the tests run in an ``xlbench`` process from a worker thread, never on a
frame, and a sweep's study is kept per set of finished runs, so reopening it is instant. Below
``SweepScreen.COMPACT_BELOW`` the four curves are shown one at a time (``[`` / ``]``)."""

from __future__ import annotations

import dataclasses
import json

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static, TabbedContent, TabPane
from textual_plotext import PlotextPlot

from xlbench.text import MESSAGE_LIMIT, inert
from xlbench.tui.screens.tabbed import TabbedScreen, poll_while_current, tab_bindings

FAMILY_COLUMNS = (("mono", "map"), ("cross", "map"), ("multi", "map"))


class SweepsScreen(Screen):
    """Every sweep with how far it got; enter opens one."""

    BINDINGS = [Binding("escape", "app.back", "back"), Binding("enter", "open", "open", show=False)]

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="sweeps", cursor_type="row", zebra_stripes=True)
        yield Static("", id="sweeps-status")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "sweeps"
        table = self.query_one("#sweeps", DataTable)
        for col in ("id", "name", "grid", "finished", "running", "queued", "other"):
            table.add_column(col, key=col)
        table.focus()
        poll_while_current(self, self.app.poll_seconds * 2)

    @work(thread=True, exclusive=True, group="poll-sweeps")
    def poll(self) -> None:
        store = self.app.store
        rows = []
        for sweep in store.sweeps():
            _, runs = store.sweep(sweep.id)
            counts = {s: sum(r.status == s for r in runs) for s in ("finished", "running", "queued")}
            rows.append((sweep.id, sweep.name, json.loads(sweep.grid_json), counts, len(runs) - sum(counts.values())))
        self.app.call_from_thread(self.show, rows)

    def show(self, rows) -> None:
        table = self.query_one("#sweeps", DataTable)
        cursor = table.cursor_row
        table.clear()
        for sweep_id, name, grid, counts, other in rows:
            grid_text = " × ".join(f"{k}={','.join(map(str, v))}" for k, v in grid.items())
            table.add_row(str(sweep_id), Text(inert(name)), Text(inert(grid_text, limit=MESSAGE_LIMIT)), str(counts["finished"]),
                          str(counts["running"]), str(counts["queued"]), str(other), key=str(sweep_id))
        if rows:
            table.move_cursor(row=min(cursor, len(rows) - 1))
        self.query_one("#sweeps-status", Static).update(
            f"{len(rows)} sweeps · enter: open" if rows else "no sweeps yet: xlbench sweep --preset alpha-study --grid "
            "sampler.alpha=0,0.25,0.5,0.75,1 --seeds 1,2,3 --run")

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.app.open_sweep(int(event.row_key.value))

    def action_open(self) -> None:
        table = self.query_one("#sweeps", DataTable)
        if table.row_count:
            self.app.open_sweep(int(table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value))


class StudyPlot(PlotextPlot):
    """One row of a study: mean, 95 % interval, seeds and significance letters."""

    shown: tuple | None = None

    def draw(self, study, row) -> None:
        from xlbench.study_view import draw_row

        self.shown = (study, row)
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        draw_row(plt, study, row, legend=self.size.height >= 14)  # a small plot keeps its lines for the data
        self.refresh()

    def on_resize(self) -> None:
        if self.shown:
            self.draw(*self.shown)


class SweepScreen(TabbedScreen):
    BINDINGS = [
        Binding("escape", "app.back", "back"),
        *tab_bindings(("tab-curves", "curves"), ("tab-table", "table"), ("tab-runs", "runs")),
        Binding("left_square_bracket", "curve(-1)", "prev curve"),
        Binding("right_square_bracket", "curve(1)", "next curve"),
    ]
    # Below this size four curves would be a few rows each with their legends cut: one at a time.
    COMPACT_BELOW = (110, 36)

    def __init__(self, sweep_id: int) -> None:
        super().__init__()
        self.sweep_id = sweep_id
        self.finished: tuple[int, ...] | None = None
        self.study = None
        self.summaries: dict[int, dict | None] = {}  # finished run id → its first dataset's report
        self.current = 0  # the curve shown when one is shown at a time
        self.provisional = False  # the study shown has means and intervals, its tests still running
        self.testing: tuple[int, ...] | None = None  # the finished runs a test process is running for

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"sweep {self.sweep_id}", id="sweep-status")
        with TabbedContent(id="sweep-tabs"):
            with TabPane("Curves", id="tab-curves"):
                yield Static("", id="curve-hint")
                with Grid(id="sweep-plots"):
                    for i in range(4):
                        yield StudyPlot(id=f"study-{i}")
            with TabPane("Table", id="tab-table"):
                yield DataTable(id="study-table", cursor_type="row", zebra_stripes=True)
                yield Static("", id="study-power")
            with TabPane("Runs", id="tab-runs"):
                yield DataTable(id="sweep-runs", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"sweep {self.sweep_id}"
        poll_while_current(self, self.app.poll_seconds * 2)

    @work(thread=True, exclusive=True, group="poll-sweep")
    def poll(self) -> None:
        """The sweep's runs each time; the study only when a run has finished: at once its means and
        intervals from the runs' stored numbers, then the marks when its tests over seeds, run in an
        ``xlbench sweep show --format json`` process (the app's own process stays light), return."""
        from xlbench.core.sweeps import grid_ends, provisional_study, study_from_dict, x_key_of
        from xlbench.errors import XlbenchError
        from xlbench.store.results import report_from_rows

        store = self.app.store
        self.app.reap()
        sweep, runs = store.sweep(self.sweep_id)
        finished = tuple(r.id for r in runs if r.status == "finished")
        study, final = self.study, True
        summaries = {}  # reports of runs finished since the last poll (a finished run's never change)
        for run_id in (i for i in finished if i not in self.summaries):
            reports = report_from_rows(store.metrics(run_id))
            summaries[run_id] = reports[0] if reports else None
        if finished != self.finished or self.provisional:
            study = self.app.sweep_studies.get((self.sweep_id, finished))  # opened before: no new tests
            if study is None and finished and self.testing == finished:  # an earlier poll's tests are running
                study, final = self.study, False
            elif study is None and finished:
                self.testing = finished
                known = {**self.summaries, **summaries}
                grid = json.loads(sweep.grid_json)
                quick = provisional_study([(r.id, json.loads(r.config_json or "{}"), known.get(r.id)) for r in runs
                                           if r.id in finished], x_key_of(grid), ends=grid_ends(grid))
                self.app.call_from_thread(self.show, sweep, runs, finished, quick, summaries, final=False)
                summaries = {}
                try:
                    out = self.app.run_cli("sweep", "show", str(self.sweep_id), "--format", "json")
                    study = study_from_dict(json.loads(out))
                    self.app.sweep_studies[(self.sweep_id, finished)] = study
                except XlbenchError as exc:  # the means stay, without marks, and the tests are not retried
                    study = dataclasses.replace(quick, notes=[f"tests over seeds not available: {exc}"])
                    self.app.sweep_studies[(self.sweep_id, finished)] = study
                    self.app.call_from_thread(self.app.show_error, str(exc))
                finally:
                    self.testing = None
        self.app.call_from_thread(self.show, sweep, runs, finished, study, summaries, final=final)

    def show(self, sweep, runs, finished, study, summaries, final: bool = True) -> None:
        from xlbench.core.compare import flatten
        from xlbench.core.sweeps import SEED_KEY, x_key_of

        grid = json.loads(sweep.grid_json)
        x_key = x_key_of(grid)
        counts = {}
        for r in runs:
            counts[r.status] = counts.get(r.status, 0) + 1
        legend = study.legend() if study and study.rows else "no finished runs yet: the curves appear as runs finish"
        self.query_one("#sweep-status", Static).update(Text.assemble(
            (inert(f"sweep {sweep.id}: {sweep.name}"), "bold"),
            inert(f" · {' × '.join(f'{k}={v}' for k, v in grid.items())} · "
                  + " · ".join(f"{n} {s}" for s, n in sorted(counts.items())), limit=MESSAGE_LIMIT),
            "\n", inert(legend, limit=MESSAGE_LIMIT)))
        table = self.query_one("#sweep-runs", DataTable)
        if not table.columns:
            for col in ("run", x_key.rsplit(".", 1)[-1], "seed", "status", "progress", "mono", "cross", "multi",
                        "rank dist"):
                table.add_column(col)
        self.summaries.update(summaries)
        cursor = table.cursor_row
        table.clear()
        for r in runs:
            flat = flatten(json.loads(r.config_json or "{}"))
            report = self.summaries.get(r.id)
            values = [f"{report['summary'][f][m]:.3f}" if report and m in report["summary"].get(f, {}) else "–"
                      for f, m in FAMILY_COLUMNS]
            bias = (report or {}).get("bias", {}).get("rank_distance", {}).get("macro")
            table.add_row(str(r.id), Text(inert(flat.get(x_key))), Text(inert(flat.get(SEED_KEY))), Text(inert(r.status)),
                          Text(inert(f"{r.phase or ''} {r.progress_done or 0}/{r.progress_total or '?'}")), *values,
                          f"{bias:.1f}" if bias is not None else "–", key=str(r.id))
        if runs:
            table.move_cursor(row=min(cursor, len(runs) - 1))
        if finished != self.finished or self.provisional:
            self.finished, self.study, self.provisional = finished, study, not final
            self.show_study()

    def show_study(self) -> None:
        study = self.study
        table = self.query_one("#study-table", DataTable)
        table.clear(columns=True)
        plots = list(self.query(StudyPlot))
        power = self.query_one("#study-power", Static)
        if not study or not study.rows:
            power.update("")
            for plot in plots:
                plot.display = False
            self.query_one("#curve-hint", Static).display = False
            return
        power.update(Text(inert("\n".join([f"power: {line}" for line in study.power_lines()]  # the legend is above
                                          + [f"note: {note}" for note in study.notes]), limit=20 * MESSAGE_LIMIT, newlines=True)))
        table.add_column(Text(inert(study.x_key.rsplit(".", 1)[-1])), key="x")
        table.add_column("runs")
        for row in study.rows:
            table.add_column(row.label + (" ↓" if row.lower_is_better else ""))
        for k, x in enumerate(study.xs):
            cells = []
            for row in study.rows:
                marks = study.marks(row, k)
                cells.append(study.cell(row, k) + (f" {marks}" if marks else ""))
            table.add_row(Text(inert(x)), str(study.rows[0].points[k].n), *cells, key=str(k))
        self.layout_plots()
        for plot, row in zip(plots, study.rows):
            plot.draw(study, row)

    @property
    def compact(self) -> bool:
        width, height = self.COMPACT_BELOW
        return self.size.width < width or self.size.height < height

    def layout_plots(self) -> None:
        """Four curves in a grid, or (below ``COMPACT_BELOW``) one at a time with ``[`` / ``]``."""
        rows = self.study.rows if self.study else []
        compact = self.compact and len(rows) > 1
        self.query_one("#sweep-plots", Grid).set_class(compact, "single")
        for i, plot in enumerate(self.query(StudyPlot)):
            plot.display = i < len(rows) and (not compact or i == self.current % len(rows))
        hint = self.query_one("#curve-hint", Static)
        hint.display = compact
        if compact:
            k = self.current % len(rows)
            hint.update(Text(inert(f"curve {k + 1} of {len(rows)}: {rows[k].label} · [ and ] switch "
                                   "(a larger terminal shows all four)")))

    def on_resize(self) -> None:
        if self.study is not None:
            self.layout_plots()

    def action_curve(self, step: int) -> None:
        if self.study and self.study.rows:
            self.current = (self.current + step) % len(self.study.rows)
            self.layout_plots()

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        for table in event.pane.query(DataTable):  # the table of a tab takes the keys (enter opens)
            table.focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "sweep-runs":
            self.app.open_run(int(event.row_key.value))
        elif event.data_table.id == "study-table" and self.study:
            point = self.study.rows[0].points[int(event.row_key.value)]
            if len(point.run_ids) > 1:
                self.app.open_compare(point.run_ids)
            else:
                self.app.open_run(point.run_ids[0])
