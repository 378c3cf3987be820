"""A worker executes one run row: claim it, heartbeat, honour cancel, record the outcome.

Every way of executing a run ends here through :func:`xlbench.runs.execute.execute_run`, which
builds the job and calls :func:`execute`. A worker that dies without a word is
noticed by :meth:`Store.reap_lost` from its stale heartbeat (or, on the same host, its missing
process) and marked ``lost``; Ctrl-C and cancel requests become ``cancelled`` with everything
already written kept.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

from xlbench.core import interrupts
from xlbench.core.progress import Reporter
from xlbench.errors import Cancelled, Evicted, XlbenchError, one_line
from xlbench.store.store import HEARTBEAT_SECONDS, Store


class StoreReporter(Reporter):
    """Writes phase and progress (at most every ``interval`` s) and events to the run's rows.

    ``advance`` is the safe point: if a cancel was requested it raises :class:`Cancelled`.
    """

    def __init__(self, store: Store, run_id: int, cancel: threading.Event, interval: float = 0.5) -> None:
        self.store, self.run_id, self.cancel, self.interval = store, run_id, cancel, interval
        self._phase = ""
        self._last = 0.0

    def _check(self) -> None:
        if self.store.evicted(self.run_id):
            raise self.store.eviction(self.run_id)
        if self.cancel.is_set():
            raise Cancelled(f"run {self.run_id} cancelled on request")

    def phase(self, name: str, total: int | None = None) -> None:
        self._check()
        self._phase = name
        self._last = time.monotonic()
        self._progress(0, total)

    def advance(self, done: int, total: int | None = None) -> None:
        self._check()
        now = time.monotonic()
        if now - self._last >= self.interval or (total is not None and done >= total):
            self._last = now
            self._progress(done, total)

    def _progress(self, done: int, total: int | None) -> None:
        from sqlalchemy.exc import OperationalError

        try:
            self.store.set_progress(self.run_id, self._phase, done, total)
        except OperationalError:
            pass  # a busy database: progress is a display hint, the next update catches up

    def event(self, message: str, level: str = "info", **data) -> None:
        self.store.add_event(self.run_id, message, level, data.get("data"))

    def cancelled(self) -> bool:
        if self.store.evicted(self.run_id):
            self._check()  # raises: an evicted worker must not save a checkpoint on its way out
        return self.cancel.is_set()


class Heartbeat(threading.Thread):
    """Beats every ``HEARTBEAT_SECONDS`` on its own connection and raises the cancel flag."""

    def __init__(self, store: Store, run_id: int, cancel: threading.Event) -> None:
        super().__init__(name=f"heartbeat-{run_id}", daemon=True)
        self.store, self.run_id, self.cancel = store, run_id, cancel
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(HEARTBEAT_SECONDS):
            try:
                if self.store.heartbeat(self.run_id):
                    self.cancel.set()
            except Evicted:  # the row names another worker now (the store remembers): stop beating, stop the job
                self.cancel.set()
                return
            except Exception:  # a busy database must not kill the worker; the next beat retries
                continue

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


def git_commit() -> str | None:
    """The checkout's commit (``-dirty`` with uncommitted changes), or None outside a git checkout."""
    root = Path(__file__).resolve().parents[2]  # xlbench/runs/worker.py → the repository
    if not (root / ".git").exists():
        return None
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if sha.returncode != 0:
        return None
    return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def set_threads(threads: int) -> None:
    """CPU thread count for torch (and faiss when it loads): 1 by default, see docs/STACK notes."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    torch.set_num_threads(threads)


def environment(threads: int) -> dict:
    from xlbench.core.environment import describe
    from xlbench.store.secrets import redact_argv

    return {**describe(threads), "argv": redact_argv(sys.argv)}


def execute(store: Store, run_id: int, job, *, reporter: Reporter | None = None) -> None:
    """Claim run ``run_id`` and run ``job(reporter)`` in this process, recording how it ends; the
    CPU threads are the job's (its config's ``threads``; 1 for a plain callable). Front ends call
    :func:`xlbench.runs.execute.execute_run`, which builds the job from the stored config.

    Raises :class:`Cancelled` after recording a cancel, and re-raises failures after recording
    them, so a headless caller can exit with the right code.
    """
    from xlbench.core.progress import FanOut

    threads = getattr(job, "threads", 1)
    set_threads(threads)
    store.claim_run(run_id, env=environment(threads), git_commit=git_commit())
    _sigterm_cancels()
    cancel = threading.Event()
    beat = Heartbeat(store, run_id, cancel)
    beat.start()
    db_reporter = StoreReporter(store, run_id, cancel)
    mirror = _start_mirror(store, run_id)
    try:
        job(FanOut(db_reporter, reporter))
    except Evicted:
        raise  # the run row names another worker: nothing more is written by this one
    except (KeyboardInterrupt, Cancelled) as exc:
        if store.evicted(run_id):
            raise store.eviction(run_id) from None
        _hand_back_if_preempted(store, run_id)
        message = "interrupted (Ctrl-C)" if isinstance(exc, KeyboardInterrupt) else str(exc)
        outside = _stopped_from_outside(store, run_id)
        if outside:
            message = outside if isinstance(exc, KeyboardInterrupt) else f"{outside}; {message}"
        _finish(store, run_id, "cancelled", message)
        raise Cancelled(f"run {run_id} cancelled: {message}; everything written so far is kept") from None
    except Exception as exc:
        detail = None if isinstance(exc, XlbenchError) else traceback.format_exc()
        try:
            _finish(store, run_id, "failed", one_line(exc), detail)
        except Exception as unrecorded:  # e.g. the disk is full: say so in one line, keep the real cause
            print(f"xlbench: run {run_id} failed ({one_line(exc)}) and that could not be recorded: "
                  f"{one_line(unrecorded)}", file=sys.stderr)
        raise
    else:
        _finish(store, run_id, "finished", None)
    finally:
        beat.stop()
        if mirror is not None and not store.evicted(run_id):
            mirror.close()


def _start_mirror(store: Store, run_id: int):
    """The run's copy to the experiment trackers its config names (xlbench.tracking), or None.
    Trouble there is a warning on the run, in its log too, and never stops it."""
    from xlbench.tracking import start_mirror

    def say(message: str, level: str = "warning") -> None:
        print(f"xlbench: run {run_id}: {'warning: ' if level == 'warning' else ''}{message}", file=sys.stderr, flush=True)
        try:
            store.add_event(run_id, message, level)
        except Exception:  # noqa: BLE001  a busy database: the line above still says it
            pass

    try:
        return start_mirror(store, run_id, say)
    except Exception as exc:  # noqa: BLE001  e.g. a config the mirror cannot read: the job reports that itself
        say(f"reporting not started: {one_line(exc)}")
        return None


def _sigterm_cancels() -> None:
    """SIGTERM (a queue shutting down, ``kill``, a scheduler) and SIGUSR1 (a scheduler's time-limit
    warning) stop the run like Ctrl-C instead of leaving a lost run."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum, frame):
        interrupts.note(signum)
        raise KeyboardInterrupt

    for sig in (signal.SIGTERM, signal.SIGUSR1):
        signal.signal(sig, handler)


