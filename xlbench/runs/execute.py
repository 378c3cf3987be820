"""The one entry that executes a run, whatever launched it.

A terminal (``xlbench run`` / ``eval``, foreground or handed to a background process), a queued or
detached worker (``xlbench worker RUN_ID``), a Slurm job, every torchrun rank, and a training run
executing its "before" evaluation all call :func:`execute_run` with a run id. It holds the one rank
rule: under torchrun every rank computes, rank 0 alone claims the row and writes to the store. The
job comes from the run's stored, validated config (threads included); data is prepared once, in
the process that executes, unless the caller already prepared it there (``prepared``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from xlbench.core.progress import Reporter


def execute_run(store, run_id: int, *, prepared=None, reporter: Reporter | None = None, resume: bool = False,
                dist=None, reap: bool = False) -> None:
    """Execute queued run ``run_id`` in this process (see the module docstring).

    ``prepared``: the run's data, already loaded by this process (a front end that checked it before
    writing the row); ``reporter``: progress for a person (rank 0 only); ``resume``: a training run
    continues from its last checkpoint; ``dist``: the torchrun group (default: from the environment;
    ``Distributed()`` executes in this process alone, e.g. a child evaluation on rank 0); ``reap``:
    first mark lost the runs whose workers died (a background worker does, e.g. for the run a killed
    worker left 'running' before its job was requeued).
    Raises like :func:`xlbench.runs.worker.execute` (``Cancelled`` after recording a cancel)."""
    from xlbench.runs.distributed import Distributed
    from xlbench.runs.jobs import job_for
    from xlbench.runs.worker import execute, set_threads

    dist = Distributed.from_env() if dist is None else dist
    job = job_for(store, store.get_run(run_id), prepared=prepared, resume=resume, dist=dist)
    if dist.rank != 0:  # the rank rule: other ranks compute their share, rank 0 owns the run row
        set_threads(job.threads)
        job(Reporter())
        return
    if reap:
        store.reap_lost()
    execute(store, run_id, job, reporter=reporter)


def execute_in_background(store, run_id: int, prepared) -> tuple[int, Path]:
    """Hand a queued run whose data this process has just loaded (and checked, before writing the
    row) to a background process that executes it **with that data**: a fork of this process, in its
    own session (it outlives the terminal), output appended to the run's worker log. The data is
    loaded once. Returns ``(pid, log)``.

    Safe to fork here: no model is loaded, no thread of ours runs yet (the heartbeat and the
    reporters start in the child) and no database connection is open (closed just before)."""
    from xlbench.paths import logs_dir
    from xlbench.runs.launch import worker_log

    log = worker_log(logs_dir(), run_id)
    # no database connection may cross the fork: SQLite's locks are per process and its bookkeeping
    # of them per library, so a connection open in both would let one lose the other's writes
    store.engine.dispose()
    read, write = os.pipe()
    first = os.fork()
    if first:  # this process: learn the worker's pid, reap the intermediate child
        os.close(write)
        with os.fdopen(read) as pipe:
            pid = int(pipe.read() or 0)
        os.waitpid(first, 0)
        if not pid:
            raise OSError(f"the background process for run {run_id} did not start (see {log})")
        return pid, log
    code = 1
    try:  # the intermediate child: a new session, then the worker itself (orphaned: init reaps it)
        os.close(read)
        os.setsid()
        if os.fork():
            os._exit(0)
        with os.fdopen(write, "w") as pipe:
            pipe.write(str(os.getpid()))
        _into_log(log)
        store = type(store)(store.url, migrate=False)  # its own: the row records this process as the owner
        from xlbench.core.progress import PlainReporter  # plain progress lines, as a worker writes them

        execute_run(store, run_id, prepared=prepared, reporter=PlainReporter.from_env())
        code = 0
    except BaseException:  # noqa: BLE001  the run row says how it ended; the log gets the rest
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _into_log(log: Path) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(out)
    os.close(null)
