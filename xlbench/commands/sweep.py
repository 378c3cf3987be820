"""``xlbench sweep`` (queue a grid of runs), ``xlbench sweep show|stop|resume`` and ``xlbench queue``."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from xlbench.commands.common import ReportTo, make_console, open_store, plugins_folder, report_flags
from xlbench.commands.placement import (
    Account,
    CpusPerRun,
    ExecutorConfig,
    ExecutorName,
    ExecutorOptions,
    GpusPerRun,
    Mem,
    Nodes,
    Partition,
    Sbatch,
    TimeLimit,
    choose_executor,
    run_executor,
)
from xlbench.errors import ConfigError, XlbenchError
from xlbench.runs.executors import check_store, reap_all
from xlbench.presets import parse_value

sweep_app = typer.Typer(help="Grids of runs (e.g. sampler.alpha × seeds): queue, show, stop, resume.",
                        invoke_without_command=True)


def parse_grid(items: list[str]) -> dict[str, list]:
    """``KEY=v1,v2,...`` → ``{KEY: [v1, v2, ...]}`` with numbers and booleans parsed."""
    grid: dict[str, list] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key.strip() or not values.strip():
            raise ConfigError(f"bad --grid {item!r}: write KEY=V1,V2,..., e.g. sampler.alpha=0,0.5,1")
        grid[key.strip()] = [parse_value(v.strip()) for v in values.split(",") if v.strip()]
    return grid


def expand(base: dict, grid: dict[str, list]) -> list[tuple[dict, dict]]:
    """Every combination of the grid applied to the base config: ``[(assignment, config)]``."""
    from xlbench.presets import set_path

    keys = list(grid)
    out = []
    for values in itertools.product(*(grid[k] for k in keys)):
        config = json.loads(json.dumps(base))
        assignment = dict(zip(keys, values))
        for key, value in assignment.items():
            set_path(config, key, value)
        out.append((assignment, config))
    return out


def checked_configs(base: dict, combinations: list[tuple[dict, dict]], sweep_name: str) -> list[tuple[str, dict]]:
    """``[(run name, validated config)]`` for grid combinations: every config parsed, and the data,
    model and evaluation sets of each distinct setup loaded once, before any row is written."""
    from xlbench.config import RunConfig, parse_config
    from xlbench.runs.jobs import training
    from xlbench.runs.jobs.evaluation import registry_for
    from xlbench.plugins import resolve_sampler

    configs = []
    checked_data = set()
    warned: set[str] = set()
    for assignment, data in combinations:
        label = ", ".join(f"{k}={v}" for k, v in assignment.items())
        config = parse_config(RunConfig, data, where=f"sweep combination {label}")
        for warning in config.warnings():
            if warning not in warned:
                warned.add(warning)
                make_console(stderr=True).print(f"warning: {warning}", markup=False, highlight=False)
        signature = json.dumps([data.get("data"), data.get("eval"), data.get("model")], sort_keys=True, default=str)
        try:
            if signature not in checked_data:  # data, model and eval sets: load and check once per distinct setup
                training.prepare(config)
                checked_data.add(signature)
            else:
                resolve_sampler(config, registry_for(config))
        except XlbenchError as exc:
            raise ConfigError(f"sweep combination {label}: {exc}") from None
        configs.append((f"{sweep_name}: {label}", json.loads(config.model_dump_json())))
    return configs


@sweep_app.callback()
def sweep_cmd(
    ctx: typer.Context,
    config_file: Annotated[Optional[Path], typer.Option("--config", "-c", help="Base TOML experiment.")] = None,
    preset_name: Annotated[Optional[str], typer.Option("--preset", "-p", help="Base preset, e.g. alpha-study (default: 'default').")] = None,
    grid: Annotated[Optional[list[str]], typer.Option("--grid", "-g", help="KEY=V1,V2,... (repeatable), e.g. sampler.alpha=0,0.25,0.5.")] = None,
    seeds: Annotated[Optional[str], typer.Option("--seeds", help="Comma-separated seeds, each combination once per seed.")] = None,
    sets: Annotated[Optional[list[str]], typer.Option("--set", help="Override base keys, as for `xlbench run`.")] = None,
    name: Annotated[Optional[str], typer.Option("--name", help="Name of the sweep.")] = None,
    run_now: Annotated[bool, typer.Option("--run", help="Start a queue for the sweep right away.")] = False,
    workers: Annotated[int, typer.Option("--workers", "-w", help="With --run: runs at a time (on Slurm: the job array's limit).")] = 1,
    executor: ExecutorName = None, executor_config: ExecutorConfig = None, executor_option: ExecutorOptions = None,
    partition: Partition = None, gpus_per_run: GpusPerRun = None, nodes: Nodes = None, cpus_per_run: CpusPerRun = None,
    mem: Mem = None, time: TimeLimit = None, account: Account = None, sbatch: Sbatch = None,
    report_to: ReportTo = None,
) -> None:
    """Queue one run per grid combination and seed, tied by a sweep id (with --report-to mlflow, a
    parent MLflow run holding one child run per combination and seed).

    Example:

      xlbench sweep --config base.toml --grid sampler.alpha=0,0.25,0.5,0.75,1 --seeds 1,2,3

      xlbench queue --workers 2          # or: xlbench sweep ... --run

      xlbench --db postgresql+psycopg://me@dbhost/xlbench sweep -p alpha-study --seeds 1,2,3 \\
          --grid sampler.alpha=0,0.5,1 --run --executor slurm --partition gpu --gpus-per-run 1 -w 4
    """
    if ctx.invoked_subcommand:
        return
    from xlbench.commands.training import build_run_config
    from xlbench.core.sweeps import SEED_KEY

    if not grid and not seeds:
        raise ConfigError("a sweep needs --grid KEY=V1,V2,... and/or --seeds 1,2,3")
    grid_values = parse_grid(grid or [])
    if seeds:
        grid_values[SEED_KEY] = [int(s) for s in seeds.split(",") if s.strip()]
    base = build_run_config(preset_name, config_file, sets or [], report_flags(report_to))
    base.setdefault("plugins_dir", plugins_folder())
    store = open_store()
    placer = None
    if run_now:  # a bad executor option or a SQLite file for a cluster fails before any row is written
        placer = choose_executor(executor, executor_config or config_file, executor_option, partition=partition,
                                 gpus_per_run=gpus_per_run, nodes=nodes, cpus_per_run=cpus_per_run, mem=mem,
                                 time=time, account=account, sbatch=sbatch)
        check_store(placer, store)
    configs = checked_configs(base, expand(base, grid_values), name or "sweep")
    sweep_id, run_ids = store.create_sweep(name=name or "sweep", base_config=base, grid=grid_values, run_configs=configs)
    console = make_console()
    console.print(f"sweep {sweep_id}: queued {len(run_ids)} runs ({run_ids[0]}–{run_ids[-1]}); "
                  f"run them with `xlbench queue --sweep {sweep_id} --workers N`")
    if placer is not None:
        run_executor(store, placer, workers=workers, sweep_id=sweep_id)


def queue_cmd(
    workers: Annotated[int, typer.Option("--workers", "-w", help="Runs executed at a time (local: GPUs are assigned round-robin; Slurm: the job array's limit).")] = 1,
    sweep: Annotated[Optional[int], typer.Option("--sweep", help="Only this sweep's runs.")] = None,
    executor: ExecutorName = None, executor_config: ExecutorConfig = None, executor_option: ExecutorOptions = None,
    partition: Partition = None, gpus_per_run: GpusPerRun = None, nodes: Nodes = None, cpus_per_run: CpusPerRun = None,
    mem: Mem = None, time: TimeLimit = None, account: Account = None, sbatch: Sbatch = None,
) -> None:
    """Execute queued runs until none is left: N background workers here (local), or one Slurm
    job array (--executor slurm) followed until its runs end.

    Locally, Ctrl-C stops the queue cleanly (running runs are cancelled at their next step with a
    checkpoint; `xlbench sweep resume` requeues them). On Slurm, Ctrl-C only stops following: the
    jobs run on, preempted or timed-out jobs checkpoint and are requeued, and `xlbench cancel RUN`
    also scancels a run's job.

    Examples:

      xlbench queue --workers 2

      xlbench --db postgresql+psycopg://me@dbhost/xlbench queue --executor slurm --partition gpu \\
          --gpus-per-run 2 --time 08:00:00 --sbatch=--constraint=a100 -w 8

      xlbench queue --executor-config cluster.toml     # an \\[executor] section: name = "slurm", ...
    """
    placer = choose_executor(executor, executor_config, executor_option, partition=partition, gpus_per_run=gpus_per_run,
                             nodes=nodes, cpus_per_run=cpus_per_run, mem=mem, time=time, account=account, sbatch=sbatch)
    run_executor(open_store(), placer, workers=workers, sweep_id=sweep)


@sweep_app.command("stop")
def sweep_stop(sweep_id: int) -> None:
    """Cancel a sweep: queued runs at once, running ones at their next step."""
    store = open_store()
    _, runs = store.sweep(sweep_id)
    changed = [store.request_cancel(r.id).status for r in runs if r.status in ("queued", "running")]
    make_console().print(f"sweep {sweep_id}: {len(changed)} runs cancelled or asked to stop", highlight=False)


@sweep_app.command("resume")
def sweep_resume(
    sweep_id: int,
    run_now: Annotated[bool, typer.Option("--run/--no-run", help="Start a queue for the sweep.")] = True,
    workers: Annotated[int, typer.Option("--workers", "-w")] = 1,
    executor: ExecutorName = None, executor_config: ExecutorConfig = None, executor_option: ExecutorOptions = None,
    partition: Partition = None, gpus_per_run: GpusPerRun = None, nodes: Nodes = None, cpus_per_run: CpusPerRun = None,
    mem: Mem = None, time: TimeLimit = None, account: Account = None, sbatch: Sbatch = None,
) -> None:
    """Requeue the sweep's cancelled, failed or lost runs (finished ones are never run again) and
    run the queue; a requeued run continues from its last checkpoint."""
    store = open_store()
    placer = choose_executor(executor, executor_config, executor_option, partition=partition, gpus_per_run=gpus_per_run,
                             nodes=nodes, cpus_per_run=cpus_per_run, mem=mem, time=time, account=account, sbatch=sbatch)
    check_store(placer, store)
    reap_all(store)
    _, runs = store.sweep(sweep_id)
    again = [store.requeue(r.id).id for r in runs if r.status in ("cancelled", "failed", "lost")]
    make_console().print(f"sweep {sweep_id}: requeued {len(again)} runs; "
                     f"{sum(r.status == 'finished' for r in runs)} finished runs are kept")
    if run_now:
        run_executor(store, placer, workers=workers, sweep_id=sweep_id)


@sweep_app.command("extend")
def sweep_extend(
    sweep_id: int,
    grid: Annotated[Optional[list[str]], typer.Option("--grid", "-g", help="KEY=V1,V2,... values to run (repeatable); a key left out keeps the sweep's values.")] = None,
    seeds: Annotated[Optional[str], typer.Option("--seeds", help="Comma-separated seeds to run, e.g. 4,5,6,7,8.")] = None,
    run_now: Annotated[bool, typer.Option("--run", help="Start a queue for the sweep right away.")] = False,
    workers: Annotated[int, typer.Option("--workers", "-w", help="With --run: runs at a time.")] = 1,
    executor: ExecutorName = None, executor_config: ExecutorConfig = None, executor_option: ExecutorOptions = None,
    partition: Partition = None, gpus_per_run: GpusPerRun = None, nodes: Nodes = None, cpus_per_run: CpusPerRun = None,
    mem: Mem = None, time: TimeLimit = None, account: Account = None, sbatch: Sbatch = None,
) -> None:
    """Add runs to a sweep under its own base config: every combination of the values given (keys
    left out keep the sweep's values) that the sweep does not hold yet, whatever that run's status
    (a failed or lost one is `sweep resume`'s). Running it twice queues nothing the second time.

    Before adding runs on newer code, check that it reproduces one of the sweep's runs (docs/sweeps.md).

    Example, seeds 4–8 at three α values of a 5 α × 3 seed study:

      xlbench sweep extend 1 --grid sampler.alpha=0,0.5,1 --seeds 4,5,6,7,8 --run
    """
    from xlbench.core.compare import flatten
    from xlbench.core.sweeps import SEED_KEY

    if not grid and not seeds:
        raise ConfigError("say what to add: --grid KEY=V1,V2,... and/or --seeds 4,5,...")
    store = open_store()
    sweep, runs = store.sweep(sweep_id)
    current = json.loads(sweep.grid_json)
    asked = parse_grid(grid or [])
    if seeds:
        asked[SEED_KEY] = [int(s) for s in seeds.split(",") if s.strip()]
    unknown = sorted(set(asked) - set(current))
    if unknown:
        raise ConfigError(f"sweep {sweep_id} has no grid key {', '.join(unknown)} (its grid: {', '.join(current)}); "
                          "a new axis is a new sweep")
    wanted = {key: asked.get(key, values) for key, values in current.items()}
    base = json.loads(sweep.base_config_json)
    base["plugins_dir"] = plugins_folder()  # never a folder named by the stored (maybe imported) config
    have = {_assignment_key({k: flatten(json.loads(r.config_json or "{}")).get(k) for k in current}) for r in runs}
    combinations = [(a, c) for a, c in expand(base, wanted) if _assignment_key(a) not in have]
    placer = None
    if run_now:
        placer = choose_executor(executor, executor_config, executor_option, partition=partition,
                                 gpus_per_run=gpus_per_run, nodes=nodes, cpus_per_run=cpus_per_run, mem=mem,
                                 time=time, account=account, sbatch=sbatch)
        check_store(placer, store)
    console = make_console()
    if combinations:
        grown = {key: values + [v for v in wanted[key] if v not in values] for key, values in current.items()}
        run_ids = store.extend_sweep(sweep_id, grid=grown,
                                     run_configs=checked_configs(base, combinations, sweep.name))
        console.print(f"sweep {sweep_id}: queued {len(run_ids)} more runs ({run_ids[0]}–{run_ids[-1]}); "
                      f"{len(runs)} it held are kept", highlight=False)
    else:
        console.print(f"sweep {sweep_id}: every combination asked for is already in it; nothing queued", highlight=False)
    if placer is not None:
        run_executor(store, placer, workers=workers, sweep_id=sweep_id)


def _assignment_key(assignment: dict) -> str:
    # 1 and 1.0 are one grid value (a JSON export may have turned one into the other)
    return json.dumps({k: float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
                       for k, v in sorted(assignment.items())}, default=str)


@sweep_app.command("show")
def sweep_show(
    sweep_id: int,
    dataset: Annotated[Optional[str], typer.Option("--dataset", help="Only this dataset (default: every one the runs share).")] = None,
    metric: Annotated[str, typer.Option("--metric", help="Score of the mono / cross / multi rows: map, r@1, r@10.")] = "map",
    plot: Annotated[bool, typer.Option("--plot/--no-plot", help="Draw the curves with plotext.")] = True,
    fmt: Annotated[str, typer.Option("--format", help="table (Rich), md (Markdown, for docs) or json.")] = "table",
    target_delta: Annotated[Optional[float], typer.Option("--target-delta", help="A difference you want to detect (e.g. 0.005): how many seeds per point it needs, per row.")] = None,
) -> None:
    """The sweep's runs, then each family against the grid value: mean ± 95 % CI over seeds, every
    point tested against the first and last grid value (e.g. α = 0 and α = 1) as a training
    procedure (seed-to-seed and question-sampling variance both counted, Holm-corrected), the
    smallest difference each comparison could detect, and the curves. See docs/sweeps.md.

    Examples:

      xlbench sweep show 1 --format md > alpha.md

      xlbench sweep show 1 --target-delta 0.005      # seeds per point a 0.005 difference needs
    """
    import sys

    from rich.table import Table
    from rich.text import Text

    from xlbench.core.sweeps import grid_ends, sweep_study, x_key_of
    from xlbench.text import MESSAGE_LIMIT, inert
    from xlbench.store.views import duration, phase_seconds
    from xlbench.study_view import study_figure, study_markdown, study_table

    if fmt not in ("table", "md", "json"):
        raise ConfigError(f"--format {fmt!r}: use table, md or json")
    if target_delta is not None and not (0 < abs(target_delta) < float("inf")):
        raise ConfigError(f"--target-delta {target_delta}: give a finite non-zero difference, e.g. 0.005")
    store = open_store()
    reap_all(store)
    sweep, runs = store.sweep(sweep_id)
    grid = json.loads(sweep.grid_json)
    console = make_console()
    timing = {r.id: phase_seconds(store, r) for r in runs if r.status == "finished"}
    if fmt == "table":
        status = Table(title=Text(inert(f"sweep {sweep_id}: {sweep.name} — grid {grid}", limit=MESSAGE_LIMIT)))
        for col in ("run", "status", "phase", "progress", "train", "evaluate"):
            status.add_column(col)
        for r in runs:
            t = timing.get(r.id) or {}
            status.add_row(*(Text(inert(c)) for c in (f"{r.id}: {r.name}", r.status, r.phase,
                                                      f"{r.progress_done or 0}/{r.progress_total or '?'}",
                                                      duration(t.get("train")), duration(t.get("evaluate")))))
        console.print(status)
        spans = [r for r in runs if r.started_at]
        if spans and all(r.finished_at for r in spans):
            wall = max(r.finished_at for r in spans) - min(r.started_at for r in spans)
            console.print(f"wall time, first start to last finish: {duration(wall.total_seconds())} (pauses included)")
    finished = [r.id for r in runs if r.status == "finished"]
    if not finished:
        console.print("no finished runs yet")
        return
    try:
        study = sweep_study(store.run_inputs(finished), x_key_of(grid), dataset=dataset, metric=metric,
                            ends=grid_ends(grid), target=target_delta)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if fmt == "json":
        print(json.dumps({"sweep": sweep_id, "name": sweep.name, "grid": grid, **study.as_dict(),
                          "seconds": {str(k): v for k, v in timing.items()}}, indent=2))
        return
    if fmt == "md":
        print(study_markdown(study), end="")
    else:
        console.print(study_table(study))
        for line in study.power_lines():
            console.print(Text.assemble(("power:", "cyan"), " ", line))
        for note in study.notes:
            console.print(Text.assemble(("note:", "yellow"), " ", inert(note, limit=MESSAGE_LIMIT)))
    if plot and study.rows:
        text = study_figure(study, min(console.width, 120), 2 * 16, colour=fmt == "table" and sys.stdout.isatty())
        print(("```text\n" + text + "\n```") if fmt == "md" else text)
