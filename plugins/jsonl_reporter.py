"""Example reporter plugin: a run's copy as JSON lines in a file, one line per call.

Use it with ``xlbench run --report-to jsonl`` (or ``[report] to = ["jsonl"]``); the file is
``runs/run-N/report.jsonl`` unless ``[report.jsonl] path = "..."`` names another (``{run}`` in it
becomes the run id). It shows the reporter contract (:mod:`xlbench.tracking.base`):

* a subclass of ``Tracker`` with ``kind = "reporter"``, a ``name``, and the ``options`` its
  ``[report.NAME]`` table may hold (others are refused before a run row exists);
* ``start(run)`` receives names, params (the flattened config, the hardware stamp) and tags;
  ``log_points`` the training and validation points as they are stored; ``log_metrics`` every
  evaluation number (values exactly the database's); ``log_files`` the run's export and heatmaps;
  ``finish(status)`` the final status;
* every call comes from one background thread of the worker; an exception drops the reporter for
  that run with one warning, and the run goes on.
"""

import json
from pathlib import Path

from xlbench.tracking import Tracker


class JsonlReporter(Tracker):
    kind = "reporter"
    name = "jsonl"
    options = ("path",)

    def _write(self, **line) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(line, sort_keys=True) + "\n")

    def start(self, run):
        default = run.folder / "report.jsonl"
        self.path = Path(self.settings["path"].replace("{run}", str(run.run_id))).expanduser() if self.settings.get("path") else default
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.where = str(self.path)  # the run's events say where its copy went
        self._write(type="start", name=run.name, key=run.key, params=run.params, tags=run.tags)

    def log_points(self, points):
        self._write(type="points", points=points)

    def log_metrics(self, metrics, step):
        self._write(type="metrics", step=step, values=metrics)

    def log_files(self, paths):
        self._write(type="files", names=[Path(p).name for p in paths])

    def finish(self, status):
        self._write(type="finish", status=status)
