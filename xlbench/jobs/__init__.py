"""Jobs: what a worker does for each kind of run, from its stored config to rows in the store."""

from __future__ import annotations

import json
from collections.abc import Callable

from xlbench.core.progress import Reporter
from xlbench.errors import StoreError


def job_for(store, run, *, resume: bool = False) -> Callable[[Reporter], None]:
    """The job for a stored run; its config is validated and its data loaded inside the job, so a
    failure there is recorded on the run."""
    from xlbench.config import EvalConfig, RunConfig, parse_config
    from xlbench.store.transfer import ensure_local

    ensure_local(run)
    if run.kind == "eval":
        from xlbench.jobs import evaluation

        def job(reporter: Reporter) -> None:
            config = parse_config(EvalConfig, json.loads(run.config_json), where=f"run {run.id} config")
            evaluation.run(store, run.id, evaluation.prepare(config), reporter)

        return job
    if run.kind == "train":
        from xlbench.jobs import training

        def train_job(reporter: Reporter) -> None:
            config = parse_config(RunConfig, json.loads(run.config_json), where=f"run {run.id} config")
            training.run(store, run.id, training.prepare(config), reporter, resume=resume)

        return train_job
    raise StoreError(f"run {run.id} has kind {run.kind!r}, which this xlbench cannot execute")
