"""Where queued runs execute: the executor options shared by ``xlbench queue``, ``xlbench sweep
--run`` and ``xlbench sweep resume``.

An executor (a plugin, see :mod:`xlbench.runs.executors`) is chosen by ``--executor`` or the
``name`` key of an ``[executor]`` section in a TOML file (``--executor-config``, or the sweep's
own ``--config``); its options come from that section, then ``--executor-option KEY=VALUE``, then
the Slurm flags below (later wins). Example ``cluster.toml``::

    [executor]
    name = "slurm"
    partition = "gpu"
    gpus_per_run = 1
    cpus_per_run = 8
    mem = "32G"
    time = "04:00:00"
    sbatch = ["--constraint=a100"]
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from xlbench.commands.common import key_values, make_console, read_config_file
from xlbench.errors import ConfigError

ExecutorName = Annotated[Optional[str], typer.Option("--executor", help="Where runs execute: local (background processes here, the default) or slurm (a job array), or an executor plugin.", rich_help_panel="Placement")]
ExecutorConfig = Annotated[Optional[Path], typer.Option("--executor-config", help="TOML file with an \\[executor] section (name and options).", rich_help_panel="Placement")]
ExecutorOptions = Annotated[Optional[list[str]], typer.Option("--executor-option", "-x", help="Executor option KEY=VALUE; repeatable.", rich_help_panel="Placement")]
Partition = Annotated[Optional[str], typer.Option("--partition", help="Slurm partition.", rich_help_panel="Slurm")]
GpusPerRun = Annotated[Optional[int], typer.Option("--gpus-per-run", help="GPUs per node for one run (>1: torchrun).", rich_help_panel="Slurm")]
Nodes = Annotated[Optional[int], typer.Option("--nodes", help="Nodes per run (>1: torchrun across nodes).", rich_help_panel="Slurm")]
CpusPerRun = Annotated[Optional[int], typer.Option("--cpus-per-run", help="CPUs per run (per node).", rich_help_panel="Slurm")]
Mem = Annotated[Optional[str], typer.Option("--mem", help="Memory per node, e.g. 32G.", rich_help_panel="Slurm")]
TimeLimit = Annotated[Optional[str], typer.Option("--time", help="Time limit per run, e.g. 04:00:00 (SIGUSR1 2 min before: checkpoint and requeue).", rich_help_panel="Slurm")]
Account = Annotated[Optional[str], typer.Option("--account", help="Slurm account.", rich_help_panel="Slurm")]
Sbatch = Annotated[Optional[list[str]], typer.Option("--sbatch", help="Extra sbatch option, e.g. --constraint=a100; repeatable.", rich_help_panel="Slurm")]


def choose_executor(name: str | None = None, config_file: Path | None = None, options: list[str] | None = None, **slurm):
    """The executor named by the flags or the config file's ``[executor]`` section, with its options."""
    from xlbench.runs.executors import DEFAULT_EXECUTOR, make_executor

    section: dict = {}
    if config_file is not None:
        section = read_config_file(config_file).get("executor", {})
        if not isinstance(section, dict):
            raise ConfigError(f"{config_file}: [executor] must be a table")
    section = dict(section)
    configured = section.pop("name", None)  # the rest are the executor's options
    chosen = name or configured or DEFAULT_EXECUTOR
    section.update(key_values(options))
    given = {k: v for k, v in slurm.items() if v not in (None, [])}
    if given and chosen != "slurm":
        flags = ", ".join("--" + k.replace("_", "-") for k in given)
        raise ConfigError(f"{flags}: Slurm options, but the executor is {chosen!r} (add --executor slurm)")
    section.update(given)
    return make_executor(chosen, section)


def run_executor(store, executor, *, workers: int, sweep_id: int | None) -> None:
    """Place the queued runs (of the sweep, if given) with ``executor`` and report as they go."""
    from xlbench.runs.executors import check_store
    from xlbench.paths import logs_dir

    check_store(executor, store)
    logs = logs_dir()
    console = make_console()
    done = executor.run(store, sweep_id=sweep_id, workers=workers, log_dir=logs, say=lambda m: console.print(m, highlight=False))
    console.print(f"{executor.name} executor: {len(done)} runs ended (logs in {logs})")
