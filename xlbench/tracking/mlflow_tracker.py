"""The ``mlflow`` reporter: a run becomes an MLflow run (a sweep a parent run with its runs as
children, a training run's "before" evaluation a child of the training run).

Options (``[report.mlflow]``): ``tracking_uri`` (default: ``$MLFLOW_TRACKING_URI``, else MLflow's
own default), ``experiment`` (default ``xlbench``). Credentials come from MLflow's environment
(``MLFLOW_TRACKING_USERNAME`` / ``_PASSWORD`` / ``_TOKEN``), never from the run's config. Requests
give up quickly (2 retries, 10 s timeout unless ``MLFLOW_HTTP_REQUEST_*`` say otherwise) so a
server that is down costs a warning, not minutes.
"""

from __future__ import annotations

import logging
import os
import time

from xlbench.tracking.base import RunInfo, Tracker

_PARAM_LIMIT = 6000  # MLflow's longest param value
_BATCH = 900
PARENT_WAIT_SECONDS = 20.0  # MLflow takes at most 1000 metrics (100 params) per log_batch


class MlflowTracker(Tracker):
    name = "mlflow"
    options = ("tracking_uri", "experiment")

    def start(self, run: RunInfo) -> None:
        for key, value in (("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2"), ("MLFLOW_HTTP_REQUEST_TIMEOUT", "10"),
                           ("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1"),
                           ("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")):  # the run's events say where it is
            os.environ.setdefault(key, value)
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        logging.getLogger("mlflow").setLevel(logging.WARNING)  # no "View run at …" lines in the run's log
        self.client = MlflowClient(tracking_uri=self.settings.get("tracking_uri"))
        self.experiment = self._experiment(self.settings.get("experiment", "xlbench"))
        tags = {**run.tags, "xlbench.key": run.key}
        parent = self._parent(run)
        if parent:
            tags["mlflow.parentRunId"] = parent
        found = self._find(f"tags.`xlbench.key` = '{run.key}'")
        if found:  # a resumed run continues its tracker run
            self.run_id = found[0].info.run_id
            self.client.update_run(self.run_id, status="RUNNING")
            for key, value in tags.items():
                self.client.set_tag(self.run_id, key, value)
        else:
            self.run_id = self.client.create_run(self.experiment, run_name=run.name, tags=tags).info.run_id
            params = [Param(k, v[:_PARAM_LIMIT]) for k, v in sorted(run.params.items())]
            for i in range(0, len(params), 100):
                self.client.log_batch(self.run_id, params=params[i:i + 100])
        from xlbench.store.secrets import redact_url

        base = redact_url(str(self.client.tracking_uri)).rstrip("/")
        self.where = (f"{base}/#/experiments/{self.experiment}/runs/{self.run_id}" if base.startswith("http")
                      else f"{base} (experiment {self.experiment}, run {self.run_id})")

    def _experiment(self, name: str) -> str:
        from mlflow.exceptions import MlflowException

        found = self.client.get_experiment_by_name(name)
        if found:
            return found.experiment_id
        try:
            return self.client.create_experiment(name)
        except MlflowException:  # another worker created it a moment ago
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id

    def _find(self, query: str) -> list:
        return self.client.search_runs([self.experiment], query, order_by=["attributes.start_time ASC"], max_results=50)

    def _parent(self, run: RunInfo) -> str | None:
        """The MLflow run to nest under: the training run of a "before" evaluation, or the sweep's
        parent run (created by the first of the sweep's runs to report; racing workers agree on the
        oldest and delete their own)."""
        if run.parent_key:  # the parent's own reporter opens its run at the same moment: give it a while
            deadline = time.monotonic() + PARENT_WAIT_SECONDS
            while True:
                found = self._find(f"tags.`xlbench.key` = '{run.parent_key}'")
                if found or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            if found:
                return found[0].info.run_id
        if not run.sweep_key:
            return None
        query = f"tags.`xlbench.key` = '{run.sweep_key}'"
        found = self._find(query)
        if found:
            return self._oldest(found)
        mine = self.client.create_run(self.experiment, run_name=run.sweep_name,
                                      tags={"xlbench.key": run.sweep_key, "xlbench.store": run.tags["xlbench.store"],
                                            "xlbench.sweep": run.tags["xlbench.sweep"]}).info.run_id
        oldest = self._oldest(self._find(query))
        if oldest != mine:
            self.client.delete_run(mine)
        return oldest

    @staticmethod
    def _oldest(runs: list) -> str:
        return min(runs, key=lambda r: (r.info.start_time, r.info.run_id)).info.run_id

    def _metrics(self, rows: list[tuple[str, float, int]]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(key, float(value), now, step) for key, value, step in rows]
        for i in range(0, len(metrics), _BATCH):
            self.client.log_batch(self.run_id, metrics=metrics[i:i + _BATCH])

    def log_points(self, points: list[dict]) -> None:
        rows = []
        for p in points:
            rows.append((f"{p['split']}/loss", p["loss"], p["step"]))
            rows += [(f"{p['split']}/{k}", p[k], p["step"]) for k in ("lr", "grad_norm", "samples_per_s") if p.get(k) is not None]
        self._metrics(rows)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self._metrics([(key, value, step) for key, value in metrics.items()])

    def log_files(self, paths) -> None:
        for path in paths:
            self.client.log_artifact(self.run_id, str(path))

    def finish(self, status: str) -> None:
        self.client.set_terminated(self.run_id, {"finished": "FINISHED", "failed": "FAILED"}.get(status, "KILLED"))
