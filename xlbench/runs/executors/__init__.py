"""Executors: where queued runs' workers run. A plugin kind, like samplers and encoders.

An executor takes the queued run rows of a queue (or a sweep) and has ``xlbench worker RUN_ID``
run for each somewhere: ``local`` starts background processes on this machine, N at a time (the
queue as it always was); ``slurm`` submits them to Slurm as one job array and follows them there.
Whatever the executor, the worker is the same program and the run row is the only channel: the
worker claims it, heart-beats, checkpoints and records how it ended; nothing is pickled and
nothing but the run id and the database (through the environment) is handed over.

An executor class (entry-point group ``xlbench.executors``, or a class with ``kind =
"executor"`` in the plugins folder) has:

* ``name`` and ``kind = "executor"``; ``shared_store``: True when workers may run on other
  machines, which then need a database server (a SQLite file is refused);
* ``__init__(**options)``: its options (``[executor]`` config section or flags);
* ``run(store, *, sweep_id, workers, log_dir, say) -> dict[int, object]``: place every queued
  run and follow them until none is active; returns how each ended;
* ``cancel(store, run)``: stop a run it placed (after the row's cancel request is written);
* ``reap(store) -> list[int]``: mark runs whose job the scheduler no longer runs as lost;
* ``stop_reason(signum)``: for a worker it placed that received ``signum``, a sentence if that
  signal means "preempted or out of time, will be started again" (the worker then checkpoints
  and hands the run back to the queue), else None;
* ``cancel_reason(signum)`` (optional): a sentence if that signal means "cancelled from outside
  xlbench" (e.g. ``scancel``): the run ends ``cancelled`` with it, never as a requeue in progress.
"""

from __future__ import annotations

from xlbench.errors import ConfigError

DEFAULT_EXECUTOR = "local"


class Executor:
    """Defaults for executor plugins (subclassing is optional; the attributes above are what count)."""

    kind = "executor"
    name = ""
    shared_store = False

    def __init__(self, **options) -> None:
        if options:
            raise ConfigError(f"executor {self.name!r} takes no options (got {', '.join(sorted(options))})")

    def cancel(self, store, run) -> str | None:
        return None

    def reap(self, store) -> list[int]:
        return []

    def stop_reason(self, signum: int) -> str | None:
        return None

    def after_stop(self, signum: int) -> None:
        """Called in the worker after it handed its run back to the queue (e.g. requeue its job)."""


def make_executor(name: str | None, options: dict | None = None, *, registry=None):
    """The executor plugin ``name`` built with ``options`` (a bad option is a :class:`ConfigError`)."""
    from xlbench.plugins import Registry

    registry = registry or Registry(_plugins_dir())
    cls = registry.load("executor", name or DEFAULT_EXECUTOR)
    try:
        return cls(**(options or {}))
    except TypeError as exc:
        raise ConfigError(f"executor {name!r}: {exc}") from None


def check_store(executor, store) -> None:
    """Refuse a SQLite file for an executor whose workers run on other machines."""
    if getattr(executor, "shared_store", False) and store.url.startswith("sqlite"):
        raise ConfigError(
            f"the {executor.name} executor runs workers on other machines, which cannot share the SQLite file "
            f"{store.display_url}; use a PostgreSQL database every node can reach "
            "(--db postgresql+psycopg://user@host/db, password in $XLBENCH_DB_FILE or ~/.pgpass)")


def reap_all(store) -> list[int]:
    """Mark lost the runs whose worker is gone: by heartbeat (every run) and, for runs a scheduler
    placed, by the scheduler's own account of their jobs."""
    lost = store.reap_lost()
    for name in sorted({r.executor for r in store.placed_runs()}):
        try:
            lost += make_executor(name).reap(store)
        except Exception:  # a scheduler command that fails now must not stop a listing; the heartbeat still counts
            continue
    return lost


def cancel(store, run_id: int):
    """Request a run's cancel in the database and have its executor stop its job (e.g. scancel)."""
    run = store.request_cancel(run_id)
    if run.executor and run.job_id:
        message = make_executor(run.executor).cancel(store, run)
        if message:
            store.add_event(run_id, message)
    return run


def _plugins_dir():
    import os

    from xlbench.paths import plugins_dir

    return plugins_dir(os.environ.get("XLBENCH_PLUGINS_DIR") or None)


def placement(run, *, long: bool = False) -> str:
    """Where a run runs or ran, for people: ``slurm 1234_0 on node7``, ``local on host`` (pid with ``long``)."""
    parts = []
    if run.job_id:
        parts.append(f"{run.executor or '?'} job {run.job_id}" if long else f"{run.executor or '?'} {run.job_id}")
    elif run.executor:
        parts.append(run.executor)
    if run.host:
        parts.append(f"on {run.host}" + (f" (pid {run.pid})" if long and run.pid else ""))
    return " ".join(parts)