def _hand_back_if_preempted(store: Store, run_id: int) -> None:
    """If the stop came from the scheduler that placed this run (preemption, requeue, time limit)
    and nobody asked to cancel it, hand the run back to the queue (its checkpoint is saved) and let
    the executor requeue the job; raises :class:`Cancelled` saying so. Otherwise return."""
    signum = interrupts.last()
    if signum is None:
        return
    run = store.get_run(run_id)
    if run.cancel_requested or not run.executor:
        return
    from xlbench.runs.executors import make_executor

    executor = make_executor(run.executor)
    reason = executor.stop_reason(signum)
    if not reason:
        return
    store.back_to_queue(run_id, reason)
    executor.after_stop(signum)
    raise Cancelled(f"run {run_id} handed back to the queue: {reason}")


def _stopped_from_outside(store: Store, run_id: int) -> str | None:
    """Why a signal that is not a preemption stopped the run, in the words of the executor that
    placed it (``scancel`` from outside xlbench), or None."""
    signum = interrupts.last()
    run = store.get_run(run_id)
    if signum is None or not run.executor:
        return None
    from xlbench.runs.executors import make_executor

    reason = getattr(make_executor(run.executor), "cancel_reason", None)
    return reason(signum) if reason else None


def _finish(store: Store, run_id: int, status: str, error: str | None, detail: str | None = None) -> None:
    level = "info" if status == "finished" else "error"
    store.add_event(run_id, f"run {status}" + (f": {error}" if error else ""), level, {"traceback": detail} if detail else None)
    store.finish_run(run_id, status, error)
