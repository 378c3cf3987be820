"""The ``tensorboard`` reporter: event files in the run's folder (``runs/run-N/tensorboard``, or
``[report.tensorboard] dir``): scalars for the losses and every evaluation number, the config and
the hardware stamp as text. ``tensorboard --logdir ~/.xlbench/runs`` shows every run side by side."""

from __future__ import annotations

import json
from pathlib import Path

from xlbench.tracking.base import RunInfo, Tracker


class TensorboardTracker(Tracker):
    name = "tensorboard"
    options = ("dir",)

    def start(self, run: RunInfo) -> None:
        from torch.utils.tensorboard import SummaryWriter

        root = Path(self.settings["dir"]).expanduser() / f"run-{run.run_id}" if self.settings.get("dir") else run.folder / "tensorboard"
        self.folder = root
        self.writer = SummaryWriter(log_dir=str(root))
        self.where = f"{root} (tensorboard --logdir {root.parent})"
        self.writer.add_text("config", "```json\n" + json.dumps(run.config, indent=2, sort_keys=True) + "\n```")
        self.writer.add_text("params", "\n".join(f"    {k} = {v}" for k, v in sorted(run.params.items())))
        self.writer.flush()

    def log_points(self, points: list[dict]) -> None:
        for p in points:
            self.writer.add_scalar(f"{p['split']}/loss", p["loss"], p["step"])
            for key in ("lr", "grad_norm", "samples_per_s"):
                if p.get(key) is not None:
                    self.writer.add_scalar(f"{p['split']}/{key}", p[key], p["step"])
        self.writer.flush()

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def finish(self, status: str) -> None:
        self.writer.add_text("status", status)
        self.writer.close()
