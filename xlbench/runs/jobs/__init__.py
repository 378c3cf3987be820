"""Jobs: what a worker does for each kind of run, from its stored config to rows in the store."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from xlbench.core.progress import Reporter
from xlbench.errors import StoreError, XlbenchError


@dataclass
class Job:
    """What a worker executes for a run, and the CPU threads its validated config asks for."""

    work: Callable[[Reporter], None]
    threads: int = 1

    def __call__(self, reporter: Reporter) -> None:
        self.work(reporter)


def job_for(store, run, *, prepared=None, resume: bool = False, dist=None) -> Job:
    """The job for a stored run. Its config is validated here (the one source of every option,
    threads included); a config that fails validation, and data that fails to load inside the job,
    are recorded on the run when the job runs. ``prepared``: the run's data, already loaded by this
    process (else the job loads it when it runs); ``dist``: the torchrun group (None: this process
    alone)."""
    from xlbench.config import EvalConfig, RunConfig, parse_config
    from xlbench.store.transfer import ensure_local

    ensure_local(run)
    if run.kind not in ("eval", "train"):
        raise StoreError(f"run {run.id} has kind {run.kind!r}, which this xlbench cannot execute")
    try:
        config = parse_config(EvalConfig if run.kind == "eval" else RunConfig, json.loads(run.config_json),
                              where=f"run {run.id} config")
    except XlbenchError as exc:
        error = exc

        def invalid(reporter: Reporter) -> None:
            raise error

        return Job(invalid)
    if run.kind == "eval":
        from xlbench.runs.jobs import evaluation

        def evaluate(reporter: Reporter) -> None:
            # under torchrun every rank gets here: each encodes its share, rank 0 scores
            evaluation.run(store, run.id, prepared or evaluation.prepare(config), reporter, dist=dist)

        return Job(evaluate, config.threads)
    from xlbench.runs.jobs import training

    return Job(lambda reporter: training.run(store, run.id, prepared or training.prepare(config), reporter, resume=resume),
               config.threads)
