"""Run configurations as data: validated up front, stored whole (as JSON) in the run row."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from xlbench.core.data.lareqa import CANDIDATE_TEXT_MODES
from xlbench.errors import ConfigError


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


class EvalConfig(BaseModel):
    """Zero-shot evaluation of one encoder on one or more datasets."""

    model_config = ConfigDict(extra="forbid")
    datasets: list[DatasetRef] = Field(default_factory=lambda: [DatasetRef(name="xquad-r")])
    data_dir: str | None = None
    languages: list[str] | None = None
    candidate_text: str = "sentence+context"
    model: str | None = None  # the built-in sentence-transformers encoder
    encoder: str | None = None  # any encoder plugin by name
    encoder_options: dict = Field(default_factory=dict)
    max_seq_length: int | None = None
    model_batch_size: int = 16
    encode_chunk: int = 256
    threads: int = 1
    cache: bool = True
    plugins_dir: str | None = None

    @field_validator("candidate_text")
    @classmethod
    def _mode(cls, v: str) -> str:
        if v not in CANDIDATE_TEXT_MODES:
            raise ValueError(f"must be one of {', '.join(CANDIDATE_TEXT_MODES)}")
        return v

    @field_validator("threads", "model_batch_size", "encode_chunk")
    @classmethod
    def _positive(cls, v: int) -> int:
        if v < 1:
            raise ValueError("must be at least 1")
        return v


def parse_config(cls: type[BaseModel], data: dict, *, where: str = "config") -> BaseModel:
    """Validate ``data`` as ``cls``; the first problem becomes one ``ConfigError`` line."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise ConfigError(f"{where}: {loc}: {err['msg']}") from None
