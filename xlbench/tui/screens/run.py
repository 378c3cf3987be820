"""One run: config, live loss curve, mAP heatmap, bias ranking, events; cancel/resume/re-evaluate/export."""

from __future__ import annotations

import dataclasses
import json
import time

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Footer, Header, RichLog, Static, TabbedContent, TabPane

from xlbench.core.metrics import RANK_METRICS
from xlbench.store.views import duration
from xlbench.text import MESSAGE_LIMIT, inert
from xlbench.tui.screens.tabbed import TabbedScreen, poll_while_current, tab_bindings
from xlbench.tui.widgets.bias import BiasRanking
from xlbench.tui.widgets.heatmap import Heatmap
from xlbench.tui.widgets.loss_plot import LossPlot
from xlbench.tui.widgets.run_table import bar

HEAT_METRICS = tuple(RANK_METRICS)  # the metric registry's per-query metrics, t cycles through them
PLOT_SECONDS = 3.0


class RunScreen(TabbedScreen):
    BINDINGS = [
        Binding("escape", "app.back", "back"),
        Binding("x", "cancel_run", "cancel"),
        Binding("u", "resume_run", "resume"),
        Binding("e", "reevaluate", "re-evaluate"),
        Binding("o", "export_run", "export"),
        Binding("l", "toggle_lr", "lr"),
        Binding("left_square_bracket", "dataset(-1)", "prev set", show=False),
        Binding("right_square_bracket", "dataset(1)", "next set", show=False),
        Binding("t", "cycle_metric", "metric", show=False),
        *tab_bindings(("tab-loss", "loss"), ("tab-heatmap", "heatmap"), ("tab-bias", "bias"), ("tab-config", "config"),
                      ("tab-events", "events")),
    ]

    def __init__(self, run_id: int) -> None:
        super().__init__()
        self.run_id = run_id
        self.points: dict[str, tuple[list[float], list[float]]] = {"train": ([], []), "val": ([], []), "lr": ([], [])}
        self.last_point = 0
        self.last_event = 0
        self.detail = None
        self.dataset_index = 0
        self.metric_index = 0
        self.plot_dirty = False
        self.plotted_at = 0.0

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="run-top"):
            yield Static("", id="run-info")
            yield Static("", id="run-progress")
        with TabbedContent(id="run-tabs"):
            with TabPane("Loss", id="tab-loss"):
                yield LossPlot(title="loss (train, val)", id="loss")
            with TabPane("Heatmap", id="tab-heatmap"):
                with VerticalScroll():
                    with Horizontal(id="heat-row"):
                        yield Heatmap("no results yet", id="heatmap")
                        yield Static("", id="family-means")
            with TabPane("Bias", id="tab-bias"):
                with VerticalScroll():
                    yield BiasRanking("no results yet", id="bias")
            with TabPane("Config", id="tab-config"):
                with VerticalScroll():
                    yield Static("", id="config")
            with TabPane("Events", id="tab-events"):
                yield RichLog(id="events", wrap=True, markup=True)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"run {self.run_id}"
        poll_while_current(self, self.app.poll_seconds)

    @work(thread=True, exclusive=True, group="poll-run")
    def poll(self) -> None:
        """Each second: the run row and what is new (points, events); results only when the run's
        status or phase changed, since they are written once per dataset."""
        from xlbench.store.views import run_detail

        store = self.app.store
        self.app.reap()
        run = store.get_run(self.run_id)
        detail = self.detail
        if detail is None or (run.status, run.phase) != (detail.run.status, detail.run.phase):
            detail = run_detail(store, self.run_id)
        else:
            detail = dataclasses.replace(detail, run=run)
        points = store.train_points(self.run_id, after_id=self.last_point)
        events = store.events(self.run_id, after_id=self.last_event)
        self.app.call_from_thread(self.apply, detail, points, events)

    def apply(self, detail, points, events) -> None:
        first = self.detail is None
        if first and detail.run.kind == "eval":  # nothing to plot: open on the results
            self.query_one("#run-tabs", TabbedContent).active = "tab-heatmap"
        self.detail = detail
        if points:
            self.last_point = points[-1].id
            for p in points:
                xs, ys = self.points["val" if p.split == "val" else "train"]
                xs.append(p.step)
                ys.append(p.loss)
                if p.lr is not None:
                    self.points["lr"][0].append(p.step)
                    self.points["lr"][1].append(p.lr)
            self.plot_dirty = True
        # Drawing the curve is the app's main cost (plotext builds it in Python); while a worker
        # trains on the same machine, redraw at most every PLOT_SECONDS.
        live = detail.run.status == "running"
        if first or (self.plot_dirty and (not live or time.monotonic() - self.plotted_at >= PLOT_SECONDS)):
            self.redraw_loss()
        log = self.query_one("#events", RichLog)
        for e in events:
            colour = {"error": "red", "warning": "yellow"}.get(e.level, "dim")
            log.write(Text.assemble((f"{e.ts:%H:%M:%S}", colour), " ", inert(e.message, limit=MESSAGE_LIMIT, newlines=True)))
        if events:
            self.last_event = events[-1].id
        self.show_info(detail)
        self.show_results()

    def redraw_loss(self) -> None:
        self.plot_dirty, self.plotted_at = False, time.monotonic()
        plot = self.query_one(LossPlot)
        series = {"train": self.points["train"], "val": self.points["val"]}
        steps, losses = self.points["train"]
        if len(losses) > 20:  # per-step loss is noisy (mono and cross batches alternate): add a smoothed line
            smooth, ema = [], 0.0
            for i, v in enumerate(losses, start=1):
                ema = 0.9 * ema + 0.1 * v
                smooth.append(ema / (1 - 0.9**i))  # bias-corrected: no lag from a zero start
            series["train (EMA 0.9)"] = (steps, smooth)
        if plot.show_lr:
            peak = max(self.points["lr"][1] or [1.0]) or 1.0
            top = max(self.points["train"][1] or [1.0])
            series["lr"] = (self.points["lr"][0], [v / peak * top for v in self.points["lr"][1]])
        plot.title = "loss (train, val" + (", lr scaled to the loss axis)" if plot.show_lr else ")")
        plot.set_series(series)

    def show_info(self, detail) -> None:
        from xlbench.store.views import configured_model, eta_seconds, progress_fraction

        run, config, env = detail.run, detail.config, detail.env
        model = env.get("model", {}).get("label") or configured_model(config)
        from xlbench.runs.executors import placement

        where = placement(run) if run.job_id else ""  # a scheduler's job and node; a local run's host is in its config tab
        # stored text goes in as Text (never markup): a name cannot style, link or escape the terminal
        lines = [Text(inert(f"{run.id}: {run.name}"), style="bold"),
                 Text(inert(f"{run.kind} · model {model}" + (f" · {where}" if where else ""), limit=MESSAGE_LIMIT))]
        if run.kind == "train":
            s = config.get("sampler", {})
            t = config.get("train", {})
            opts = ", ".join(f"{k}={v}" for k, v in s.items() if k != "name")
            lines.append(Text(inert(f"sampler {s.get('name')} {opts} · batch {t.get('batch_size')} · lr {t.get('lr')} · "
                                    f"seed {t.get('seed')}", limit=MESSAGE_LIMIT)))
            lines.append(Text(inert(f"data {config.get('data', {}).get('kind')} → eval "
                                    f"{', '.join(str(d.get('name')) for d in config.get('eval', {}).get('datasets', []))}",
                                    limit=MESSAGE_LIMIT)))
        self.query_one("#run-info", Static).update(Text("\n").join(lines))
        eta = eta_seconds(run.status, run.progress_done, run.progress_total, run.started_at, self.app.now())
        status = [Text.assemble((inert(run.status), "bold"), " ", inert(run.phase)),
                  Text(bar(progress_fraction(run.status, run.progress_done, run.progress_total), 16)),
                  Text(f"{run.progress_done or 0}/{run.progress_total or '?'}" + (f" · ETA {duration(eta)}" if eta else ""))]
        if run.error:
            status.append(Text(inert(run.error, limit=MESSAGE_LIMIT), style="red"))
        self.query_one("#run-progress", Static).update(Text("\n").join(status))
        self.query_one("#config", Static).update(config_text(config, env))

    def show_results(self) -> None:
        reports = self.detail.reports if self.detail else []
        if not reports:
            return
        report = reports[self.dataset_index % len(reports)]
        metric = HEAT_METRICS[self.metric_index]
        cells = report["cells"]
        langs = sorted({c["query_lang"] for c in cells})
        value = {(c["query_lang"], c["corpus_lang"]): c["metrics"].get(metric) for c in cells}
        columns = langs + (["all"] if any(c["setting"] == "multi" for c in cells) else [])
        grid = [[value.get((q, c)) for c in columns] for q in langs]
        self.query_one(Heatmap).show(f"{report['dataset']} · {metric} (query × corpus)", langs, columns, grid)
        means = Table(title="family means", show_edge=False, pad_edge=False)
        means.add_column("family")
        means.add_column(metric, justify="right")
        for family in ("mono", "cross", "multi"):
            if metric in report["summary"].get(family, {}):
                means.add_row(family, f"{report['summary'][family][metric]:.3f}")
        self.query_one("#family-means", Static).update(means)
        self.query_one(BiasRanking).show(report)

    # --- actions --------------------------------------------------------------------

    def action_toggle_lr(self) -> None:
        plot = self.query_one(LossPlot)
        plot.show_lr = not plot.show_lr
        self.redraw_loss()

    def action_dataset(self, step: int) -> None:
        self.dataset_index += step
        self.show_results()

    def action_cycle_metric(self) -> None:
        self.metric_index = (self.metric_index + 1) % len(HEAT_METRICS)
        self.show_results()

    def action_cancel_run(self) -> None:
        from xlbench.tui.screens.dialogs import ConfirmDialog

        def done(yes: bool) -> None:
            if yes:
                from xlbench.runs.executors import cancel

                self.app.guard(lambda: cancel(self.app.store, self.run_id), f"cancel requested for run {self.run_id}",
                               busy=f"cancelling run {self.run_id}…")

        self.app.push_screen(ConfirmDialog(f"Cancel run {self.run_id}? It stops at its next step and keeps a checkpoint."), done)

    def action_resume_run(self) -> None:
        from xlbench.runs.launch import resume

        self.app.guard(lambda: resume(self.app.store, self.run_id),
                       f"run {self.run_id} queued again; a worker resumes it from its last checkpoint",
                       busy=f"resuming run {self.run_id}…")

    def action_reevaluate(self) -> None:
        self.app.guard(lambda: self.app.reevaluate(self.run_id), None, busy=f"queuing a re-evaluation of run {self.run_id}…")

    def action_export_run(self) -> None:
        from xlbench.tui.screens.dialogs import InputDialog

        def write(path: str | None) -> None:
            if path:
                self.app.guard(lambda: self.app.export_runs([self.run_id], path), f"run {self.run_id} exported to {path}",
                               busy=f"exporting run {self.run_id} to {path}…")

        self.app.push_screen(InputDialog("Export this run's full record to:", f"run-{self.run_id}.json"), write)


def config_text(config: dict, env: dict):
    """The config tab: the run's whole config, then where it ran."""
    from rich.text import Text

    from xlbench.core.facts import summary_lines

    return Text(json.dumps(config, indent=2) + "\n\nwhere it ran\n" + "\n".join(summary_lines(env)))
