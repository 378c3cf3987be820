"""Runs mirrored to experiment trackers (xlbench/tracking): a real MLflow server (started by .ci/run,
or here when it did not), TensorBoard event files read back with TensorBoard's own reader, a wandb
offline folder read from disk; a server that dies mid-run costs one warning, never the run."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import tiny_run_toml, wait_for, write_plugin, xlbench

mlflow = pytest.importorskip("mlflow")


def _note(line: str) -> None:
    """Seen with -s, and in CI's log (.ci/run prints $XLBENCH_CI_REPORT)."""
    print(line)
    if os.environ.get("XLBENCH_CI_REPORT"):
        with open(os.environ["XLBENCH_CI_REPORT"], "a") as fh:
            fh.write(line + "\n")


def _healthy(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as res:
            return res.status == 200
    except OSError:
        return False


def start_server(folder: Path) -> tuple[subprocess.Popen, str]:
    """A throwaway `mlflow server` (SQLite backend) on a free port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{folder}/mlflow.db", "--default-artifact-root", str(folder / "artifacts")],
        stdout=open(folder / "server.log", "ab"), stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: _healthy(url) or proc.poll() is not None, timeout=120, interval=0.5)
    assert proc.poll() is None, (folder / "server.log").read_text()[-2000:]
    return proc, url


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)


@pytest.fixture(scope="module")
def mlflow_url(tmp_path_factory):
    """CI's server ($XLBENCH_TEST_MLFLOW_URL, started by .ci/run once the packages are in), else our own."""
    url = os.environ.get("XLBENCH_TEST_MLFLOW_URL")
    if url:
        wait_for(lambda: _healthy(url), timeout=300, interval=1)
        _note(f"MLflow server of .ci/run answering at {url}")
        yield url
        return
    proc, url = start_server(tmp_path_factory.mktemp("mlflow"))
    yield url
    stop_server(proc)


def _store(ws: Path):
    from xlbench.store.store import Store

    return Store(f"sqlite:///{ws}/db/xlbench.sqlite")


def _mlflow_runs(url: str, experiment: str) -> dict[str, object]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(url)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return {}
    return {r.data.tags.get("xlbench.run"): r for r in client.search_runs([exp.experiment_id])}


def stored_metrics(store, run_id: int) -> dict[str, float]:
    from xlbench.tracking import metric_key

    return {metric_key(m.dataset, m.setting, m.query_lang, m.corpus_lang, m.metric): m.value for m in store.metrics(run_id)}


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory, tiny_model, mlflow_url):
    """One tiny training run (with its "before" evaluation) reported to all three trackers."""
    ws = tmp_path_factory.mktemp("report-ws")
    toml = tiny_run_toml(ws / "run.toml", tiny_model, steps=6, eval_langs=("de", "en"), val_every=3, val_share=0.1)
    env = {"XLBENCH_HOME": str(ws), "XLBENCH_DB": "", "MLFLOW_TRACKING_URI": mlflow_url}
    started = time.monotonic()
    res = xlbench("run", "--headless", "--config", str(toml), "--report-to", "mlflow,tensorboard", "--report-to", "wandb",
                  "--set", "eval.before=true", "--set", "report.every=0.5", "--set", "report.mlflow.experiment=mirrored",
                  env=env)
    assert res.returncode == 0, res.stderr
    _note(f"a training run mirrored to MLflow ({mlflow_url}), TensorBoard and wandb (offline) in "
          f"{time.monotonic() - started:.1f} s")
    os.environ.pop("XLBENCH_DB", None)
    store = _store(ws)
    run = next(r for r in store.list_runs() if r.kind == "train")
    return ws, store, run, mlflow_url


