"""The store: every read and write of runs, models, datasets, metrics and events.

Each method opens a short-lived session (several processes share the database; a long session
would serve stale rows and hold back SQLite's WAL checkpoints) and returns detached objects.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterable
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, text
from sqlmodel import select

from xlbench.errors import Evicted, StoreError
from xlbench.store.database import is_read_only, open_engine, session
from xlbench.store.models import ACTIVE_STATUSES, Checkpoint, Dataset, Metric, Model, QueryResult, Run, RunEvent, TrainPoint
from xlbench.store.secrets import db_url, redact_url

HEARTBEAT_SECONDS = 2.0
LOST_AFTER_SECONDS = 15.0
TERMINAL_STATUSES = ("finished", "failed", "cancelled", "lost")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (killed, not yet reaped by its parent) is not alive
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _queued(sweep_id: int | None):
    """Queued top-level runs (of one sweep, if given), oldest first, as a query."""
    q = select(Run).where(Run.status == "queued", Run.parent_id.is_(None)).order_by(Run.id)
    return q if sweep_id is None else q.where(Run.sweep_id == sweep_id)


def _get_run(s, run_id: int, url: str) -> Run:
    run = s.get(Run, run_id)
    if run is None:
        raise StoreError(f"no run {run_id} in {url}")
    return run


def db_now(s) -> datetime:
    """The database's clock (UTC). Heartbeats and the lost-worker cutoff both read it, so hosts with
    skewed clocks that share one PostgreSQL agree on what is stale."""
    if s.get_bind().dialect.name == "sqlite":  # a local file: the database's clock is this machine's
        raw = s.execute(text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")).scalar()
        return datetime.fromisoformat(raw).replace(tzinfo=UTC)
    return s.execute(text("SELECT CURRENT_TIMESTAMP")).scalar().astimezone(UTC)


class Store:
    """Every read and write of the database. A worker's writes about a run it claimed are fenced:
    each one first checks, in the same transaction, that the run is still ``running`` under this
    process (pid and host); a worker whose run was marked lost and resumed elsewhere gets
    :class:`~xlbench.errors.Evicted` instead of writing."""

    def __init__(self, url: str | None = None, *, migrate: bool = True) -> None:
        self.url = db_url(url)
        self.display_url = redact_url(self.url)  # what is shown or written anywhere: no password
        self.engine = open_engine(self.url, migrate_schema=migrate)
        self.owner = (os.getpid(), socket.gethostname())
        self._leases: set[int] = set()  # runs this process claimed and has not finished
        self._evicted: set[int] = set()  # runs taken from this process: it writes nothing more about them

    @contextmanager
    def _writing(self, run_id: int):
        """A session for writing about ``run_id``, fenced if this process claimed that run."""
        if run_id in self._evicted:
            raise self.eviction(run_id)
        with session(self.engine) as s:
            if run_id in self._leases:
                self._fence(s, run_id)
            yield s

    def _fence(self, s, run_id: int) -> None:
        from sqlalchemy import update

        pid, host = self.owner
        owned = s.execute(update(Run).where(Run.id == run_id, Run.status == "running", Run.pid == pid,
                                            Run.host == host).values(pid=pid)).rowcount == 1
        if not owned:
            s.rollback()
            self._leases.discard(run_id)
            self._evicted.add(run_id)
            raise self.eviction(run_id)

    def evicted(self, run_id: int) -> bool:
        """Whether a write of this process found ``run_id`` taken over (heartbeat thread included)."""
        return run_id in self._evicted

    def eviction(self, run_id: int) -> Evicted:
        """The error a worker stops with once its run belongs to another worker."""
        pid, host = self.owner
        return Evicted(f"run {run_id} no longer belongs to this worker (pid {pid} on {host}): it was marked lost "
                       "or resumed elsewhere; this worker stops without writing")

    def check_owner(self, run_id: int) -> None:
        """Raise :class:`~xlbench.errors.Evicted` unless this process still owns its claimed run."""
        with self._writing(run_id) as s:
            s.commit()

    def dispose(self) -> None:
        self.engine.dispose()

    # --- models and datasets ------------------------------------------------------------

    def ensure_model(self, name: str, *, encoder: str, source: str, label: str, info: dict) -> Model:
        with session(self.engine) as s:
            model = s.exec(select(Model).where(Model.name == name)).first()
            if model is None:
                model = Model(name=name, encoder=encoder, source=source, label=label, info_json=json.dumps(info, default=str))
                s.add(model)
            else:
                model.encoder, model.source, model.label = encoder, source, label
                model.info_json = json.dumps(info, default=str)
            s.commit()
            s.refresh(model)
            return model

    def ensure_dataset(self, *, name: str, version: str, kind: str, source: str, languages: list[str], stats: dict) -> Dataset:
        with session(self.engine) as s:
            ds = s.exec(select(Dataset).where(Dataset.name == name, Dataset.version == version)).first()
            if ds is None:
                ds = Dataset(name=name, version=version, kind=kind, source=source, languages=",".join(languages),
                             stats_json=json.dumps(stats))
                s.add(ds)
                s.commit()
                s.refresh(ds)
            return ds

    def models(self) -> list[Model]:
        with session(self.engine) as s:
            return list(s.exec(select(Model).order_by(Model.id)))

    def datasets(self) -> list[Dataset]:
        with session(self.engine) as s:
            return list(s.exec(select(Dataset).order_by(Dataset.id)))

    # --- runs ---------------------------------------------------------------------------

    def create_run(self, *, kind: str, name: str, config: dict, model_id: int | None = None,
                   parent_id: int | None = None) -> Run:
        from xlbench import __version__

        run = Run(kind=kind, name=name, config_json=json.dumps(config, sort_keys=True), model_id=model_id,
                  xlbench_version=__version__, parent_id=parent_id)
        with self._writing(parent_id) as s:
            s.add(run)
            s.commit()
            s.refresh(run)
            return run

    def get_run(self, run_id: int) -> Run:
        with session(self.engine) as s:
            return _get_run(s, run_id, self.display_url)

    def list_runs(self, *, limit: int | None = None, statuses: Iterable[str] | None = None) -> list[Run]:
        with session(self.engine) as s:
            q = select(Run).order_by(Run.id.desc())
            if statuses:
                q = q.where(Run.status.in_(list(statuses)))
            if limit:
                q = q.limit(limit)
            return list(s.exec(q))

    def claim_run(self, run_id: int, *, env: dict, git_commit: str | None) -> Run:
        """Mark a queued run as running in this process; refuse one that is already live or done.

        The claim is one conditional UPDATE, so two workers (two queues) never both get a run."""
        from sqlalchemy import update

        with session(self.engine) as s:
            now = db_now(s)
            result = s.execute(
                update(Run).where(Run.id == run_id, Run.status == "queued").values(
                    status="running", started_at=now, heartbeat_at=now, pid=self.owner[0], host=self.owner[1],
                    env_json=json.dumps(env, default=str), git_commit=git_commit)
            )
            s.commit()
            if result.rowcount != 1:
                run = _get_run(s, run_id, self.display_url)
                raise StoreError(f"run {run_id} is {run.status}, not queued; only a queued run can start")
            self._leases.add(run_id)
            self._evicted.discard(run_id)
            return s.get(Run, run_id)

    def requeue(self, run_id: int) -> Run:
        """Put a cancelled, failed or lost run back in the queue so a worker can resume it
        (never an imported one: its checkpoints and paths belong to another machine)."""
        from xlbench.store.transfer import ensure_local

        with session(self.engine) as s:
            run = _get_run(s, run_id, self.display_url)
            ensure_local(run)
            if run.status not in ("cancelled", "failed", "lost"):
                raise StoreError(f"run {run_id} is {run.status}; only a cancelled, failed or lost run can be resumed")
            run.status, run.cancel_requested, run.error, run.finished_at = "queued", False, None, None
            run.executor = run.job_id = None  # its old job is over: the next queue places it afresh
            s.add(RunEvent(run_id=run_id, message="queued again to resume"))
            s.commit()
            s.refresh(run)
            return run

    def queued_runs(self, *, sweep_id: int | None = None) -> list[Run]:
        """Queued top-level runs (a child run is executed by its parent's worker), oldest first."""
        with session(self.engine) as s:
            return list(s.exec(_queued(sweep_id)))

    def next_queued(self, *, sweep_id: int | None = None, exclude: set[int] = frozenset()) -> Run | None:
        with session(self.engine) as s:
            q = _queued(sweep_id)
            if exclude:
                q = q.where(Run.id.not_in(exclude))
            return s.exec(q).first()

    def create_sweep(self, *, name: str, base_config: dict, grid: dict, run_configs: list[tuple[str, dict]]) -> tuple[int, list[int]]:
        """A sweep row and its queued runs, in one transaction."""
        from xlbench import __version__
        from xlbench.store.models import Sweep

        with session(self.engine) as s:
            sweep = Sweep(name=name, base_config_json=json.dumps(base_config, sort_keys=True), grid_json=json.dumps(grid))
            s.add(sweep)
            s.flush()
            runs = [Run(kind="train", name=run_name, config_json=json.dumps(cfg, sort_keys=True), sweep_id=sweep.id,
                        xlbench_version=__version__) for run_name, cfg in run_configs]
            s.add_all(runs)
            s.commit()
            return sweep.id, [r.id for r in runs]

    def extend_sweep(self, sweep_id: int, *, grid: dict, run_configs: list[tuple[str, dict]]) -> list[int]:
        """More queued runs in a sweep, and its grid widened to hold them, in one transaction."""
        from xlbench import __version__
        from xlbench.store.models import Sweep

        with session(self.engine) as s:
            sweep = s.get(Sweep, sweep_id)
            if sweep is None:
                raise StoreError(f"no sweep {sweep_id} in {self.display_url}")
            sweep.grid_json = json.dumps(grid)
            runs = [Run(kind="train", name=run_name, config_json=json.dumps(cfg, sort_keys=True), sweep_id=sweep_id,
                        xlbench_version=__version__) for run_name, cfg in run_configs]
            s.add(sweep)
            s.add_all(runs)
            s.commit()
            return [r.id for r in runs]

    def sweeps(self) -> list:
        from xlbench.store.models import Sweep

        with session(self.engine) as s:
            return list(s.exec(select(Sweep).order_by(Sweep.id.desc())))

    def sweep(self, sweep_id: int):
        from xlbench.store.models import Sweep

        with session(self.engine) as s:
            sweep = s.get(Sweep, sweep_id)
            if sweep is None:
                raise StoreError(f"no sweep {sweep_id} in {self.display_url}")
            runs = list(s.exec(select(Run).where(Run.sweep_id == sweep_id).order_by(Run.id)))
            return sweep, runs

    def children(self, run_id: int) -> list[Run]:
        with session(self.engine) as s:
            return list(s.exec(select(Run).where(Run.parent_id == run_id).order_by(Run.id)))

    def set_model(self, run_id: int, model_id: int) -> None:
        with self._writing(run_id) as s:
            run = s.get(Run, run_id)
            run.model_id = model_id
            s.commit()

    def update_env(self, run_id: int, **extra) -> None:
        with self._writing(run_id) as s:
            run = s.get(Run, run_id)
            env = json.loads(run.env_json or "{}")
            env.update(extra)
            run.env_json = json.dumps(env, default=str)
            s.commit()

    def heartbeat(self, run_id: int) -> bool:
        """Record, on the database's clock, that the worker is alive; returns whether a cancel was
        requested. Raises :class:`~xlbench.errors.Evicted` if the run is no longer this worker's."""
        with self._writing(run_id) as s:
            run = s.get(Run, run_id)
            if run is None:
                return True
            run.heartbeat_at = db_now(s)
            s.commit()
            return bool(run.cancel_requested)

    def set_progress(self, run_id: int, phase: str, done: int | None, total: int | None) -> None:
        with self._writing(run_id) as s:
            run = s.get(Run, run_id)
            run.phase, run.progress_done, run.progress_total = phase, done, total
            run.heartbeat_at = db_now(s)
            s.commit()

    def finish_run(self, run_id: int, status: str, error: str | None = None) -> Run:
        with self._writing(run_id) as s:
            run = s.get(Run, run_id)
            run.status, run.error, run.finished_at = status, error, db_now(s)
            s.commit()
            s.refresh(run)
        self._leases.discard(run_id)
        return run

    def request_cancel(self, run_id: int) -> Run:
        """Cancel a queued run at once, or ask a running one's worker to stop at its next step.

        Conditional UPDATEs, so a worker that claims the run meanwhile gets the request instead
        of having its running row overwritten as cancelled."""
        from sqlalchemy import update

        with session(self.engine) as s:
            _get_run(s, run_id, self.display_url)
            now = db_now(s)
            if not s.execute(update(Run).where(Run.id == run_id, Run.status == "queued").values(
                    status="cancelled", finished_at=now)).rowcount:
                s.execute(update(Run).where(Run.id == run_id, Run.status == "running").values(cancel_requested=True))
            s.commit()
            return _get_run(s, run_id, self.display_url)

    def set_job(self, run_id: int, executor: str, job_id: str | None) -> None:
        """Record where a queued run was placed: the executor and, on a scheduler, its job id."""
        with session(self.engine) as s:
            run = _get_run(s, run_id, self.display_url)
            run.executor, run.job_id = executor, job_id
            if job_id:
                s.add(RunEvent(run_id=run_id, message=f"placed by the {executor} executor as job {job_id}"))
            s.commit()

    def placed_runs(self, executor: str | None = None) -> list[Run]:
        """Queued or running runs that ``executor`` (any, if None) placed under a scheduler job id."""
        with session(self.engine) as s:
            q = select(Run).where(Run.job_id.is_not(None), Run.status.in_(ACTIVE_STATUSES))
            if executor is not None:
                q = q.where(Run.executor == executor)
            return list(s.exec(q.order_by(Run.id)))

    def mark_lost(self, run_id: int, reason: str, *, quiet_for: float = 0.0) -> bool:
        """Mark a queued or running run ``lost`` for ``reason`` (e.g. its scheduler job ended without
        the worker recording an outcome), unless it is running and its worker beat within the last
        ``quiet_for`` seconds (it may be writing its outcome right now); returns whether it changed."""
        from sqlalchemy import or_, update

        with session(self.engine) as s:
            now = db_now(s)
            silent = or_(Run.status == "queued", Run.heartbeat_at.is_(None),
                         Run.heartbeat_at < now - timedelta(seconds=quiet_for))
            changed = s.execute(update(Run).where(Run.id == run_id, Run.status.in_(ACTIVE_STATUSES), silent).values(
                status="lost", error=reason, finished_at=now)).rowcount == 1
            if changed:
                s.add(RunEvent(run_id=run_id, level="error", message=reason))
            s.commit()
            return changed

    def back_to_queue(self, run_id: int, reason: str) -> None:
        """A running worker hands its run back to the queue (its job was preempted or timed out and
        will be started again by the scheduler); the next worker resumes from the last checkpoint."""
        with self._writing(run_id) as s:
            run = s.get(Run, run_id)
            run.status, run.pid, run.heartbeat_at, run.cancel_requested = "queued", None, None, False
            s.add(RunEvent(run_id=run_id, level="warning", message=reason))
            s.commit()
        self._leases.discard(run_id)

    def reap_lost(self, *, stale_seconds: float = LOST_AFTER_SECONDS) -> list[int]:
        """Mark running runs whose worker is gone as ``lost``: no heartbeat for ``stale_seconds``,
        or (on this host) a worker process that no longer exists.

        Each mark is one conditional UPDATE on what was seen (still running, the same worker, and
        for a silent one still silent): a worker that records its outcome and exits between this
        look and the mark keeps its outcome, and one that beats in between keeps running."""
        from sqlalchemy import or_, update

        if is_read_only(self.engine):
            return []  # read-only media: nothing can be marked; the statuses shown are as stored
        host = socket.gethostname()
        with session(self.engine) as s:
            cutoff = db_now(s) - timedelta(seconds=stale_seconds)
            running = s.exec(select(Run).where(Run.status == "running").order_by(Run.id)).all()
        lost: list[int] = []
        for run in running:
            stale = run.heartbeat_at is None or run.heartbeat_at < cutoff
            dead = run.host == host and run.pid is not None and not _pid_alive(run.pid)
            if not (stale or dead):
                continue
            why = "its process is gone" if dead else f"no heartbeat for {stale_seconds:.0f} s"
            error = f"worker stopped heart-beating ({why})"
            still = [Run.id == run.id, Run.status == "running", Run.pid.is_(None) if run.pid is None else Run.pid == run.pid]
            if not dead:  # lost only for its silence: it must still be silent
                still.append(or_(Run.heartbeat_at.is_(None), Run.heartbeat_at < cutoff))
            with session(self.engine) as s:  # one short transaction per mark: no lock held over the next look
                marked = s.execute(update(Run).where(*still).values(status="lost", error=error, finished_at=db_now(s)))
                if marked.rowcount == 1:
                    s.add(RunEvent(run_id=run.id, level="error", message=error))
                    lost.append(run.id)
                s.commit()
        return lost

    # --- events, metrics, results -------------------------------------------------------

    def add_event(self, run_id: int, message: str, level: str = "info", data: dict | None = None) -> None:
        with self._writing(run_id) as s:
            s.add(RunEvent(run_id=run_id, message=message, level=level, data_json=json.dumps(data or {}, default=str)))
            s.commit()

    def events(self, run_id: int, *, after_id: int = 0) -> list[RunEvent]:
        with session(self.engine) as s:
            q = select(RunEvent).where(RunEvent.run_id == run_id, RunEvent.id > after_id).order_by(RunEvent.id)
            return list(s.exec(q))

    def save_results(self, run_id: int, rows: list[Metric], result: QueryResult) -> None:
        """Replace one dataset's metrics and per-query results for a run, in one transaction."""
        with self._writing(run_id) as s:
            s.exec(delete(Metric).where(Metric.run_id == run_id, Metric.dataset == result.dataset))
            s.exec(delete(QueryResult).where(QueryResult.run_id == run_id, QueryResult.dataset == result.dataset))
            s.add_all(rows)
            s.add(result)
            s.commit()

    def metrics(self, run_id: int, dataset: str | None = None) -> list[Metric]:
        with session(self.engine) as s:
            q = select(Metric).where(Metric.run_id == run_id)
            if dataset:
                q = q.where(Metric.dataset == dataset)
            return list(s.exec(q.order_by(Metric.id)))

    def query_results_count(self, run_id: int) -> int:
        """How many datasets have per-query results for the run (without reading them)."""
        from sqlalchemy import func

        with session(self.engine) as s:
            return s.exec(select(func.count()).select_from(QueryResult).where(QueryResult.run_id == run_id)).one()

    def query_results(self, run_id: int) -> list[QueryResult]:
        with session(self.engine) as s:
            return list(s.exec(select(QueryResult).where(QueryResult.run_id == run_id).order_by(QueryResult.id)))

    def add_train_points(self, run_id: int, points: list[dict]) -> None:
        if not points:
            return
        with self._writing(run_id) as s:
            s.add_all([TrainPoint(run_id=run_id, **p) for p in points])
            s.commit()

    def train_points(self, run_id: int, *, after_id: int = 0, split: str | None = None) -> list[TrainPoint]:
        with session(self.engine) as s:
            q = select(TrainPoint).where(TrainPoint.run_id == run_id, TrainPoint.id > after_id)
            if split:
                q = q.where(TrainPoint.split == split)
            return list(s.exec(q.order_by(TrainPoint.id)))

    def delete_train_points_after(self, run_id: int, step: int) -> None:
        """Forget steps logged after a checkpoint (they will be redone when the run resumes)."""
        with self._writing(run_id) as s:
            s.exec(delete(TrainPoint).where(TrainPoint.run_id == run_id, TrainPoint.step > step))
            s.commit()

    def last_checkpoint(self, run_id: int) -> Checkpoint | None:
        with session(self.engine) as s:
            q = select(Checkpoint).where(Checkpoint.run_id == run_id).order_by(Checkpoint.step.desc())
            return s.exec(q).first()

    def add_checkpoint(self, run_id: int, step: int, path: str, info: dict | None = None) -> None:
        with self._writing(run_id) as s:
            s.add(Checkpoint(run_id=run_id, step=step, path=path, info_json=json.dumps(info or {})))
            s.commit()

    # --- comparison, export, import ------------------------------------------------------

    def run_inputs(self, run_ids: list[int]):
        """What :func:`xlbench.core.compare.compare_runs` needs for each run, in the given order."""
        from xlbench.core.compare import RunInput

        out = []
        for run_id in run_ids:
            run = self.get_run(run_id)
            stored = self.query_results(run_id)
            results = {qr.dataset: (qr.format, qr.payload) for qr in stored}
            versions = {qr.dataset: qr.dataset_version for qr in stored}
            out.append(RunInput(run.id, run.name, json.loads(run.config_json or "{}"), results, versions,
                                json.loads(run.env_json or "{}")))
        return out

    def find_runs(self, refs: list[str]) -> list[int]:
        """Run ids for ids or names (a name must be unambiguous)."""
        ids = []
        with session(self.engine) as s:
            for ref in refs:
                if ref.isdigit():
                    ids.append(_get_run(s, int(ref), self.display_url).id)
                    continue
                hits = list(s.exec(select(Run.id).where(Run.name == ref)))
                if len(hits) != 1:
                    raise StoreError(f"run name {ref!r} matches {len(hits)} runs; use an id")
                ids.append(hits[0])
        return ids

    def remove_model(self, model_id: int) -> None:
        """Forget a model; runs that used it keep their record (env) but lose the link."""
        from sqlalchemy import update

        with session(self.engine) as s:
            s.execute(update(Run).where(Run.model_id == model_id).values(model_id=None))
            model = s.get(Model, model_id)
            if model is None:
                raise StoreError(f"no model {model_id}")
            s.delete(model)
            s.commit()

    def remove_dataset(self, dataset_id: int) -> None:
        with session(self.engine) as s:
            ds = s.get(Dataset, dataset_id)
            if ds is None:
                raise StoreError(f"no dataset {dataset_id}")
            s.delete(ds)
            s.commit()
