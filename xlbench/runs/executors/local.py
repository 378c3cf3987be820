"""The ``local`` executor: background worker processes on this machine, N at a time (:mod:`xlbench.runs.queue`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from xlbench.runs.executors import Executor


class LocalExecutor(Executor):
    kind = "executor"
    name = "local"
    shared_store = False

    def run(self, store, *, sweep_id: int | None = None, workers: int = 1, log_dir: Path | None = None,
            say: Callable[[str], None] = print) -> dict[int, int]:
        from xlbench.runs.queue import run_queue

        return run_queue(store, workers=workers, sweep_id=sweep_id, log_dir=log_dir, say=say)