@pytest.mark.slow
def test_mlflow_holds_the_run_as_the_database_does(mirrored):
    from mlflow.tracking import MlflowClient

    ws, store, run, url = mirrored
    client = MlflowClient(url)
    runs = _mlflow_runs(url, "mirrored")
    mine = runs[str(run.id)]
    assert mine.info.status == "FINISHED"
    params = mine.data.params
    assert params["config.train.max_steps"] == "6" and params["config.sampler.name"] == "hybrid"
    assert params["xlbench.version"] and params["env.device"] == "cpu" and params["env.threads"] == "1"
    assert not any(k.startswith("config.report") for k in params)  # where it reports is not the experiment
    assert mine.data.tags["xlbench.kind"] == "train" and mine.data.tags["xlbench.seed"] == str(json.loads(run.config_json)["train"]["seed"])
    # the loss per step: as many points as the database holds, the same values
    points = store.train_points(run.id, split="train")
    history = sorted(client.get_metric_history(mine.info.run_id, "train/loss"), key=lambda m: m.step)
    assert [(m.step, m.value) for m in history] == [(p.step, p.loss) for p in points]
    val = store.train_points(run.id, split="val")
    assert val and len(client.get_metric_history(mine.info.run_id, "val/loss")) == len(val)
    # every evaluation number, exactly the database's
    expected = stored_metrics(store, run.id)
    got = {k: v for k, v in mine.data.metrics.items() if "/" in k and k.split("/")[0] not in ("train", "val")}
    assert got == expected and len(expected) > 40
    artifacts = {a.path for a in client.list_artifacts(mine.info.run_id)}
    assert artifacts == {f"xlbench-run-{run.id}.json", "heatmap-xquad-r.svg"}
    # the "before" evaluation: its own MLflow run, a child of the training run
    before = next(c for c in store.children(run.id) if c.kind == "eval")
    child = runs[str(before.id)]
    assert child.data.tags["mlflow.parentRunId"] == mine.info.run_id
    assert {k: v for k, v in child.data.metrics.items()} == stored_metrics(store, before.id)
    _note(f"MLflow read back through MlflowClient: run {run.id} with {len(params)} params, {len(history)} losses, "
          f"{len(expected)} metrics equal to the database's; its 'before' evaluation a child run")


@pytest.mark.slow
def test_tensorboard_events_read_back(mirrored):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ws, store, run, _ = mirrored
    folder = ws / "runs" / f"run-{run.id}" / "tensorboard"
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    points = store.train_points(run.id, split="train")
    assert [(e.step, e.value) for e in acc.Scalars("train/loss")] == [(p.step, np.float32(p.loss)) for p in points]
    expected = stored_metrics(store, run.id)
    assert set(expected) <= tags
    for key, value in expected.items():  # TensorBoard keeps float32
        assert acc.Scalars(key)[-1].value == np.float32(value), key
    assert "config/text_summary" in acc.Tags()["tensors"]


