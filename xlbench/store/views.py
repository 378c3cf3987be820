"""Read models for screens: plain dataclasses built with a few set-based queries.

The TUI polls these from worker threads; they return detached values (no ORM objects cross a
thread) and cost a handful of queries whatever the number of runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func
from sqlmodel import select

from xlbench.store.database import session
from xlbench.store.models import Metric, Model, Run, TrainPoint, utcnow


@dataclass
class RunSummary:
    id: int
    name: str
    kind: str
    status: str
    model: str
    sampler: str
    alpha: float | None
    phase: str
    done: int | None
    total: int | None
    loss: float | None
    samples_per_s: float | None
    started_at: datetime | None
    finished_at: datetime | None
    headline: dict = field(default_factory=dict)  # {"dataset": ..., "mono": .., "cross": .., "multi": ..}
    error: str | None = None
    sweep_id: int | None = None
    parent_id: int | None = None

    def progress(self) -> float | None:
        return progress_fraction(self.status, self.done, self.total)

    def eta_seconds(self, now: datetime) -> float | None:
        return eta_seconds(self.status, self.done, self.total, self.started_at, now)


def progress_fraction(status: str, done: int | None, total: int | None) -> float | None:
    """How far a run's current phase is (1 once it finished; None when its size is unknown)."""
    if status == "finished":
        return 1.0
    if total:
        return min(1.0, (done or 0) / total)
    return None


def eta_seconds(status: str, done: int | None, total: int | None, started_at: datetime | None,
                now: datetime) -> float | None:
    """Remaining time of the current phase at the pace so far (running runs only)."""
    if status != "running" or not total or not done or not started_at:
        return None
    elapsed = (now - started_at).total_seconds()
    return max(0.0, elapsed / done * (total - done)) if elapsed > 0 else None


def runs_overview(store, *, limit: int = 5000) -> list[RunSummary]:
    with session(store.engine) as s:
        runs = list(s.exec(select(Run).order_by(Run.id.desc()).limit(limit)))
        ids = [r.id for r in runs]
        if not ids:
            return []
        models = {m.id: m.label or m.name for m in s.exec(select(Model))}
        last_point = dict(s.exec(select(TrainPoint.run_id, func.max(TrainPoint.id)).where(
            TrainPoint.run_id.in_(ids), TrainPoint.split == "train").group_by(TrainPoint.run_id)).all())
        points = {p.run_id: p for p in s.exec(select(TrainPoint).where(TrainPoint.id.in_(list(last_point.values()))))}
        headline: dict[int, dict] = {}
        for m in s.exec(select(Metric).where(Metric.run_id.in_(ids), Metric.query_lang == "macro", Metric.metric == "map")
                        .order_by(Metric.id)):
            h = headline.setdefault(m.run_id, {"dataset": m.dataset})
            if m.dataset == h["dataset"] and m.setting in ("mono", "cross", "multi"):
                h[m.setting] = m.value
    out = []
    for r in runs:
        config = json.loads(r.config_json or "{}")
        sampler = config.get("sampler", {}) if r.kind == "train" else {}
        p = points.get(r.id)
        out.append(RunSummary(
            r.id, r.name, r.kind, r.status, models.get(r.model_id) or configured_model(config), sampler.get("name", "–") if r.kind == "train" else "–",
            sampler.get("alpha"), r.phase, r.progress_done, r.progress_total, p.loss if p else None,
            p.samples_per_s if p else None, r.started_at, r.finished_at, headline.get(r.id, {}), r.error, r.sweep_id, r.parent_id,
        ))
    return out


def configured_model(config: dict) -> str:
    """The model a run's config names (eval or training config), or the offline default."""
    model = config.get("model")
    if isinstance(model, dict):  # a training config
        model = model.get("model") or model.get("encoder")
    from xlbench.core.encoders import OFFLINE_MODEL

    return str(model or config.get("encoder") or OFFLINE_MODEL)


@dataclass
class RunDetail:
    run: Run
    config: dict
    env: dict
    reports: list[dict]
    children: list[Run]


def run_detail(store, run_id: int) -> RunDetail:
    from xlbench.store.results import report_from_rows

    run = store.get_run(run_id)
    return RunDetail(run, json.loads(run.config_json or "{}"), json.loads(run.env_json or "{}"),
                     report_from_rows(store.metrics(run_id)), store.children(run_id))


def now() -> datetime:
    return utcnow()


QUEUE_NOTES = ("placed by the ", "queued again")  # events written while a run waits, by the queue


def phase_seconds(store, run) -> dict[str, float] | None:
    """Wall time of a finished training run by phase: ``train`` (start to its last logged step,
    validation and checkpoints included), ``evaluate`` (from there to the end) and ``total``.

    The start is the first attempt's (its first event): a resumed run's ``started_at`` is its last
    claim, which can come after its training ended (resumed during evaluation). A resumed run's
    phases count the pauses between its attempts."""
    if run.started_at is None or run.finished_at is None:
        return None
    # the first event a worker wrote (not the queue's own notes: placed on a scheduler, requeued)
    worked = [e.ts for e in store.events(run.id) if not e.message.startswith(QUEUE_NOTES)]
    start = min([run.started_at] + worked[:1])
    points = store.train_points(run.id, split="train")
    total = (run.finished_at - start).total_seconds()
    if not points:
        return {"total": total}
    trained = (points[-1].ts - start).total_seconds()
    return {"train": trained, "evaluate": total - trained, "total": total}


def duration(seconds: float | None) -> str:
    """``m:ss`` below an hour, ``XhMM`` above; empty for unknown."""
    if seconds is None:
        return ""
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"
