"""Home: every run, live. Runs started anywhere (headless over SSH, the queue) appear here."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Static

from xlbench.tui.screens.tabbed import poll_while_current
from xlbench.tui.widgets.run_table import RunTable

SORTS = [("newest", lambda r: -r.id), ("status", lambda r: (r.status, -r.id)),
         ("multi mAP", lambda r: -(r.headline.get("multi") or -1)), ("name", lambda r: r.name.lower())]


class RunsScreen(Screen):
    BINDINGS = [
        Binding("enter", "open", "open", show=False),
        Binding("c", "compare", "compare"),
        Binding("slash", "filter", "filter"),
        Binding("s", "sort", "sort"),
        Binding("escape", "clear_filter", "clear", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.sort_index = 0
        self.filter_text = ""
        self.summaries = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="filter: name, model, sampler, status…", id="filter", classes="hidden", disabled=True)
        yield RunTable(id="runs")
        yield Static("", id="runs-status")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "runs"
        self.query_one(RunTable).focus()
        poll_while_current(self, self.app.poll_seconds)

    @work(thread=True, exclusive=True, group="poll-runs")
    def poll(self) -> None:
        from xlbench.store.views import runs_overview

        store = self.app.store
        self.app.reap()
        summaries = runs_overview(store)
        self.app.call_from_thread(self.show, summaries)

    def show(self, summaries) -> None:
        self.summaries = summaries
        label, key = SORTS[self.sort_index]
        text = self.filter_text.lower()
        shown = [r for r in summaries if not text or text in f"{r.name} {r.model} {r.sampler} {r.status} {r.kind}".lower()]
        shown.sort(key=key)
        self.query_one(RunTable).show(shown, self.app.now())
        counts = {}
        for r in summaries:
            counts[r.status] = counts.get(r.status, 0) + 1
        parts = " · ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        selected = len(self.query_one(RunTable).selected)
        self.query_one("#runs-status", Static).update(
            f"{len(shown)}/{len(summaries)} runs ({parts}) · sort: {label}" + (f" · filter: {self.filter_text}" if text else "")
            + (f" · {selected} selected (c: compare)" if selected else ""))

    def on_run_table_selected(self, message: RunTable.Selected) -> None:
        self.app.open_run(message.run_id)

    def action_open(self) -> None:
        run_id = self.query_one(RunTable).current_run()
        if run_id is not None:
            self.app.open_run(run_id)

    def action_compare(self) -> None:
        table = self.query_one(RunTable)
        ids = sorted(table.selected) or ([table.current_run()] if table.current_run() else [])
        if len(ids) < 2:
            self.app.notify("select two or more runs with space, then press c", severity="warning")
            return
        self.app.open_compare(ids)

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.disabled = False
        box.remove_class("hidden")
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        # the "/" that opened the box can arrive in it too; a filter never starts with one
        self.filter_text = event.value.lstrip("/").strip()
        self.show(self.summaries)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one(RunTable).focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.add_class("hidden")
        box.disabled = True
        self.query_one(RunTable).focus()

    def action_sort(self) -> None:
        self.sort_index = (self.sort_index + 1) % len(SORTS)
        self.show(self.summaries)
