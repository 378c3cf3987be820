"""Mirroring a run to the experiment trackers a lab already uses (``--report-to``, ``[report]``).

The store stays the one record; a :class:`Mirror` copies it out. The worker that executes a run
starts one (rank 0 only) when the run's config names reporters: a background thread that opens each
reporter's run, then every ``report.every`` seconds sends the training points and metric rows
stored since its last look, and at the end the remaining ones, the run's export and heatmaps and
its final status. It reads the database, never the training loop, so it cannot slow a step; a
reporter that fails (package missing, server down) is dropped with one warning event on the run and
the run goes on; the worker waits for the final copy at most ``CLOSE_SECONDS``.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from pathlib import Path

from xlbench.errors import ConfigError, one_line
from xlbench.tracking.base import RunInfo, Tracker

__all__ = ["Mirror", "RunInfo", "Tracker", "check_reporters", "metric_key", "start_mirror"]

CLOSE_SECONDS = 60.0
_UNSAFE = re.compile(r"[^A-Za-z0-9_\-. /:]")


def metric_key(dataset: str, setting: str, query_lang: str, corpus_lang: str, metric: str) -> str:
    """A stored metric row's name in a tracker: ``xquad-r/cross/de-en/map``, ``xquad-r/mono/macro/map``,
    ``xquad-r/bias/de-all/rank_distance``, ``miracl/mono/sw/ndcg_at_10`` (``@`` is not allowed in
    MLflow names). One name per row: the store's unique key maps to it one to one."""
    where = query_lang if query_lang == corpus_lang else f"{query_lang}-{corpus_lang}"
    parts = [dataset, setting, where, metric.replace("@", "_at_")]
    return "/".join(_UNSAFE.sub("_", p) for p in parts)


def store_key(url: str) -> str:
    """Which database a run lives in, without saying where it is (a hash of its redacted URL)."""
    from xlbench.store.secrets import redact_url

    return hashlib.sha256(redact_url(url).encode()).hexdigest()[:12]


def check_reporters(section, registry) -> None:
    """Refuse unknown reporter names and option keys before a run row exists. The tracker's package
    itself is not imported here: one that is missing is a warning when the run executes."""
    extra = set((section.model_extra or {}))
    for name in section.to:
        spec = registry.find("reporter", name)  # raises with the names that exist
        known = _declared_options(registry, spec)
        if known is not None:
            unknown = sorted(set(section.options(name)) - set(known))
            if unknown:
                raise ConfigError(f"report.{name}: unknown option {unknown[0]} (valid: {', '.join(known) or 'none'})")
    stray = sorted(extra - set(section.to))
    if stray:
        raise ConfigError(f"report.{stray[0]} has options but {stray[0]!r} is not in report.to "
                          f"({', '.join(section.to) or 'empty'}): add --report-to {stray[0]}")


def _declared_options(registry, spec) -> tuple[str, ...] | None:
    """The option keys a reporter declares, read without importing its tracker package (built-ins
    import it lazily); None when the plugin itself cannot be imported (then it warns at run time)."""
    from xlbench.errors import PluginError

    try:
        return tuple(registry.load("reporter", spec.name).options)
    except PluginError:
        return None


def start_mirror(store, run_id: int, say) -> Mirror | None:
    """A started mirror of run ``run_id`` if its config names reporters, else None.
    ``say(message, level="warning")`` records an event on the run."""
    from xlbench.config import ReportSection

    run = store.get_run(run_id)
    section = ReportSection.model_validate(json.loads(run.config_json or "{}").get("report") or {})
    if not section.to:
        return None
    mirror = Mirror(store, run_id, section, say)
    mirror.start()
    return mirror


