"""The ``xlbench`` command line: the Typer app, its global options and the commands' registration.

Each command lives in a leaf module of :mod:`xlbench.commands` that imports nothing from here (the
global options travel in the command line's context, :func:`xlbench.commands.common.global_options`).
Only typer is imported at module level; everything heavy (torch, sentence-transformers, faiss) is
imported inside the command that needs it, so ``xlbench --help`` is instant.
"""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from xlbench.commands import catalog, compare, runs, sweep, training
from xlbench.commands.common import set_global_options
from xlbench.errors import XlbenchError, one_line

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


@app.callback()
def _global(
    ctx: typer.Context,
    db: Annotated[Optional[str], typer.Option("--db", envvar="XLBENCH_DB", help="SQLAlchemy URL of the store (sqlite:///..., postgresql+psycopg://...).")] = None,
    plugins_dir: Annotated[Optional[str], typer.Option("--plugins-dir", envvar="XLBENCH_PLUGINS_DIR", help="Folder of local plugin .py files (default ./plugins).")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
) -> None:
    set_global_options(db, plugins_dir)  # `debug` is read by main() from argv: it decides how errors print
    if ctx.invoked_subcommand is None:  # plain `xlbench`: the terminal app
        from xlbench.tui.app import run_app

        run_app(db, plugins_dir)


app.command("eval")(runs.eval_cmd)
app.command("worker")(runs.worker_cmd)
app.command("cancel")(runs.cancel_cmd)
app.command("plugins")(catalog.plugins_cmd)
app.command("compare")(compare.compare_cmd)
app.command("export")(compare.export_cmd)
app.command("import")(compare.import_cmd)
app.command("queue")(sweep.queue_cmd)
app.command("run")(training.run_cmd)
app.command("push")(catalog.push_cmd)
app.command("report")(runs.report_cmd)
app.add_typer(runs.runs_app, name="runs")
app.add_typer(catalog.models_app, name="models")
app.add_typer(catalog.models_app, name="model", hidden=True)  # `xlbench model card RUN` reads naturally too
app.add_typer(catalog.datasets_app, name="datasets")
app.add_typer(sweep.sweep_app, name="sweep")
app.add_typer(training.sampler_app, name="sampler")


def main() -> None:
    try:
        app()
    except Exception as exc:
        if "--debug" in sys.argv[1:] or not _reportable(exc):
            raise
        from xlbench.text import MESSAGE_LIMIT, inert

        print(f"xlbench: error: {inert(one_line(exc), limit=MESSAGE_LIMIT)}", file=sys.stderr)
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
