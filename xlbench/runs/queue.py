"""The queue: execute queued runs, N worker processes at a time.

Each run gets its own ``xlbench worker RUN_ID`` process (its own session, so it outlives a killed
queue and finishes its run); with several GPUs, workers are pinned round-robin through
``CUDA_VISIBLE_DEVICES``. A worker claims its run with one conditional UPDATE, so two queues
never run the same run twice. Ctrl-C (or SIGTERM) stops the queue: running workers are asked to
stop at their next step, keeping a checkpoint; queued runs stay queued for the next queue.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from xlbench.runs.executors import reap_all
from xlbench.runs.launch import spawn_worker
from xlbench.store.store import Store


def gpu_ids() -> list[str]:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g for g in visible.split(",") if g.strip()]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except Exception:
        return []


def run_queue(store: Store, *, workers: int = 1, sweep_id: int | None = None, poll: float = 1.0,
              gpus: list[str] | None = None, log_dir: Path | None = None,
              say: Callable[[str], None] = print) -> dict[int, int]:
    """Run until nothing is queued (for the sweep, if given) and every worker has exited.

    Returns ``{run_id: worker exit code}`` for the workers this queue started."""
    gpus = gpu_ids() if gpus is None else gpus
    active: dict[int, subprocess.Popen] = {}
    done: dict[int, int] = {}
    started = 0
    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        if stopping:
            raise KeyboardInterrupt
        stopping = True
        say("stopping: asking running workers to stop at their next step (Ctrl-C again to leave them running)")
        for proc in active.values():
            proc.send_signal(signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            reap_all(store)
            for run_id, proc in list(active.items()):
                if proc.poll() is not None:
                    done[run_id] = proc.returncode
                    run = store.get_run(run_id)
                    if run.pid not in (None, proc.pid):  # another queue's worker claimed it first
                        say(f"run {run_id} was taken by another worker (pid {run.pid} on {run.host}, now {run.status}); "
                            "this queue's worker left it")
                    else:
                        say(f"run {run_id} {run.status}" + (f": {run.error}" if run.error else ""))
                    del active[run_id]
            while not stopping and len(active) < workers:
                run = store.next_queued(sweep_id=sweep_id, exclude=set(active) | set(done))
                if run is None:
                    break
                env = dict(os.environ)
                if gpus:
                    env["CUDA_VISIBLE_DEVICES"] = gpus[started % len(gpus)]
                store.set_job(run.id, "local", None)
                active[run.id] = spawn_worker(run.id, db=store.url, log_dir=log_dir, env=env)
                started += 1
                say(f"run {run.id} started (worker pid {active[run.id].pid}"
                    + (f", GPU {env['CUDA_VISIBLE_DEVICES']})" if gpus else ")"))
            if not active and (stopping or store.next_queued(sweep_id=sweep_id, exclude=set(done)) is None):
                return done
            time.sleep(poll)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
