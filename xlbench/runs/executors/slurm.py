"""The ``slurm`` executor: queued runs become one Slurm job array, followed through ``squeue``.

Each array task runs ``python -m xlbench worker RUN_ID`` (under ``torchrun`` when a run has
several GPUs or nodes), with the database URL in its environment (never in argv or in the batch
script). The script is plain text written by xlbench from the options below, kept beside the
logs; nothing is pickled, so a worker never executes anything read from a shared folder but
xlbench itself (submitit, which pickles the callable it runs, is not used for that reason; the
Slurm features it offers are used directly: job arrays with a concurrency limit, ``--signal``
before the time limit, ``--requeue``, ``scancel``, ``squeue``).

* **Preemption and time limits.** Slurm sends ``SIGUSR1`` ``signal_seconds`` before the time
  limit and ``SIGTERM`` on preemption or ``scontrol requeue``; the worker stops at its next step
  with a checkpoint and hands the run back to the queue, and (after ``SIGUSR1``) requeues its own
  job. The restarted job's worker continues from the checkpoint.
* **Lost jobs.** A queued or running run whose job ``squeue`` no longer lists, or lists as
  ended (failed, cancelled, timed out, node failure…), while its worker is silent, is marked
  lost with the scheduler's word for it. ``sacct`` needs Slurm's accounting daemon, which many
  small clusters lack; ``squeue -t all`` keeps ended jobs for ``MinJobAge`` seconds.
* **Cancel.** ``xlbench cancel`` writes the cancel request, then ``scancel``s the job.
"""

from __future__ import annotations

import getpass
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from xlbench.errors import ConfigError, XlbenchError
from xlbench.runs.executors import Executor, check_store
from xlbench.store.store import TERMINAL_STATUSES

MAX_BACKOFF_SECONDS = 120  # the longest the follower waits between two tries of an unreachable scheduler
# squeue's words for a job that will not run (again) by itself
ENDED_STATES = {"BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY",
                "PREEMPTED", "TIMEOUT", "REVOKED", "SPECIAL_EXIT"}
QUIET_SECONDS = 8.0  # a worker that beat this recently may still be writing its outcome
_SAFE_LINE = re.compile(r"^--?[A-Za-z][\w-]*(=[^\n\r]*)?$")


class SlurmOptions(BaseModel):
    """The ``[executor]`` section for ``name = "slurm"``, or the matching ``--slurm-*`` flags."""

    model_config = ConfigDict(extra="forbid")
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time: str | None = None  # e.g. "04:00:00"
    gpus_per_run: int = Field(0, ge=0)  # GPUs per node for one run
    nodes: int = Field(1, ge=1)
    cpus_per_run: int | None = Field(None, ge=1)  # CPUs per task (per node)
    mem: str | None = None  # e.g. "32G" (per node)
    sbatch: list[str] = []  # extra #SBATCH lines, e.g. ["--constraint=a100", "--exclusive"]
    signal_seconds: int = Field(120, ge=10)  # SIGUSR1 this long before the time limit
    job_name: str = "xlbench"
    python: str | None = None  # the interpreter on the nodes (default: this one)
    port: int = Field(29500, ge=1024, le=65535)  # torchrun rendezvous port on the first node
    follow: bool = True  # wait and report until every run has ended
    poll_seconds: float = Field(5.0, gt=0)

    @field_validator("sbatch")
    @classmethod
    def _lines(cls, lines: list[str]) -> list[str]:
        for line in lines:
            if not _SAFE_LINE.match(line.strip()):
                raise ValueError(f"{line!r} is not one sbatch option (write e.g. --constraint=a100)")
        return [line.strip() for line in lines]

    @property
    def distributed(self) -> bool:
        return self.gpus_per_run > 1 or self.nodes > 1


@dataclass(frozen=True)
class JobState:
    job_id: str
    state: str
    node: str


