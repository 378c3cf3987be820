"""Issue 10, one test (or more) per defect: no code runs from a file, no password leaks, no silently
wrong number, no run twice, a full disk or a NaN fails in one line, bad input gets one line."""

from __future__ import annotations

import errno
import json
import os
import pickle
import signal
import sqlite3
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import PLUGINS
from tests.helpers import SLOW_ENCODER, start_xlbench, wait_for, write_plugin, xlbench
from tests.jobs.test_training import tiny_config
from xlbench.errors import Evicted
from xlbench.runs.jobs import training
from xlbench.store.database import session
from xlbench.store.models import Run
from xlbench.store.store import Store
from xlbench.runs.worker import execute

SECRET = "s3cr3t-pw"


class Payload:
    """Unpickling this runs a shell command: what a hostile optimizer.pt carries."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _trained_run(store, tiny_model, steps=20, **over):
    config = tiny_config(tiny_model, "hybrid", steps=steps,
                         **{"train": {"checkpoint_every": 10, "val_every": 0}, "eval": {"before": False}, **over})
    run = store.create_run(kind="train", name="tiny", config=config.model_dump())
    execute(store, run.id, lambda rep: training.run(store, run.id, training.prepare(config), rep))
    return run, config


def _mark_failed(store, run_id):
    with session(store.engine) as s:
        s.get(Run, run_id).status = "failed"
        s.commit()


def _requeue_failed(store, run_id):
    _mark_failed(store, run_id)
    store.requeue(run_id)


# --- 1. code execution on resume ------------------------------------------------------------


@pytest.mark.slow
def test_hostile_optimizer_state_is_never_executed(store, tiny_model, tmp_path):
    from xlbench.core.integrity import manifest_for, write_json_atomic
    from xlbench.core.checkpoints import CHECKPOINT_FORMAT, CHECKPOINT_MANIFEST

    run, config = _trained_run(store, tiny_model)
    checkpoint = training.run_dir(run.id) / "checkpoints" / "step-00000020"
    marker = tmp_path / "pwned"
    (checkpoint / "optimizer.pt").write_bytes(pickle.dumps(Payload(marker)))
    # an attacker who can write the folder can also rewrite its manifest: integrity is not the defence here
    files = sorted(p for p in checkpoint.iterdir() if p.name != CHECKPOINT_MANIFEST)
    write_json_atomic(checkpoint / CHECKPOINT_MANIFEST, manifest_for(files, CHECKPOINT_FORMAT, step=20))
    _requeue_failed(store, run.id)
    with pytest.raises(Exception):
        execute(store, run.id, lambda rep: training.run(store, run.id, training.prepare(config), rep, resume=True))
    assert not marker.exists()
    assert store.get_run(run.id).status == "failed"


def _exported(store, run_id, tmp_path) -> dict:
    from xlbench.store.transfer import export_run

    return json.loads(json.dumps(export_run(store, run_id)))


def test_import_takes_a_record_never_processes_paths_or_plugins(store, tmp_path):
    from xlbench.store.transfer import import_run

    run = store.create_run(kind="eval", name="elsewhere", config={"encoder": "hashing", "plugins_dir": "/tmp/evil"})
    store.add_checkpoint(run.id, 10, "/tmp/evil/step-10")
    doc = _exported(store, run.id, tmp_path)
    doc["run"].update(status="running", pid=os.getpid(), host="somewhere", heartbeat_at="2100-01-01T00:00:00+00:00")
    target = Store(f"sqlite:///{tmp_path / 'other.sqlite'}")
    new_id, _ = import_run(target, doc, where="doc.json")
    got = target.get_run(new_id)
    assert got.status == "lost" and got.pid is None and got.host is None and got.heartbeat_at is None
    assert json.loads(got.config_json)["plugins_dir"] is None
    assert target.last_checkpoint(new_id) is None  # checkpoint paths of another machine are not imported
    assert json.loads(got.env_json)["imported"]["file"] == "doc.json"
    with pytest.raises(Exception, match="was imported from doc.json"):
        target.requeue(new_id)


def test_imported_failed_run_cannot_be_resumed_from_the_cli(store, tmp_path):
    run = store.create_run(kind="train", name="elsewhere", config={})
    doc = _exported(store, run.id, tmp_path)
    doc["run"]["status"] = "failed"
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(doc))
    other = f"sqlite:///{tmp_path / 'other.sqlite'}"
    assert xlbench("--db", other, "import", str(path)).returncode == 0
    res = xlbench("--db", other, "run", "--headless", "--resume", "1")
    assert res.returncode != 0 and "was imported from doc.json" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("field,value,message", [
    ("status", "exploded", "run.status: 'exploded' is not one of"),
    ("config_json", "{not json", "run.config_json: not JSON"),
    ("kind", 7, "run.kind: expected a string"),
])
def test_import_validates_every_field_and_writes_nothing(store, tmp_path, field, value, message):
    run = store.create_run(kind="eval", name="x", config={})
    doc = _exported(store, run.id, tmp_path)
    doc["run"][field] = value
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([_exported(store, run.id, tmp_path), doc]))  # a good document first
    other = tmp_path / "other.sqlite"
    res = xlbench("--db", f"sqlite:///{other}", "import", str(path))
    assert res.returncode != 0 and message in res.stderr and "bad.json" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not other.exists() or Store(f"sqlite:///{other}").list_runs() == []


def test_import_rejects_a_payload_that_is_not_what_it_claims(store, tmp_path):
    import base64

    from xlbench.errors import DataError
    from xlbench.store.transfer import parse_document

    run = store.create_run(kind="eval", name="x", config={})
    doc = _exported(store, run.id, tmp_path)
    doc["query_results"] = [{"dataset": "xquad-r", "format": "lareqa-ranks-v1",
                             "payload": base64.b64encode(pickle.dumps({"a": 1})).decode()}]
    with pytest.raises(DataError, match=r"query_results\[0\].payload: not a readable lareqa-ranks-v1 payload"):
        parse_document(doc, "doc.json")


# --- 2. the database password ----------------------------------------------------------------


def test_password_never_reaches_argv_records_or_exports(store, tmp_path, monkeypatch):
    import subprocess
    import sys

    from xlbench.runs import launch, worker
    from xlbench.store.secrets import redact_url
    from xlbench.store.transfer import write_export

    url = f"postgresql+psycopg://alice:{SECRET}@db.example:5432/xlbench"
    assert redact_url(url) == "postgresql+psycopg://alice:***@db.example:5432/xlbench"
    seen = {}
    with monkeypatch.context() as m:
        m.setattr(subprocess, "Popen", lambda cmd, **kw: seen.update(cmd=cmd, env=kw["env"]) or object())
        launch.spawn_worker(5, db=url)
    assert SECRET not in " ".join(seen["cmd"]) and seen["env"]["XLBENCH_DB"] == url
    monkeypatch.setattr(sys, "argv", ["xlbench", "--db", url, "worker", "5"])
    env = worker.environment(1)
    assert SECRET not in json.dumps(env) and "alice:***@db.example" in " ".join(env["argv"])
    # an old record that still holds the password is redacted on export
    run = store.create_run(kind="eval", name="old", config={})
    store.update_env(run.id, argv=["xlbench", f"--db={url}"])
    write_export(store, [run.id], tmp_path / "out.json")
    assert SECRET not in (tmp_path / "out.json").read_text()


def test_headless_header_and_runs_title_show_no_password(tmp_path):
    db = tmp_path / "x.sqlite"
    url = f"sqlite:///{db}"
    Store(url).dispose()
    # SQLite ignores user and password; the point is what is printed
    fake = url.replace("sqlite:///", f"sqlite://bob:{SECRET}@/")
    res = xlbench("--db", fake, "runs")
    assert SECRET not in res.stdout + res.stderr


@pytest.mark.postgres
def test_detached_worker_on_postgres_has_no_password_in_argv_or_rows(tmp_path):
    base = os.environ.get("XLBENCH_TEST_PG_URL")
    if not base:
        pytest.skip("XLBENCH_TEST_PG_URL not set")
    from sqlalchemy.engine import make_url

    u = make_url(base)
    url = u.set(password=SECRET, database=u.database).render_as_string(hide_password=False)  # trust auth ignores it
    res = xlbench("--db", url, "--plugins-dir", str(PLUGINS), "eval", "--encoder", "hashing", "-l", "en", "--detach")
    assert res.returncode == 0, res.stderr
    assert SECRET not in res.stdout + res.stderr
    store = Store(url)
    run = store.list_runs(limit=1)[0]
    if run.pid:
        try:
            cmdline = Path(f"/proc/{run.pid}/cmdline").read_bytes().decode(errors="replace")
            assert SECRET not in cmdline
        except FileNotFoundError:
            pass
    wait_for(lambda: store.get_run(run.id).status in ("finished", "failed"), timeout=120)
    assert SECRET not in store.get_run(run.id).env_json


# --- 3. a damaged embedding cache --------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["random", "truncated", "empty", "no-checksum"])
def test_damaged_cache_is_detected_reported_and_reencoded(workspace, damage):
    args = ("--plugins-dir", str(PLUGINS), "eval", "--encoder", "hashing", "-l", "en,de", "--json")
    clean = xlbench(*args, str(workspace / "clean.json"))
    assert clean.returncode == 0, clean.stderr
    shards = sorted((workspace / "cache" / "embeddings").rglob("*.vecs.npy"), key=lambda p: p.stat().st_size)
    victim = shards[-1]
    if damage == "random":
        victim.write_bytes(np.random.default_rng(0).bytes(victim.stat().st_size))
    elif damage == "truncated":
        victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    elif damage == "empty":
        victim.write_bytes(b"")
    else:
        victim.with_name(victim.name.replace(".vecs.npy", ".sum.json")).unlink()
    again = xlbench(*args, str(workspace / "again.json"))
    assert again.returncode == 0, again.stderr
    assert json.loads((workspace / "again.json").read_text()) == json.loads((workspace / "clean.json").read_text())
    store = Store()
    warnings = [e.message for e in store.events(2) if e.level == "warning"]
    stem = victim.name.removesuffix(".vecs.npy")
    assert any("embedding cache" in w and stem in w for w in warnings), warnings
    assert victim.with_name(victim.name + ".damaged").exists() or damage == "no-checksum"


# --- 4. a worker marked lost keeps running -----------------------------------------------------


def test_a_worker_whose_run_was_taken_over_writes_nothing(store, monkeypatch):
    run = store.create_run(kind="eval", name="contested", config={})
    store.claim_run(run.id, env={}, git_commit=None)
    store.add_train_points(run.id, [{"step": 1, "split": "train", "loss": 1.0}])
    # it stopped heart-beating; another worker takes the run over
    assert store.reap_lost(stale_seconds=-1) == [run.id]
    store.requeue(run.id)
    other = Store(store.url)
    other.owner = (other.owner[0] + 1, other.owner[1])
    other.claim_run(run.id, env={}, git_commit=None)
    for write in (lambda: store.add_train_points(run.id, [{"step": 2, "split": "train", "loss": 1.0}]),
                  lambda: store.add_event(run.id, "stale worker"), lambda: store.heartbeat(run.id),
                  lambda: store.finish_run(run.id, "finished")):
        with pytest.raises(Evicted):
            write()
    assert [p.step for p in store.train_points(run.id)] == [1]
    assert store.get_run(run.id).status == "running" and store.get_run(run.id).pid == other.owner[0]


@pytest.mark.slow
def test_sigstopped_worker_resumed_elsewhere_never_finishes_twice(tmp_path, workspace):
    plugins = tmp_path / "p"
    write_plugin(plugins, "slow.py", SLOW_ENCODER)
    first = start_xlbench("--plugins-dir", str(plugins), "eval", "--encoder", "slow", "--encoder-option", "delay=0.004",
                          "-l", "en,de")
    store = Store()
    run = wait_for(lambda: (r := store.list_runs(statuses=["running"])) and r[0].progress_done and r[0], timeout=90)
    first.send_signal(signal.SIGSTOP)
    try:  # stopped, it stops heart-beating: lost once its last beat is a second old
        wait_for(lambda: store.reap_lost(stale_seconds=1) == [run.id], timeout=30)
        store.requeue(run.id)
        second = start_xlbench("--plugins-dir", str(plugins), "worker", str(run.id))
    finally:
        first.send_signal(signal.SIGCONT)
    out, err = first.communicate(timeout=120)
    assert first.returncode == 3, err
    assert "no longer belongs to this worker" in err
    second.communicate(timeout=300)
    assert second.returncode == 0
    finished = [e for e in store.events(run.id) if e.message.startswith("run finished")]
    assert len(finished) == 1 and store.get_run(run.id).status == "finished"


def test_heartbeats_use_the_database_clock(store, monkeypatch):
    from xlbench.store import models

    run = store.create_run(kind="eval", name="skewed host", config={})
    store.claim_run(run.id, env={}, git_commit=None)
    skewed = lambda: models.datetime.now(models.UTC) - timedelta(hours=3)  # noqa: E731  a host 3 h behind
    monkeypatch.setattr(models, "utcnow", skewed)
    store.heartbeat(run.id)
    assert store.reap_lost() == []  # another host with a correct clock sees a fresh heartbeat
    assert store.get_run(run.id).status == "running"


# --- 5. a full disk ---------------------------------------------------------------------------


def test_full_disk_fails_the_run_in_one_line_and_leaves_no_temporary_files(workspace, monkeypatch, capsys):
    from xlbench.config import EvalConfig
    from xlbench.core.encoders import cache as cache_module
    from xlbench.runs.jobs import evaluation

    def full(fh, array):
        fh.write(b"\x93NUMPY partial")
        raise OSError(errno.ENOSPC, "No space left on device", fh.name)

    store = Store()
    config = EvalConfig(encoder="hashing", languages=["en", "de"], plugins_dir=str(PLUGINS))
    prepared = evaluation.prepare(config)
    run = store.create_run(kind="eval", name="full disk", config=config.model_dump())
    with monkeypatch.context() as m, pytest.raises(OSError):
        m.setattr(cache_module.np, "save", full)
        execute(store, run.id, lambda rep: evaluation.run(store, run.id, prepared, rep))
    got = store.get_run(run.id)
    assert got.status == "failed" and got.error.startswith("No space left on device: ") and "\n" not in got.error
    assert not list((workspace / "cache").rglob("*.tmp")) and not list((workspace / "cache").rglob("*.npy"))
    listed = xlbench("runs")
    assert listed.returncode == 0 and "full disk" in listed.stdout


def test_a_failure_that_cannot_be_recorded_is_one_line(store, monkeypatch, capsys):
    from sqlalchemy.exc import OperationalError

    run = store.create_run(kind="eval", name="x", config={})

    def job(rep):
        raise OSError(errno.ENOSPC, "No space left on device", "/data/cache/x.vecs.npy.tmp")

    def full(*a, **k):
        raise OperationalError("UPDATE runs SET ...", {}, sqlite3.OperationalError("database or disk is full"))

    monkeypatch.setattr(store, "finish_run", full)
    with pytest.raises(OSError):
        execute(store, run.id, job)
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"xlbench: run {run.id} failed (No space left on device: /data/cache/x.vecs.npy.tmp) and that could "
                   "not be recorded: database error: database or disk is full"]


def _as_reader(*args: str, home: Path):
    """xlbench run by a user for whom the (read-only) files are read-only, as on read-only media:
    root ignores file modes, so as root it runs in a user namespace where root's files belong to
    an ordinary user whose permission bits apply (`unshare --user --map-user`)."""
    import shutil
    import subprocess
    import sys

    env = {**os.environ, "XLBENCH_HOME": str(home), "HOME": str(home)}
    if os.geteuid() != 0:
        return xlbench(*args, env=env)
    if not shutil.which("unshare"):
        pytest.skip("needs unshare to drop root's override of file modes")
    return subprocess.run(["unshare", "--user", "--map-user=12345", sys.executable, "-m", "xlbench", *args],
                          capture_output=True, text=True, env=env, timeout=120)


def _shared_dir() -> Path:
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="xlbench-ro-"))
    folder.chmod(0o755)
    return folder


@pytest.mark.slow
def test_read_only_commands_work_on_read_only_media():
    import shutil

    home = _shared_dir()
    try:
        res = xlbench("--plugins-dir", str(PLUGINS), "eval", "--encoder", "hashing", "-l", "en", env={"XLBENCH_HOME": str(home)},
                      cwd=str(home))
        assert res.returncode == 0, res.stderr
        for p in [home, *home.rglob("*")]:
            p.chmod(0o555 if p.is_dir() else 0o444)
        for args in (["runs"], ["runs", "show", "1"], ["compare", "1", "1"]):
            res = _as_reader(*args, home=home)
            assert res.returncode == 0, (args, res.stderr)
    finally:
        for p in [home, *home.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        shutil.rmtree(home)


# --- 6. NaN losses and damaged checkpoints -----------------------------------------------------


@pytest.mark.slow
def test_a_diverging_run_fails_in_one_line(store, tiny_model, monkeypatch):
    from xlbench.core import train

    real = train.Trainer.batch_loss

    def diverge(self, *a, **k):
        loss = real(self, *a, **k)
        return loss * float("nan") if self.state.step >= 2 else loss

    monkeypatch.setattr(train.Trainer, "batch_loss", diverge)
    with pytest.raises(Exception, match="training diverged at step 3: the loss is nan"):
        _trained_run(store, tiny_model, steps=10)
    run = store.list_runs(limit=1)[0]
    assert run.status == "failed" and run.error.startswith("training diverged at step 3") and "SQL" not in run.error
    assert [p.step for p in store.train_points(run.id)] == [1, 2]


@pytest.mark.slow
def test_a_damaged_checkpoint_is_reported_and_an_intact_one_used(store, tiny_model):
    run, config = _trained_run(store, tiny_model, steps=20, train={"checkpoint_every": 10, "val_every": 0,
                                                                   "keep_checkpoints": 2})
    newest = training.run_dir(run.id) / "checkpoints" / "step-00000020" / "model.safetensors"
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0xFF
    newest.write_bytes(bytes(data))
    _requeue_failed(store, run.id)
    execute(store, run.id, lambda rep: training.run(store, run.id, training.prepare(config), rep, resume=True))
    messages = [e.message for e in store.events(run.id)]
    assert any("checkpoint not used" in m and "model.safetensors: checksum mismatch" in m for m in messages)
    assert "resuming from the checkpoint at step 10" in messages
    assert store.get_run(run.id).status == "finished"


# --- 7. validation gaps ---------------------------------------------------------------------------


@pytest.mark.parametrize("setting,message", [
    ("train.lr=0", "train.lr: Input should be greater than 0"),
    ("train.lr=nan", "train.lr: Input should be a finite number"),
    ("train.max_steps=0", "train.max_steps: Input should be greater than or equal to 1"),
    ("train.checkpoint_every=-1", "train.checkpoint_every: Input should be greater than or equal to 0"),
    ("train.val_share=1.5", "train.val_share: Input should be less than 1"),
    # the second probe (issue 21): every numeric option has its range
    ("sampler.alpha=nan", "sampler option alpha='nan': must be a finite number"),
    ("sampler.alpha=inf", "sampler option alpha='inf': must be a finite number"),
    ("model.max_seq_length=-1", "model.max_seq_length: Input should be greater than or equal to 1"),
    ("model.max_seq_length=0", "model.max_seq_length: Input should be greater than or equal to 1"),
    ("model.max_seq_length=1000000000000", "model.max_seq_length: Input should be less than or equal to 1048576"),
    ("train.seed=-1", "train.seed: Input should be greater than or equal to 0"),
    ("train.seed=100000000000000000000000", "train.seed: Input should be less than or equal to 4294967295"),
    ("threads=1000000000000", "threads: Input should be less than or equal to 1024"),
    ("threads=0", "threads: Input should be greater than or equal to 1"),
    ("threads=-1", "threads: Input should be greater than or equal to 1"),
    ("eval.model_batch_size=0", "eval.model_batch_size: Input should be greater than or equal to 1"),
    ("eval.model_batch_size=-1", "eval.model_batch_size: Input should be greater than or equal to 1"),
    ("data.limit=0", "data.limit: Input should be greater than or equal to 1"),
    ("data.limit=-1", "data.limit: Input should be greater than or equal to 1"),
])
def test_training_settings_out_of_range_are_one_line_and_no_row(workspace, setting, message):
    res = xlbench("run", "--headless", "--set", setting)
    assert res.returncode == 2 and message in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not (workspace / "db" / "xlbench.sqlite").exists() or Store().list_runs() == []


def test_non_utf8_jsonl_is_one_line(workspace):
    bad = workspace / "pairs.jsonl"
    bad.write_bytes(b'{"id": "1", "lang": "en", "query": "q", "passage": "p"}\n{"id": "2", "lang": "de", "query": "\xff\xfe"}\n')
    res = xlbench("run", "--headless", "--train-data", f"jsonl={bad}")
    assert res.returncode != 0 and "pairs.jsonl" in res.stderr and "UTF-8" in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("url,message", [("sqlite://x", "sqlite://x"), ("nosuchdb://u@h/x", "nosuchdb")])
def test_bad_database_urls_are_one_line(url, message):
    res = xlbench("--db", url, "runs")
    assert res.returncode != 0 and message in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_read_only_database_folder_is_one_line():
    import shutil

    home = _shared_dir()
    try:
        home.chmod(0o555)
        res = _as_reader("--db", f"sqlite:///{home / 'x.sqlite'}", "runs", home=home)
        assert res.returncode != 0 and "Traceback" not in res.stderr, res.stderr
        assert len(res.stderr.strip().splitlines()) == 1 and "x.sqlite" in res.stderr
    finally:
        home.chmod(0o755)
        shutil.rmtree(home)


BROKEN_ENCODERS = '''
import numpy as np

class Raises:
    kind = "encoder"
    name = "raises"
    def __init__(self):
        raise RuntimeError("no GPU here")
    def encode(self, texts, *, role):
        pass

class Mismatch:
    kind = "encoder"
    name = "mismatch"
    def encode(self, texts, *, role):
        return np.ones((len(texts), 8 if role == "query" else 16), dtype=np.float32)
'''


@pytest.mark.parametrize("args,message", [
    (("--encoder", "raises"), "encoder 'raises' could not be created: RuntimeError: no GPU here"),
    (("--encoder", "mismatch"), "encoder 'mismatch' returned 8-dimensional query vectors but 16-dimensional passage vectors"),
    (("--encoder", "hashing", "--encoder-option", "bogus=1"), "encoder 'hashing' does not accept these options"),
])
def test_broken_encoders_are_one_line_and_leave_no_failed_row(workspace, tmp_path, args, message):
    plugins = tmp_path / "plugins"
    write_plugin(plugins, "broken.py", BROKEN_ENCODERS)
    (plugins / "hashing_encoder.py").write_text((PLUGINS / "hashing_encoder.py").read_text())
    res = xlbench("--plugins-dir", str(plugins), "eval", *args, "-l", "en")
    assert res.returncode != 0 and message in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    if "--encoder-option" in args:  # caught before the run exists (the others fail the run, in one line)
        assert not (workspace / "db" / "xlbench.sqlite").exists() or Store().list_runs() == []


@pytest.mark.slow
def test_json_is_written_on_resume(store, tiny_model, workspace):
    run, config = _trained_run(store, tiny_model)
    _mark_failed(store, run.id)
    out = workspace / "resumed.json"
    res = xlbench("run", "--headless", "--resume", str(run.id), "--json", str(out))
    assert res.returncode == 0, res.stderr
    assert json.loads(out.read_text())["dataset"] == "xquad-r"
