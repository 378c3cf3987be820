"""Starting work on a run: the one path the CLI, the app, the queue and sweeps take.

A run is a row first (queued, with its validated config) and then a worker process
(``xlbench worker RUN_ID``, :mod:`xlbench.runs.worker`) that claims it, prepares its data once and
executes it. This module only writes rows and starts processes: it imports no model code, so the
app can use it without loading torch (``lint-imports`` keeps it so).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from xlbench.errors import XlbenchError


def spawn_worker(run_id: int, *, db: str | None = None, log_dir: Path | None = None,
                 env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start ``xlbench worker RUN_ID`` as a background process in its own session (it outlives
    whoever started it), its output appended to ``log_dir/run-<id>.log``."""
    cmd = [sys.executable, "-m", "xlbench", "worker", str(run_id)]
    child_env = dict(os.environ if env is None else env)
    if db:  # through the environment: argv is visible to every user of the machine (ps)
        child_env["XLBENCH_DB"] = db
    log = open(worker_log(log_dir, run_id), "ab") if log_dir else subprocess.DEVNULL
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=child_env,
                            start_new_session=True)


def worker_log(log_dir: Path, run_id: int) -> Path:
    """Where a background worker's output goes."""
    return log_dir / f"run-{run_id}.log"


def submit(store, kind: str, config, name: str, *, parent_id: int | None = None) -> int:
    """Write a queued run row holding the whole validated ``config`` (a RunConfig or EvalConfig);
    returns its id. A training run that evaluates its starting model first (``eval.before``) gets
    that evaluation as a queued child row at once (:func:`before_row`). Execute with :func:`start`
    (a worker) or in this process (:func:`xlbench.runs.execute.execute_run`)."""
    run_id = store.create_run(kind=kind, name=name, config=json.loads(config.model_dump_json()), parent_id=parent_id).id
    if kind == "train" and config.eval.before:
        before_row(store, run_id, config)
    return run_id


def before_row(store, run_id: int, config):
    """The queued "before" evaluation of training run ``run_id``: the one waiting, or a new one if
    none is queued, running or finished (a run submitted before this rule, a sweep's row, a child
    that failed). Returns the row; None if the starting model is already evaluated or being so."""
    children = [c for c in store.children(run_id) if c.kind == "eval" and c.name.startswith("before: ")]
    if any(c.status in ("running", "finished") for c in children):
        return None
    queued = [c for c in children if c.status == "queued"]
    if queued:
        return queued[0]
    ev = config.before_config()
    return store.get_run(submit(store, "eval", ev, f"before: {config.base_model()}", parent_id=run_id))


def start(store, run_id: int) -> tuple[int, Path]:
    """Hand a queued run to a background worker: ``(worker pid, its log file)``."""
    from xlbench.paths import logs_dir

    logs = logs_dir()
    return spawn_worker(run_id, db=store.url, log_dir=logs).pid, worker_log(logs, run_id)


def resume(store, run_id: int) -> int:
    """Queue a cancelled, failed or lost run again and start a worker: it continues from its last
    checkpoint. Returns the worker's pid."""
    store.requeue(run_id)
    return start(store, run_id)[0]


def queue_reevaluation(store, run_id: int) -> int:
    """Queue a fresh evaluation of a run's model on the run's evaluation sets (a child run; hand it
    to :func:`start`); returns the new run's id."""
    from xlbench.config import EvalConfig, RunConfig
    from xlbench.store.transfer import ensure_local

    run = store.get_run(run_id)
    ensure_local(run)
    config = json.loads(run.config_json or "{}")
    if run.kind == "train":
        model = next((m for m in store.models() if m.id == run.model_id and m.name == f"run-{run_id}"), None)
        if model is None or not Path(model.source).exists():
            raise XlbenchError(f"run {run_id} has no saved fine-tuned model (yet) to evaluate")
        ev = RunConfig.model_validate(config).eval_config(model=model.source)
    else:
        ev = EvalConfig.model_validate(config)
    return submit(store, "eval", ev, f"re-evaluate run {run_id}", parent_id=run_id)
