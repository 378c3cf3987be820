"""Training checkpoints on disk: written whole or not at all, checked before they are read.

A checkpoint is a folder ``step-NNNNNNNN`` holding the model's weights (safetensors), the
optimizer, schedule, loss scaler and RNG states (``optimizer.pt``, tensors and plain containers
only, read with torch's weights-only unpickler), the sampler's position and the trainer's counters
(JSON), and a manifest of every file's sha256. It is written to a temporary folder and renamed, so
a crash never leaves half of one; :func:`verify_checkpoint` checks the manifest before anything in
it is read. Nothing in a checkpoint is executable.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from xlbench.core.integrity import atomic_dir, manifest_for, read_manifest, verify, write_json_atomic

CHECKPOINT_FORMAT = "xlbench-checkpoint-v1"
CHECKPOINT_MANIFEST = "manifest.json"


def verify_checkpoint(path: Path) -> int:
    """Raise :class:`~xlbench.core.integrity.Damaged` unless the checkpoint is whole; returns its step."""
    manifest = read_manifest(Path(path) / CHECKPOINT_MANIFEST, CHECKPOINT_FORMAT)
    verify(Path(path), manifest)
    return int(manifest.get("step", -1))


@dataclass
class Checkpoint:
    """What a checkpoint holds, as the trainer hands it over and gets it back.

    ``weights``: the module's state dict; ``training``: optimizer, scheduler, scaler and RNG states
    (tensors and plain containers); ``sampler``: the sampler's state after the last batch trained
    on; ``trainer``: the trainer's counters and settings (JSON-ready)."""

    step: int
    weights: dict
    training: dict
    sampler: dict
    trainer: dict


def write_checkpoint(folder: Path, checkpoint: Checkpoint, *, keep: int) -> Path:
    """Write ``checkpoint`` as ``folder/step-NNNNNNNN`` (atomically, with its manifest) and remove
    all but the newest ``keep`` (at least 1) checkpoints in ``folder``; returns the new one's path."""
    import torch
    from safetensors.torch import save_file

    def write(d: Path) -> None:
        save_file({k: v.detach().contiguous().cpu() for k, v in checkpoint.weights.items()}, str(d / "model.safetensors"))
        torch.save(checkpoint.training, d / "optimizer.pt")
        (d / "sampler.json").write_text(json.dumps(checkpoint.sampler))
        (d / "trainer.json").write_text(json.dumps(checkpoint.trainer))
        write_json_atomic(d / CHECKPOINT_MANIFEST, manifest_for(sorted(d.iterdir()), CHECKPOINT_FORMAT, step=checkpoint.step))

    path = atomic_dir(folder / f"step-{checkpoint.step:08d}", write)
    for old in sorted(folder.glob("step-*"))[: -max(1, keep)]:
        if "." not in old.name:  # a temporary folder being written is not an old checkpoint
            shutil.rmtree(old, ignore_errors=True)
    return path


def read_checkpoint(path: Path, *, device, verified: bool = False) -> Checkpoint:
    """Read a checkpoint folder onto ``device``, verified first (:func:`verify_checkpoint`) unless
    the caller just did."""
    import torch
    from safetensors.torch import load_file

    if not verified:
        verify_checkpoint(path)
    trainer = json.loads((path / "trainer.json").read_text())
    return Checkpoint(step=int(trainer.get("step", -1)),
                      weights=load_file(str(path / "model.safetensors"), device=str(device)),
                      training=torch.load(path / "optimizer.pt", map_location=device, weights_only=True),
                      sampler=json.loads((path / "sampler.json").read_text()), trainer=trainer)


def rng_state(torch, device) -> dict:
    """The CPU's (and ``device``'s, on CUDA) random generator states."""
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(torch, device, state: dict) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