def batch_script(run_ids: list[int], options: SlurmOptions, *, log_dir: Path, parallel: int | None,
                 python: str, workdir: Path) -> str:
    """The batch script for ``run_ids`` (one job, or one array task per run)."""
    o = options
    array = len(run_ids) > 1
    log = log_dir / ("slurm-%A_%a.log" if array else "slurm-%j.log")
    lines = ["#!/bin/bash",
             f"# xlbench: runs {' '.join(map(str, run_ids))}, written {datetime.now():%Y-%m-%d %H:%M:%S}",
             f"#SBATCH --job-name={o.job_name}", f"#SBATCH --output={log}", "#SBATCH --open-mode=append",
             f"#SBATCH --chdir={workdir}", "#SBATCH --requeue"]
    if array:
        lines.append(f"#SBATCH --array=0-{len(run_ids) - 1}" + (f"%{parallel}" if parallel else ""))
    # the signal goes to the batch shell (which execs the worker) or, under srun, to the job steps
    lines.append(f"#SBATCH --signal={'' if o.distributed else 'B:'}USR1@{o.signal_seconds}")
    lines += [f"#SBATCH --nodes={o.nodes}", "#SBATCH --ntasks-per-node=1"]
    for flag, value in (("partition", o.partition), ("account", o.account), ("qos", o.qos), ("time", o.time),
                        ("cpus-per-task", o.cpus_per_run), ("mem", o.mem)):
        if value is not None:
            lines.append(f"#SBATCH --{flag}={value}")
    if o.gpus_per_run:
        lines.append(f"#SBATCH --gpus-per-node={o.gpus_per_run}")
    lines += [f"#SBATCH {line}" for line in o.sbatch]
    lines += ["set -euo pipefail",
              "# the database URL arrives in the environment (XLBENCH_DB or XLBENCH_DB_FILE), never here"]
    if array:
        lines += [f"runs=({' '.join(map(str, run_ids))})", 'run=${runs[$SLURM_ARRAY_TASK_ID]}']
    else:
        lines.append(f"run={run_ids[0]}")
    py = shlex.quote(python)
    if o.distributed:
        lines += ['head=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
                  f"exec srun --kill-on-bad-exit=1 {py} -m torch.distributed.run --nnodes=\"$SLURM_NNODES\" "
                  f"--nproc-per-node={max(1, o.gpus_per_run)} --rdzv-backend=c10d --rdzv-endpoint=\"$head:{o.port}\" "
                  f"--rdzv-id=\"$SLURM_JOB_ID\" -m xlbench worker \"$run\""]
    else:
        lines.append(f'exec {py} -m xlbench worker "$run"')
    return "\n".join(lines) + "\n"


def _job_of_this_worker() -> str | None:
    """This worker's job as ``squeue`` and the run row name it (an array task: ``ARRAY_TASK``)."""
    if not os.environ.get("SLURM_JOB_ID"):
        return None
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    return f"{array}_{task}" if array and task else os.environ["SLURM_JOB_ID"]


class Outage:
    """The follower's view of a scheduler that does not answer: it says so once, with the time it
    started, waits longer each time (up to :data:`MAX_BACKOFF_SECONDS`), and says when it is back."""

    def __init__(self, poll_seconds: float, say: Callable[[str], None]) -> None:
        self.poll, self.say = poll_seconds, say
        self.since: datetime | None = None
        self.failures = 0

    def failed(self, exc: Exception) -> float:
        """Seconds to wait before asking again."""
        if self.since is None:
            self.since = datetime.now()
            self.say(f"Slurm unreachable since {self.since:%H:%M:%S} ({exc}); still following, the jobs run on")
        self.failures += 1
        return min(MAX_BACKOFF_SECONDS, self.poll * 2 ** min(self.failures, 10))

    def answered(self) -> None:
        if self.since is not None:
            self.say(f"Slurm answers again (unreachable {(datetime.now() - self.since).total_seconds():.0f} s)")
        self.since, self.failures = None, 0


