"""What a reporter plugin is: one experiment tracker (MLflow, TensorBoard, W&B, yours) that receives
a copy of a run while its worker executes it.

A reporter is a class with ``kind = "reporter"`` and a ``name``, registered in the entry-point
group ``xlbench.reporters`` or defined in ``plugins/`` (see ``plugins/jsonl_reporter.py``). The
worker creates it with the options of its ``[report.NAME]`` table and calls, from one background
thread, in this order:

- :meth:`Tracker.start` once, with :class:`RunInfo` (names, params, tags, a folder of the run's own);
- :meth:`Tracker.log_points` with training points as they are stored (``step``, ``split`` train or
  val, ``loss``, ``lr``, ``grad_norm``), and :meth:`Tracker.log_metrics` with evaluation numbers as
  they are stored (names from :func:`xlbench.tracking.metric_key`, values exactly the database's);
- :meth:`Tracker.log_files` once at the end with the run's export and heatmaps;
- :meth:`Tracker.finish` with the run's final status.

Any exception ends that reporter for the run (one warning event; the run goes on), so a method
need not guard against its tracker being away, but should not wait on it for long.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class RunInfo:
    run_id: int
    name: str  # "run 12: fine-tune"
    kind: str  # "train" | "eval"
    status: str
    params: dict[str, str]  # the flattened validated config, the hardware stamp, xlbench version and commit
    tags: dict[str, str]  # xlbench.run, xlbench.store, xlbench.kind, and sweep / seed / parent where they apply
    folder: Path  # the run's folder in this workspace (runs/run-N), for trackers that write files
    key: str  # unique across databases: identifies this run in a tracker (resume finds it again)
    parent_key: str | None = None  # a training run's key for its "before" evaluation
    sweep_key: str | None = None
    sweep_name: str | None = None
    config: dict = field(default_factory=dict)


class Tracker:
    """Base of reporter plugins: every method does nothing."""

    kind = "reporter"
    name = ""
    #: the keys of its ``[report.NAME]`` table it understands (others are refused up front)
    options: tuple[str, ...] = ()
    #: where the copy can be seen (a URL, a folder), set by ``start``; the run's events show it
    where: str | None = None

    def __init__(self, **options) -> None:
        self.settings = options

    def start(self, run: RunInfo) -> None:
        """Open (or, for a resumed run, find again) the tracker's run."""

    def log_points(self, points: list[dict]) -> None:
        """Training and validation points, in the order stored."""

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Evaluation numbers keyed by :func:`xlbench.tracking.metric_key`."""

    def log_files(self, paths: list[Path]) -> None:
        """Files worth keeping with the run (its export JSON, heatmap SVGs)."""

    def finish(self, status: str) -> None:
        """The run ended: ``finished``, ``failed`` or ``cancelled``."""
