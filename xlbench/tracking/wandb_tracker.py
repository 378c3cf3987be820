"""The ``wandb`` reporter: a Weights & Biases run, **offline by default** (a folder under the run's
own, ``runs/run-N/wandb/offline-run-…``, that ``wandb sync`` uploads later). Online only when the
user asked for it: ``[report.wandb] mode = "online"`` or ``WANDB_MODE=online`` (the API key comes from
wandb's own login or ``WANDB_API_KEY``, never from the run's config). Options: ``project`` (default
``xlbench``), ``entity``, ``mode``, ``dir``. A sweep's runs share a wandb group."""

from __future__ import annotations

import os
from pathlib import Path

from xlbench.tracking.base import RunInfo, Tracker


class WandbTracker(Tracker):
    name = "wandb"
    options = ("project", "entity", "mode", "dir")

    def start(self, run: RunInfo) -> None:
        import wandb

        mode = self.settings.get("mode") or ("online" if os.environ.get("WANDB_MODE") == "online" else "offline")
        folder = Path(self.settings["dir"]).expanduser() if self.settings.get("dir") else run.folder
        folder.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            mode=mode, dir=str(folder), project=self.settings.get("project", "xlbench"), entity=self.settings.get("entity"),
            id=run.key.replace(":", "-"), resume="allow", name=run.name, group=run.sweep_name,
            config={**run.config, "_xlbench": run.params}, tags=[f"{k}={v}" for k, v in sorted(run.tags.items())][:64],
            settings=wandb.Settings(silent=True, console="off", save_code=False, x_disable_stats=True),
            reinit="create_new",
        )
        self.last_step = -1
        self.where = self.run.url if mode == "online" and self.run.url else f"{self.run.dir} (offline: wandb sync {Path(self.run.dir).parent})"

    def _log(self, values: dict, step: int) -> None:
        # wandb's steps only go forward: a resumed run's repeated steps (after its checkpoint) and the
        # evaluation at the last step are logged at the next free step
        step = max(step, self.last_step + 1)
        self.run.log(values, step=step)
        self.last_step = step

    def log_points(self, points: list[dict]) -> None:
        for p in points:
            values = {f"{p['split']}/loss": p["loss"]}
            values.update({f"{p['split']}/{k}": p[k] for k in ("lr", "grad_norm", "samples_per_s") if p.get(k) is not None})
            self._log(values, p["step"])

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        for key, value in metrics.items():
            self.run.summary[key] = value
        self._log(dict(metrics), step)

    def log_files(self, paths) -> None:
        import shutil

        for path in paths:  # copied into the run's files folder, which `wandb sync` uploads
            shutil.copy(path, Path(self.run.dir) / Path(path).name)

    def finish(self, status: str) -> None:
        self.run.finish(exit_code=0 if status == "finished" else 1)