def _command(args: list[str], what: str) -> str:
    try:
        res = subprocess.run(args, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise XlbenchError(f"{args[0]} is not installed here: the slurm executor runs on a Slurm login node") from None
    except subprocess.TimeoutExpired:
        raise XlbenchError(f"{what}: {args[0]} did not answer within 60 s") from None
    if res.returncode != 0:
        detail = (res.stderr or res.stdout).strip().splitlines()
        raise XlbenchError(f"{what}: {' '.join(args[:2])} failed: {detail[-1] if detail else f'exit {res.returncode}'}")
    return res.stdout


class SlurmExecutor(Executor):
    """Runs each queued run as a task of a Slurm job array (see the module's docstring)."""

    kind = "executor"
    name = "slurm"
    shared_store = True

    def __init__(self, **options) -> None:
        try:
            self.options = SlurmOptions.model_validate(options)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "executor"
            raise ConfigError(f"[executor] {where}: {err['msg']}") from None

    # --- placing runs ---------------------------------------------------------------------

    def submit(self, store, run_ids: list[int], *, log_dir: Path, parallel: int | None = None) -> dict[int, str]:
        """Submit ``run_ids`` as one job (array); records and returns each run's job id."""
        check_store(self, store)
        log_dir = Path(log_dir).resolve()
        scripts = log_dir / "slurm"
        scripts.mkdir(parents=True, exist_ok=True)
        python = self.options.python or sys.executable
        text = batch_script(run_ids, self.options, log_dir=log_dir, parallel=parallel, python=python, workdir=Path.cwd())
        path = scripts / f"runs-{run_ids[0]}-{run_ids[-1]}-{datetime.now():%Y%m%d-%H%M%S}.sbatch"
        path.write_text(text)
        env = dict(os.environ)
        if not env.get("XLBENCH_DB_FILE"):  # with a URL file, the jobs read it (the password stays in the file)
            env["XLBENCH_DB"] = store.url  # through sbatch's environment (--export=ALL), not its argv
        out = _command(["sbatch", "--parsable", str(path)], "submitting to Slurm").strip()
        job = out.split(";")[0]
        if not job.isdigit():
            raise XlbenchError(f"sbatch answered {out!r}, not a job id")
        ids = {run_id: (f"{job}_{i}" if len(run_ids) > 1 else job) for i, run_id in enumerate(run_ids)}
        for run_id, job_id in ids.items():
            store.set_job(run_id, self.name, job_id)
        return ids

    def run(self, store, *, sweep_id: int | None = None, workers: int = 1, log_dir: Path,
            say: Callable[[str], None] = print) -> dict[int, str]:
        """Submit every queued run not already waiting in a job, then (with ``follow``) report
        until each has ended. Ctrl-C stops following; the jobs run on."""
        check_store(self, store)
        self.reap(store)
        waiting = {r.id for r in store.placed_runs(self.name)}
        queued = [r.id for r in store.queued_runs(sweep_id=sweep_id) if r.id not in waiting]
        placed: dict[int, str] = {}
        if queued:
            placed = self.submit(store, queued, log_dir=log_dir, parallel=workers if len(queued) > 1 else None)
            job = next(iter(placed.values())).split("_")[0]
            say(f"submitted {len(queued)} run(s) to Slurm as job {job}"
                + (f" (array, at most {workers} at a time)" if len(queued) > 1 else "") + ": "
                + ", ".join(f"run {r} → {j}" for r, j in placed.items()))
        follow = {r.id: r.job_id for r in store.placed_runs(self.name) if sweep_id is None or r.sweep_id == sweep_id}
        follow |= placed
        if not self.options.follow or not follow:
            return {}
        return self.follow(store, follow, say=say)

    def follow(self, store, jobs: dict[int, str], *, say: Callable[[str], None] = print) -> dict[int, str]:
        """Report each run's status changes (with its job and node) until every one has ended."""
        seen: dict[int, str] = {}
        ended: dict[int, str] = {}
        outage = Outage(self.options.poll_seconds, say)
        try:
            while len(ended) < len(jobs):
                try:
                    states = self.states()  # one squeue per poll, for losing runs and for reporting
                except XlbenchError as exc:  # the controller restarting, a network blip: the jobs run on
                    time.sleep(outage.failed(exc))
                    continue
                outage.answered()
                self.reap(store, states)
                for run_id, job_id in jobs.items():
                    if run_id in ended:
                        continue
                    run = store.get_run(run_id)
                    current = run.job_id or job_id  # the row's, once a requeue has placed it again
                    job = states.get(current)
                    where = f"job {current}" + (f" on {job.node}" if job and job.node else "")
                    word = f"{run.status} ({where}{', Slurm: ' + job.state if job else ''})"
                    if seen.get(run_id) != word:
                        seen[run_id] = word
                        say(f"run {run_id} {word}" + (f": {run.error}" if run.error and run.status != "running" else ""))
                    if run.status in TERMINAL_STATUSES:
                        ended[run_id] = run.status
                if len(ended) < len(jobs):
                    time.sleep(self.options.poll_seconds)
        except KeyboardInterrupt:
            say("stopped following; the jobs run on in Slurm (`xlbench runs` shows them, `xlbench cancel RUN` stops one)")
        return ended

    # --- following, cancelling, losing ----------------------------------------------------

    def stop_kind(self) -> str | None:
        """Why Slurm sent this worker SIGTERM: ``"requeue"`` when it is restarting the job
        (preemption, ``scontrol requeue``: its restart count has grown past this run's), ``"cancel"``
        when it is ending it (``scancel``: the job is completing with no restart), None when it
        cannot be asked. Both look the same in ``squeue`` (COMPLETING) while the worker lives."""
        job = os.environ.get("SLURM_JOB_ID")
        if not job:
            return None
        try:
            out = _command(["scontrol", "show", "job", job, "--oneliner"], f"asking Slurm about job {job}")
        except XlbenchError:
            return None
        fields = dict(re.findall(r"(\w+)=(\S*)", out))
        try:
            restarted = int(fields.get("Restarts", "0")) > int(os.environ.get("SLURM_RESTART_COUNT") or 0)
        except ValueError:
            return None
        if restarted:
            return "requeue"
        return "cancel" if fields.get("JobState") in ("COMPLETING", "CANCELLED") else None

    def states(self) -> dict[str, JobState]:
        """This user's jobs as ``squeue`` knows them (ended ones for ``MinJobAge``), one per array task."""
        out = _command(["squeue", "--noheader", "--array", "--states=all", f"--user={getpass.getuser()}",
                        "--format=%i|%T|%N"], "asking Slurm for job states")
        states = {}
        for line in out.splitlines():
            parts = line.strip().split("|")
            if len(parts) == 3:
                states[parts[0]] = JobState(parts[0], parts[1], parts[2])
        return states

    def reap(self, store, states: dict[str, JobState] | None = None) -> list[int]:
        """Mark lost the runs whose job ``squeue`` (or ``states``, its answer) shows ended or unknown."""
        runs = store.placed_runs(self.name)
        if not runs:
            return []
        states = self.states() if states is None else states
        lost = []
        for run in runs:
            job = states.get(run.job_id)
            if job is None:
                why = f"Slurm job {run.job_id} is no longer known to the scheduler (squeue)"
            elif job.state in ENDED_STATES:
                why = f"Slurm job {run.job_id} ended {job.state}"
            else:
                continue
            if store.mark_lost(run.id, f"{why} and its worker recorded no outcome", quiet_for=QUIET_SECONDS):
                lost.append(run.id)
        return lost

    def cancel(self, store, run) -> str | None:
        _command(["scancel", run.job_id], f"cancelling run {run.id}")
        return f"scancel {run.job_id}"

    # --- inside a worker --------------------------------------------------------------------

    def stop_reason(self, signum: int) -> str | None:
        job = _job_of_this_worker()
        if not job:
            return None
        if signum == signal.SIGUSR1:
            return f"Slurm job {job}: the time limit is near (SIGUSR1); checkpoint kept, the job is requeued"
        if signum == signal.SIGTERM:
            if self.stop_kind() == "cancel":  # scancel also sends SIGTERM: nothing will restart it
                return None
            return f"Slurm job {job} was preempted or requeued (SIGTERM); checkpoint kept, it continues when Slurm restarts it"
        return None

    def cancel_reason(self, signum: int) -> str | None:
        """For a worker stopped by ``scancel`` from outside xlbench: a sentence saying so."""
        job = _job_of_this_worker()
        if job and signum == signal.SIGTERM and self.stop_kind() == "cancel":
            return f"Slurm job {job} was cancelled from outside xlbench (scancel)"
        return None

    def after_stop(self, signum: int) -> None:
        """After a time-limit warning the worker requeues its own job (preemption requeues itself)."""
        job = os.environ.get("SLURM_JOB_ID")
        if job and signum == signal.SIGUSR1:
            _command(["scontrol", "requeue", job], "requeueing the job")
