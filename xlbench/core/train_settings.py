"""The one training settings type: validated where a config is read, read by the Trainer.

Pure (pydantic only): the app and the config parser import it without loading torch.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class TrainSettings(BaseModel):
    """How a run trains: the ``[train]`` section of a run config, and what the Trainer reads."""

    # Bounds stop a run that could only waste time or lie: lr ≤ 0 or NaN never learns, max_steps ≤ 0
    # would register an untrained model as fine-tuned, checkpoint_every < 0 would checkpoint every step.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    lr: float = Field(3e-5, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_steps: int = Field(0, ge=0)
    max_steps: int = Field(100, ge=1)
    batch_size: int = Field(16, ge=1)
    mini_batch: int | None = Field(None, ge=1)  # cached InfoNCE: forward/backward in chunks of this size
    scale: float = Field(20.0, gt=0)
    hard_negatives: bool = True
    freeze_embeddings: bool = False
    precision: str = "fp32"  # fp32 | bf16 | fp16 (the latter two on CUDA)
    grad_clip: float = Field(1.0, ge=0)  # 0: no clipping
    seed: int = Field(0, ge=0, le=2**32 - 1)  # what numpy's legacy and torch's RNGs both accept
    val_share: float = Field(0.05, ge=0, lt=1)  # share of item groups held out for validation loss (spent by the job's split)
    val_every: int = Field(50, ge=0)  # 0: never validate
    val_batches: int = Field(4, ge=1)
    patience: int = Field(0, ge=0)  # validations without improvement before stopping; 0: never stop early
    checkpoint_every: int = Field(50, ge=0)  # 0: only the final model
    keep_checkpoints: int = Field(2, ge=1)
    # How a step uses an accelerator; neither changes the loss in exact arithmetic. None: by device —
    # 1 and 1 on CPU (the numbers earlier runs got), 4 and 10 on CUDA.
    length_buckets: int | None = Field(None, ge=1, le=64)  # forward passes per role, texts grouped by token length
    read_every: int | None = Field(None, ge=1, le=1000)  # steps between reads of loss and gradient norm by the host
    compile: bool = False  # torch.compile the encoder's transformer (dynamic shapes; minutes of start-up, on any device)

    @field_validator("precision")
    @classmethod
    def _precision(cls, v: str) -> str:
        if v not in ("fp32", "bf16", "fp16"):
            raise ValueError("must be fp32, bf16 or fp16")
        return v
