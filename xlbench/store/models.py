"""The database schema (SQLModel). Changes go through an Alembic revision in ``db/migrations``.

JSON-valued columns are stored as text so the same schema works on SQLite and PostgreSQL.
Timestamps are timezone-aware UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Column, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

RUN_STATUSES = ("queued", "running", "finished", "failed", "cancelled", "lost")
ACTIVE_STATUSES = ("queued", "running")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Model(SQLModel, table=True):
    __tablename__ = "models"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True)
    encoder: str = "sentence-transformers"
    source: str = ""
    label: str = ""
    info_json: str = "{}"
    created_at: datetime = Field(default_factory=utcnow)


class Dataset(SQLModel, table=True):
    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True)
    version: str
    kind: str  # "lareqa" | "miracl" | "parallel"
    source: str = ""
    languages: str = ""  # comma-separated
    stats_json: str = "{}"
    created_at: datetime = Field(default_factory=utcnow)


class Run(SQLModel, table=True):
    __tablename__ = "runs"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(default="", index=True)
    kind: str = "eval"  # "eval" | "train"
    status: str = Field(default="queued", index=True)
    config_json: str = "{}"
    model_id: int | None = Field(default=None, foreign_key="models.id")
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    heartbeat_at: datetime | None = None
    pid: int | None = None
    host: str | None = None
    phase: str = ""
    progress_done: int | None = None
    progress_total: int | None = None
    cancel_requested: bool = False
    error: str | None = None
    xlbench_version: str = ""
    git_commit: str | None = None
    env_json: str = "{}"  # python, torch, device, threads, model description
    parent_id: int | None = Field(default=None, foreign_key="runs.id", index=True)  # e.g. a train run's "before" eval
    sweep_id: int | None = Field(default=None, foreign_key="sweeps.id", index=True)
    executor: str | None = None  # the executor plugin that placed the run ("local", "slurm"); None: run in the foreground
    job_id: str | None = None  # the scheduler's job id ("1234", "1234_0" for an array task); None for local workers


class Sweep(SQLModel, table=True):
    """A grid of runs queued together (e.g. sampler.alpha × seeds) from one base config."""

    __tablename__ = "sweeps"

    id: int | None = Field(default=None, primary_key=True)
    name: str = ""
    base_config_json: str = "{}"
    grid_json: str = "{}"  # {"sampler.alpha": [0, 0.5, 1], "train.seed": [1, 2]}
    created_at: datetime = Field(default_factory=utcnow)


class RunEvent(SQLModel, table=True):
    __tablename__ = "run_events"

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="runs.id", index=True)
    ts: datetime = Field(default_factory=utcnow)
    level: str = "info"  # "info" | "warning" | "error"
    message: str = ""
    data_json: str = "{}"


class Metric(SQLModel, table=True):
    """One number: ``metric`` of ``dataset`` in one setting cell (or a family mean / bias row).

    Cells: ``setting`` mono|cross|multi with the two languages (``corpus_lang`` "all" for multi).
    Family means: ``query_lang = corpus_lang = "macro"`` (multi micro: ``query_lang = "micro"``).
    Bias: ``setting = "bias"`` per query language, or ``query_lang = "others"`` for visibility.
    """

    __tablename__ = "metrics"
    __table_args__ = (UniqueConstraint("run_id", "dataset", "setting", "query_lang", "corpus_lang", "metric"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="runs.id", index=True)
    dataset: str
    dataset_version: str = ""
    setting: str
    query_lang: str
    corpus_lang: str
    metric: str
    value: float
    n_queries: int | None = None


class QueryResult(SQLModel, table=True):
    """Per-query ranks of one run on one dataset (compressed), enough to recompute every metric."""

    __tablename__ = "query_results"
    __table_args__ = (UniqueConstraint("run_id", "dataset"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="runs.id", index=True)
    dataset: str
    dataset_version: str = ""
    format: str
    payload: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    info_json: str = "{}"
    created_at: datetime = Field(default_factory=utcnow)


class TrainPoint(SQLModel, table=True):
    """One logged training step (``split = "train"``) or validation (``split = "val"``)."""

    __tablename__ = "train_points"

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="runs.id", index=True)
    step: int
    split: str = "train"
    loss: float
    lr: float | None = None
    grad_norm: float | None = None
    samples_per_s: float | None = None
    info: str = ""
    ts: datetime = Field(default_factory=utcnow)


class Checkpoint(SQLModel, table=True):
    __tablename__ = "checkpoints"

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="runs.id", index=True)
    step: int
    path: str
    info_json: str = "{}"
    created_at: datetime = Field(default_factory=utcnow)