def _wandb_records(path: Path) -> list:
    """The records of a wandb offline file (LevelDB-style log of protobuf records)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    block, pos, pending, out = 32768, 7, b"", []
    while pos + 7 <= len(data):
        if block - pos % block < 7:
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 0 and length == 0:
            pos += block - pos % block if pos % block else 0
            continue
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(pending)
            out.append(record)
    return out


@pytest.mark.slow
def test_wandb_offline_folder_holds_the_run(mirrored):
    ws, store, run, _ = mirrored
    found = list((ws / "runs" / f"run-{run.id}" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(found) == 1
    history = []
    for record in _wandb_records(found[0]):
        if record.WhichOneof("record_type") == "history":
            history.append({(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in record.history.item})
    losses = [h["train/loss"] for h in history if "train/loss" in h]
    assert losses == [p.loss for p in store.train_points(run.id, split="train")]
    last = {k: v for h in history for k, v in h.items()}
    assert {k: last[k] for k in stored_metrics(store, run.id)} == stored_metrics(store, run.id)
    files = {p.name for p in (found[0].parent / "files").iterdir()}
    assert {f"xlbench-run-{run.id}.json", "heatmap-xquad-r.svg"} <= files


@pytest.mark.slow
def test_a_server_that_dies_mid_run_costs_one_warning(tmp_path, tiny_model):
    proc, url = start_server(tmp_path / "doomed")
    try:
        toml = tiny_run_toml(tmp_path / "run.toml", tiny_model, steps=200, eval_langs=("de", "en"), val_every=0,
                             batch_size=8)
        env = {"MLFLOW_TRACKING_URI": url}
        run_proc = subprocess.Popen(
            [sys.executable, "-m", "xlbench", "run", "--headless", "--config", str(toml), "--report-to", "mlflow",
             "--set", "report.every=0.3", "--set", "report.mlflow.experiment=doomed"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **env})
        from mlflow.tracking import MlflowClient

        def losses_arrived():
            runs = _mlflow_runs(url, "doomed")
            return runs and MlflowClient(url).get_metric_history(next(iter(runs.values())).info.run_id, "train/loss")

        wait_for(lambda: losses_arrived() or run_proc.poll() is not None, timeout=300, interval=0.3)
        assert run_proc.poll() is None, "the run ended before the server could be stopped: make it longer"
        stop_server(proc)
        killed = time.monotonic()
        out, err = run_proc.communicate(timeout=600)
    finally:
        stop_server(proc)
    assert run_proc.returncode == 0, err
    store = _store(Path(os.environ["XLBENCH_HOME"]))
    run = next(r for r in store.list_runs() if r.kind == "train")
    assert run.status == "finished" and len(store.train_points(run.id, split="train")) == 200
    warnings = [e.message for e in store.events(run.id) if e.level == "warning"]
    assert len(warnings) == 1 and warnings[0].startswith("reporter mlflow stopped"), warnings
    assert "run goes on without it" in err
    _note(f"MLflow server killed mid-run: the run finished {time.monotonic() - killed:.1f} s later with one "
          f"warning: {warnings[0][:150]}")


def test_reporters_are_plugins_and_bad_requests_fail_before_a_row(workspace, tmp_path):
    res = xlbench("eval", "--encoder", "hashing", "-l", "en,de", "--report-to", "mlfow")
    assert res.returncode == 1 and "no reporter plugin named 'mlfow'; did you mean 'mlflow'?" in res.stderr
    from xlbench.config import ReportSection, parse_config
    from xlbench.errors import ConfigError

    with pytest.raises(ConfigError, match="holds a password"):
        parse_config(ReportSection, {"to": ["mlflow"], "mlflow": {"tracking_uri": "https://me:s3cret@mlflow.lab/"}})
    from xlbench.plugins import Registry
    from xlbench.tracking import check_reporters

    with pytest.raises(ConfigError, match="unknown option experimnt"):
        check_reporters(ReportSection.model_validate({"to": ["mlflow"], "mlflow": {"experimnt": "x"}}), Registry(None))
    with pytest.raises(ConfigError, match="not in report.to"):
        check_reporters(ReportSection.model_validate({"to": ["tensorboard"], "mlflow": {"experiment": "x"}}), Registry(None))
    assert {"mlflow", "tensorboard", "wandb", "jsonl"} <= set(Registry(Path(os.environ["XLBENCH_PLUGINS_DIR"])).names("reporter"))


@pytest.mark.slow
def test_a_local_reporter_plugin_and_one_that_fails(workspace, tmp_path):
    """The example plugin (plugins/jsonl_reporter.py) gets every number; a reporter whose package is
    missing is one warning and the run finishes."""
    plugins = tmp_path / "plugins"
    write_plugin(plugins, "broken.py", '''
        from xlbench.tracking import Tracker

        class Broken(Tracker):
            kind = "reporter"
            name = "broken"

            def start(self, run):
                import tracker_that_is_not_installed  # noqa: F401
    ''')
    repo_plugins = Path(os.environ["XLBENCH_PLUGINS_DIR"])
    for f in repo_plugins.glob("*.py"):
        (plugins / f.name).write_text(f.read_text())
    res = xlbench("--plugins-dir", str(plugins), "eval", "--encoder", "hashing", "-l", "en,de",
                  "--report-to", "jsonl,broken")
    assert res.returncode == 0, res.stderr
    store = _store(workspace)
    run = store.list_runs()[0]
    assert run.status == "finished"
    warnings = [e.message for e in store.events(run.id) if e.level == "warning"]
    assert len(warnings) == 1 and "reporter broken stopped (start): ModuleNotFoundError" in warnings[0]
    lines = [json.loads(line) for line in (workspace / "runs" / f"run-{run.id}" / "report.jsonl").read_text().splitlines()]
    metrics = {k: v for line in lines if line["type"] == "metrics" for k, v in line["values"].items()}
    assert metrics == stored_metrics(store, run.id)
    assert lines[0]["type"] == "start" and lines[-1] == {"type": "finish", "status": "finished"}
    # a detached run reports from its background worker the same way
    res = xlbench("--plugins-dir", str(plugins), "eval", "--encoder", "hashing", "-l", "en,de", "--report-to", "jsonl",
                  "--detach")
    assert res.returncode == 0, res.stderr
    detached = store.list_runs()[0]
    assert detached.id != run.id
    wait_for(lambda: store.get_run(detached.id).status not in ("queued", "running"), timeout=120)
    assert store.get_run(detached.id).status == "finished"
    report = workspace / "runs" / f"run-{detached.id}" / "report.jsonl"
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert {k: v for line in lines if line["type"] == "metrics" for k, v in line["values"].items()} == stored_metrics(store, detached.id)


@pytest.mark.slow
def test_report_command_sends_a_stored_run_later(workspace, mlflow_url):
    res = xlbench("eval", "--encoder", "hashing", "-l", "en,de")
    assert res.returncode == 0, res.stderr
    store = _store(workspace)
    run = store.list_runs()[0]
    res = xlbench("report", str(run.id), "--report-to", "mlflow", "-o", "mlflow.experiment=later",
                  env={"MLFLOW_TRACKING_URI": mlflow_url})
    assert res.returncode == 0, res.stderr
    assert f"run {run.id} sent to mlflow" in res.stdout
    later = _mlflow_runs(mlflow_url, "later")
    mine = [r for r in later.values() if r.data.tags["xlbench.store"] and r.data.tags["xlbench.run"] == str(run.id)]
    assert len(mine) == 1 and mine[0].data.metrics == stored_metrics(store, run.id)
    # sent twice: the same MLflow run, found again by its key
    assert xlbench("report", str(run.id), "--report-to", "mlflow", "-o", "mlflow.experiment=later",
                   env={"MLFLOW_TRACKING_URI": mlflow_url}).returncode == 0
    assert len([r for r in _mlflow_runs(mlflow_url, "later").values()]) == len(later)
    res = xlbench("report", str(run.id))
    assert res.returncode != 0 and "names no reporter" in res.stderr


@pytest.mark.slow
def test_a_sweep_is_one_parent_run_even_when_its_workers_race(mlflow_url, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from mlflow.tracking import MlflowClient

    from xlbench.tracking.base import RunInfo
    from xlbench.tracking.mlflow_tracker import MlflowTracker

    def report(run_id: int) -> str:
        tracker = MlflowTracker(experiment="sweep-race")
        tracker.start(RunInfo(run_id=run_id, name=f"run {run_id}", kind="train", status="running", params={},
                              tags={"xlbench.run": str(run_id), "xlbench.store": "s", "xlbench.sweep": "1"},
                              folder=tmp_path, key=f"s:{run_id}", sweep_key="s:sweep:1", sweep_name="sweep 1: alpha"))
        tracker.finish("finished")
        return tracker.run_id

    os.environ["MLFLOW_TRACKING_URI"] = mlflow_url
    try:
        with ThreadPoolExecutor(3) as pool:  # (MLflow's own SQLite backend refuses more at once now and then)
            ids = list(pool.map(report, range(1, 7)))
    finally:
        os.environ.pop("MLFLOW_TRACKING_URI")
    client = MlflowClient(mlflow_url)
    exp = client.get_experiment_by_name("sweep-race").experiment_id
    parents = client.search_runs([exp], "tags.`xlbench.key` = 's:sweep:1'")
    assert len(parents) == 1 and parents[0].info.run_name == "sweep 1: alpha"
    assert {client.get_run(i).data.tags["mlflow.parentRunId"] for i in ids} == {parents[0].info.run_id}