class Mirror(threading.Thread):
    """Copies one run from the store to its reporters (see the module docstring)."""

    def __init__(self, store, run_id: int, section, say, registry=None) -> None:
        super().__init__(name=f"report-{run_id}", daemon=True)
        self.store, self.run_id, self.section, self.say = store, run_id, section, say
        self.registry = registry  # None: the plugins folder the run's own config names (as its job loads)
        self.trackers: list[Tracker] = []
        self._halt = threading.Event()
        self._point_cursor = 0
        self._sent: dict[str, float] = {}
        self._step = 0

    # -- the thread ---------------------------------------------------------------------------

    def run(self) -> None:
        try:
            self._open()
            while self.trackers and not self._halt.wait(self.section.every):
                self._sync()
            self._final()
        except Exception as exc:  # noqa: BLE001  the store itself failed: reporting stops, the run does not
            self.say(f"reporting stopped: {one_line(exc)}")

    def send_once(self) -> None:
        """Everything at once, in this thread: a stored run sent after the fact (``xlbench report``)."""
        self._open()
        self._final()

    def close(self, timeout: float = CLOSE_SECONDS) -> None:
        """Send what remains and the final status; wait at most ``timeout`` seconds for it."""
        self._halt.set()
        self.join(timeout)
        if self.is_alive():
            names = ", ".join(t.name for t in self.trackers)
            self.say(f"reporting to {names} did not finish within {timeout:.0f} s; the run's record is complete "
                      "in the database (`xlbench report RUN` sends it again)")

    # -- steps --------------------------------------------------------------------------------

    def _each(self, what: str, call) -> None:
        for tracker in list(self.trackers):
            try:
                call(tracker)
            except Exception as exc:  # noqa: BLE001  a tracker's failure is a warning, never the run's
                self.trackers.remove(tracker)
                self.say(f"reporter {tracker.name} stopped ({what}): {one_line(exc)}; the run goes on without it")

    def _open(self) -> None:
        from xlbench.paths import plugins_dir
        from xlbench.plugins import Registry

        info = run_info(self.store, self.run_id)
        registry = self.registry or Registry(plugins_dir(info.config.get("plugins_dir")))
        for name in self.section.to:
            try:
                cls = registry.load("reporter", name)
                tracker = cls(**self.section.options(name))
            except Exception as exc:  # noqa: BLE001  a missing package or plugin: a warning
                self.say(f"reporter {name} not started: {one_line(exc)}; the run goes on without it")
                continue
            self.trackers.append(tracker)
        self._each("start", lambda t: t.start(info))
        for tracker in self.trackers:
            self.say(f"reporting to {tracker.name}: {tracker.where or 'started'}", "info")

    def _sync(self) -> None:
        points = self.store.train_points(self.run_id, after_id=self._point_cursor)
        if points:
            self._point_cursor = points[-1].id
            rows = [{"step": p.step, "split": p.split, "loss": p.loss, "lr": p.lr, "grad_norm": p.grad_norm,
                     "samples_per_s": p.samples_per_s} for p in points]
            self._step = max(self._step, max(p.step for p in points))
            self._each("training points", lambda t: t.log_points(rows))
        fresh = {}
        for m in self.store.metrics(self.run_id):
            key = metric_key(m.dataset, m.setting, m.query_lang, m.corpus_lang, m.metric)
            if self._sent.get(key) != m.value:
                fresh[key] = m.value
        if fresh:
            self._sent.update(fresh)
            self._each("metrics", lambda t: t.log_metrics(fresh, self._step))

    def _final(self) -> None:
        """What remains, the run's files and its final status."""
        import tempfile

        if not self.trackers:
            return
        self._sync()
        status = self.store.get_run(self.run_id).status
        with tempfile.TemporaryDirectory(prefix=f"xlbench-report-{self.run_id}-") as tmp:
            files = run_files(self.store, self.run_id, Path(tmp))
            self._each("files", lambda t: t.log_files(files))
            self._each("finish", lambda t: t.finish(status))


def run_info(store, run_id: int) -> RunInfo:
    """Names, params and tags of a run for the trackers, from its row alone."""
    from xlbench import __version__
    from xlbench.core.compare import NOT_EXPERIMENT, flatten
    from xlbench.paths import run_dir
    from xlbench.store.secrets import redact_url

    run = store.get_run(run_id)
    config = json.loads(run.config_json or "{}")
    env = json.loads(run.env_json or "{}")
    here = store_key(store.url)
    params = {f"config.{k}": v for k, v in flatten({k: v for k, v in config.items() if k not in NOT_EXPERIMENT}).items()}
    hardware = env.get("hardware") or {}
    params.update({f"env.{k}": v for k, v in {
        "device": env.get("device"), "torch": env.get("torch"), "python": env.get("python"), "threads": env.get("threads"),
        "cpu": hardware.get("cpu"), "cpus": hardware.get("cpus"), "gpu": hardware.get("gpu"), "cuda": hardware.get("cuda"),
    }.items()})
    params["xlbench.version"] = run.xlbench_version or __version__
    params["xlbench.commit"] = run.git_commit
    params = {k: redact_url(v if isinstance(v, str) else json.dumps(v)) for k, v in params.items() if v is not None}
    tags = {"xlbench.run": str(run.id), "xlbench.store": here, "xlbench.kind": run.kind, "xlbench.name": run.name}
    seed = config.get("train", {}).get("seed") if run.kind == "train" else None
    if seed is not None:
        tags["xlbench.seed"] = str(seed)
    sweep = store.sweep(run.sweep_id) if run.sweep_id else None
    if sweep is not None:
        tags["xlbench.sweep"] = str(sweep.id)
    if run.parent_id:
        tags["xlbench.parent"] = str(run.parent_id)
    return RunInfo(
        run_id=run.id, name=f"run {run.id}: {run.name}", kind=run.kind, status=run.status, params=params, tags=tags,
        folder=run_dir(run.id), key=f"{here}:{run.id}", parent_key=f"{here}:{run.parent_id}" if run.parent_id else None,
        sweep_key=f"{here}:sweep:{sweep.id}" if sweep is not None else None,
        sweep_name=f"sweep {sweep.id}: {sweep.name}" if sweep is not None else None, config=config,
    )


def run_files(store, run_id: int, folder: Path) -> list[Path]:
    """The run's export (every row, rank payloads included) and one heatmap per LAReQA-style dataset."""
    from xlbench.store.results import report_from_rows
    from xlbench.store.transfer import write_export
    from xlbench.heatmap import heatmap_svg

    export = folder / f"xlbench-run-{run_id}.json"
    write_export(store, [run_id], export)
    files = [export]
    for report in report_from_rows(store.metrics(run_id)):
        svg = heatmap_svg(report)
        if svg:
            path = folder / f"heatmap-{_UNSAFE.sub('_', report['dataset'])}.svg"
            path.write_text(svg, encoding="utf-8")
            files.append(path)
    return files


def mirror_now(store, run_id: int, section, say, registry) -> None:
    """Send a stored run to its reporters in one go (``xlbench report RUN``), e.g. after a tracker
    was away while it executed, or a run imported from elsewhere. ``registry``: this workspace's
    plugins (never a folder named by the stored run, which may come from another machine)."""
    Mirror(store, run_id, section, say, registry).send_once()
