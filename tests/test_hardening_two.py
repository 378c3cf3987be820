"""Issue 21 (hardening, round two), one test or more per numbered finding that fails on the main
it was filed against and passes now."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import xlbench
from xlbench.store.store import Store

# --- 6. every option validated, once, before any row exists (the ranges themselves: the
# parametrized test_training_settings_out_of_range_… in tests/test_hardening.py) ---------------------


@pytest.mark.parametrize("setting", ["threads=1000000000000", "sampler.alpha=nan", "eval.model_batch_size=0"])
def test_a_detached_run_with_an_option_out_of_range_leaves_no_queued_row(workspace, setting):
    """threads=10^12 used to leave a row queued that the next `xlbench queue` picked up."""
    res = xlbench("run", "--detach", "--set", setting)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert not (workspace / "db" / "xlbench.sqlite").exists() or Store().list_runs() == []


@pytest.mark.parametrize("args,message", [
    (["--threads", "0"], "threads: Input should be greater than or equal to 1"),
    (["--threads", "1000000000000"], "threads: Input should be less than or equal to 1024"),
    (["--batch-size", "0"], "model_batch_size: Input should be greater than or equal to 1"),
    (["--max-seq-length", "-1"], "max_seq_length: Input should be greater than or equal to 1"),
])
def test_evaluation_options_out_of_range_are_one_line_and_no_row(workspace, args, message):
    res = xlbench("eval", *args)
    assert res.returncode == 2 and message in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not (workspace / "db" / "xlbench.sqlite").exists() or Store().list_runs() == []


def test_a_sweep_with_a_nan_grid_value_queues_nothing(workspace):
    res = xlbench("sweep", "--grid", "sampler.alpha=0,nan")
    assert res.returncode == 2 and "must be a finite number" in res.stderr and "sampler.alpha=nan" in res.stderr
    assert not (workspace / "db" / "xlbench.sqlite").exists() or Store().list_runs() == []


def test_warm_up_longer_than_training_is_a_warning(workspace):
    res = xlbench("run", "--check", "--set", "train.warmup_steps=500")
    assert res.returncode == 0, res.stderr
    assert "warning: train.warmup_steps=500 is not below train.max_steps=120" in res.stderr


# --- 3. stored text is inert on the terminal -------------------------------------------------------

HOSTILE = "evil\x1b]52;c;SGVsbG8=\x07\x1b]0;owned\x07\x1b[2J[link=file:///etc/passwd]click[/link]\x9b31m"


def _inert_output(text: str, *, shown: bool = True) -> None:
    assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text, repr(text[:400])
    if not shown:
        return
    assert "\\x1b]52;c;SGVsbG8=" in text  # shown, visibly escaped
    assert "[link=file:///etc/passwd]click[/link]" in text  # markup shown as text, not interpreted


@pytest.mark.slow
def test_a_hostile_name_is_shown_inert_by_every_command(store, tmp_path):
    from tests.helpers import store_synthetic_sweep

    sweep_id, ids = store_synthetic_sweep(store, (0, 1), seeds=(1, 2), name=HOSTILE)
    store.add_event(ids[0], HOSTILE, level="error")
    env = {"COLUMNS": "400"}
    for args in (["runs"], ["runs", "show", str(ids[0])], ["compare", str(ids[0]), str(ids[1]), "--permutations", "1000"],
                 ["compare", "--sweep", str(sweep_id)], ["sweep", "show", str(sweep_id)],
                 ["sweep", "show", str(sweep_id), "--format", "md"]):
        res = xlbench(*args, env=env)
        assert res.returncode == 0, (args, res.stderr)
        # a sweep's groups are labelled by α, and its Markdown table names no run: nothing to show there
        _inert_output(res.stdout, shown="--sweep" not in args and "md" not in args)
    export = tmp_path / "hostile.json"
    assert xlbench("export", str(ids[0]), "-o", str(export)).returncode == 0
    imported = xlbench("--db", f"sqlite:///{tmp_path / 'other.sqlite'}", "import", str(export))
    assert imported.returncode == 0, imported.stderr
    _inert_output(imported.stdout)


def test_a_very_long_event_is_cut_in_linear_time(store):
    import time

    from tests.helpers import store_synthetic_sweep
    from xlbench.text import MESSAGE_LIMIT, inert

    _, ids = store_synthetic_sweep(store, (0,), seeds=(1,))
    store.add_event(ids[0], "x" * 5_000_000)
    started = time.monotonic()
    res = xlbench("runs", "show", str(ids[0]))
    assert res.returncode == 0 and time.monotonic() - started < 30
    assert f"[{5_000_000 - MESSAGE_LIMIT:,} more characters]" in res.stdout
    started = time.perf_counter()
    assert len(inert("y" * 50_000_000, limit=MESSAGE_LIMIT)) < MESSAGE_LIMIT + 40
    assert time.perf_counter() - started < 1


async def test_the_app_shows_a_hostile_name_inert(store):
    from rich.text import Text
    from textual.widgets import DataTable, Static

    from tests.conftest import PLUGINS
    from tests.helpers import store_synthetic_sweep
    from tests.tui.conftest import fixed_clock
    from tests.tui.test_screens import settle
    from xlbench.text import inert
    from xlbench.tui.app import XlbenchApp

    sweep_id, ids = store_synthetic_sweep(store, (0, 1), seeds=(1, 2), name=HOSTILE)
    store.add_event(ids[0], HOSTILE, level="error")
    app = XlbenchApp(store.url, plugins_dir=str(PLUGINS), poll_seconds=3600, clock=fixed_clock)
    async with app.run_test(size=(200, 50)) as pilot:
        await settle(pilot)
        table = app.screen.query_one(DataTable)
        names = [table.get_row_at(i)[2] for i in range(table.row_count)]
        assert all(isinstance(n, Text) and n.plain.startswith(inert(HOSTILE)[:40]) for n in names)
        app.open_run(ids[0])
        await settle(pilot)
        info = app.screen.query_one("#run-info", Static).render()
        _inert_output(str(info))
        app.open_sweep(sweep_id)
        await settle(pilot, rounds=5)
        _inert_output(str(app.screen.query_one("#sweep-status", Static).render()))
        store.ensure_model(HOSTILE, encoder="sentence-transformers", source="/nowhere", label=HOSTILE, info={})
        await pilot.press("m")
        await settle(pilot)
        models = app.screen.query_one(DataTable)
        assert models.row_count == 1 and all(isinstance(c, Text) for c in models.get_row_at(0))
        _inert_output(" ".join(c.plain for c in models.get_row_at(0)))
        _inert_output(str(app.screen.query_one("#catalog-detail", Static).render()))


# --- 1. decompression bombs: bounded memory, one line ----------------------------------------------

CAP = 500 * 2**20  # the memory cap the import runs under


def _capped() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (CAP + 2**30, CAP + 2**30))  # address space: 500 MB heap + code


def _lareqa_bomb() -> bytes:
    """An npz whose block_rank member inflates to 2 GB of zeros (a few MB deflated)."""
    import io
    import zipfile

    import numpy as np

    n_query, n_lang = 2**27, 2  # int64: 2 GB
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        small = {"languages": np.array(["de", "en"]), "query_ids": np.array(["q"]), "query_lang": np.zeros(1, np.int16),
                 "pool_rank": np.ones((1, 2), np.int32), "pool_sizes": np.ones(2, np.int64)}
        for name, arr in small.items():
            with z.open(f"{name}.npy", "w") as f:
                np.lib.format.write_array(f, arr)
        with z.open("block_rank.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(f, {"descr": "<i8", "fortran_order": False, "shape": (n_query, n_lang)})
            zeros = bytes(2**24)
            for _ in range(n_query * n_lang * 8 // len(zeros)):
                f.write(zeros)
    return buf.getvalue()


def _miracl_bomb() -> bytes:
    import zlib

    c = zlib.compressobj(9)
    out = [c.compress(b'{"depth": 100, "queries": [')]
    blank = b" " * 2**24
    out += [c.compress(blank) for _ in range(128)]  # 2 GB of whitespace
    out += [c.compress(b"]}"), c.flush()]
    return b"".join(out)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["lareqa-ranks-v1", "miracl-hits-v1"])
def test_an_import_bomb_is_one_line_under_a_memory_cap_and_writes_nothing(store, tmp_path, fmt):
    import base64
    import json
    import subprocess
    import sys

    from tests.helpers import store_synthetic_sweep

    _, ids = store_synthetic_sweep(store, (0,), seeds=(1,))
    export = tmp_path / "run.json"
    assert xlbench("export", str(ids[0]), "-o", str(export)).returncode == 0
    doc = json.loads(export.read_text())
    bomb = _lareqa_bomb() if fmt == "lareqa-ranks-v1" else _miracl_bomb()
    assert len(bomb) < 10 * 2**20
    doc["query_results"][0].update(format=fmt, payload=base64.b64encode(bomb).decode())
    export.write_text(json.dumps(doc))
    other = tmp_path / "other.sqlite"
    res = subprocess.run([sys.executable, "-m", "xlbench", "--db", f"sqlite:///{other}", "import", str(export)],
                         capture_output=True, text=True, preexec_fn=_capped, timeout=300,
                         env={**__import__("os").environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})
    assert res.returncode != 0
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "query_results[0].payload" in res.stderr and "decompresses to more than 256 MB" in res.stderr, res.stderr
    assert not other.exists() or Store(f"sqlite:///{other}").list_runs() == []


@pytest.mark.slow
def test_a_stored_bomb_is_refused_by_readers_too(store):
    """A database written by an older version (no check on import): compare reads with the limit."""
    from sqlmodel import select

    from tests.helpers import store_synthetic_sweep
    from xlbench.store.database import session
    from xlbench.store.models import QueryResult

    _, ids = store_synthetic_sweep(store, (0, 1), seeds=(1,))
    with session(store.engine) as s:
        row = s.exec(select(QueryResult).where(QueryResult.run_id == ids[1])).one()
        row.payload = _lareqa_bomb()
        s.add(row)
        s.commit()
    res = xlbench("compare", str(ids[0]), str(ids[1]), "--permutations", "1000")
    assert res.returncode != 0 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert f"run {ids[1]}: its stored xquad-r per-query payload: decompresses to more than 256 MB" in res.stderr


def test_json_nested_too_deep_is_one_line(store, tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    res = xlbench("import", str(deep))
    assert res.returncode != 0 and len(res.stderr.strip().splitlines()) == 1, res.stderr[-500:]
    assert "deep.json" in res.stderr and "nested deeper" in res.stderr


# --- 7. small things that misled -------------------------------------------------------------------


def test_compare_with_nothing_in_common_is_one_line_and_exit_one(store):
    from sqlmodel import select

    from tests.helpers import store_synthetic_sweep
    from xlbench.store.database import session
    from xlbench.store.models import QueryResult

    _, ids = store_synthetic_sweep(store, (0, 1), seeds=(1,))
    with session(store.engine) as s:
        row = s.exec(select(QueryResult).where(QueryResult.run_id == ids[1])).one()
        row.dataset = "mlqa-r"
        s.add(row)
        s.commit()
    res = xlbench("compare", str(ids[0]), str(ids[1]), "--permutations", "1000")
    assert res.returncode == 1 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "no evaluation in common" in res.stderr and f"run {ids[1]}: mlqa-r" in res.stderr


def test_a_wide_metric_set_folds_into_a_readable_table():
    from rich.console import Console

    from xlbench.console import MAX_METRIC_ROWS, family_table

    metrics = {f"m{i:06d}": 0.5 for i in range(100_000)}
    report = {"dataset": "x", "summary": {"mono": metrics, "cross": metrics}, "cells": []}
    table = family_table(report)
    assert len(table.columns) == 3 and table.row_count == MAX_METRIC_ROWS
    console = Console(width=100, record=True, file=__import__("io").StringIO())
    console.print(table)
    text = console.export_text()
    assert "99,900 more metrics" in text and max(len(line) for line in text.splitlines()) <= 100


@pytest.mark.slow
def test_resume_right_after_the_worker_died_finds_out_itself(store, tiny_model, workspace):
    import json
    import subprocess
    import sys

    from tests.jobs.test_training import tiny_config
    from xlbench.store.database import session
    from xlbench.store.models import Run

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    config = tiny_config(tiny_model, "hybrid", 4, eval={"before": False})
    run = store.create_run(kind="train", name="killed", config=json.loads(config.model_dump_json()))
    with session(store.engine) as s:  # what a kill -9 leaves: running, this host, a pid that is gone
        row = s.get(Run, run.id)
        row.status, row.pid, row.host = "running", dead.pid, __import__("socket").gethostname()
        s.commit()
    res = xlbench("run", "--headless", "--resume", str(run.id))
    assert res.returncode == 0, res.stderr
    assert "is running" not in res.stderr and store.get_run(run.id).status == "finished"


# --- 4. a full disk anywhere: the run fails in one line naming the file, nothing half-written -----


def _no_free_space(monkeypatch):
    from xlbench.core import integrity

    class Full:
        f_bavail, f_frsize = 0, 4096

    monkeypatch.setattr(integrity.os, "statvfs", lambda path: Full())


@pytest.mark.parametrize("where", ["checkpoint", "final model"])
def test_a_full_disk_while_saving_a_model_is_one_line_naming_the_file(store, tiny_model, monkeypatch, where):
    import safetensors.torch

    from tests.test_hardening import _trained_run

    def torch_says(tensors=None, filename=None, *a, **k):  # a partial file, then torch's words for a full disk
        if filename:
            Path(filename).write_bytes(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 11776 vs 11674")

    if where == "checkpoint":
        monkeypatch.setattr(safetensors.torch, "save_file", torch_says)
    else:
        from xlbench.core.encoders import trainable

        monkeypatch.setattr(trainable.SentenceTransformerTrainable, "save", lambda self, folder: torch_says())
    _no_free_space(monkeypatch)
    with pytest.raises(OSError, match="No space left on device"):
        _trained_run(store, tiny_model, steps=12, train={"checkpoint_every": 10 if where == "checkpoint" else 0,
                                                          "val_every": 0})
    run = store.list_runs(limit=1)[0]
    assert run.status == "failed" and run.error.startswith("No space left on device: ") and "\n" not in run.error
    assert "inline_container" not in run.error
    named = "checkpoints/step-00000010/model.safetensors" if where == "checkpoint" else "run-1/model"
    assert run.error.endswith(named), run.error
    assert not [p for p in (Path.cwd() / "runs").rglob("*") if ".tmp" in p.name]  # nothing half-written


def test_a_full_disk_while_writing_the_cache_names_the_file(workspace, monkeypatch):
    from xlbench.core.integrity import atomic_write

    def numpy_says(fh):
        fh.write(b"partial")
        raise OSError("3741184 requested and 1484768 written")  # numpy's own words, no errno

    _no_free_space(monkeypatch)
    target = workspace / "cache" / "x.vecs.npy"
    target.parent.mkdir(parents=True)
    with pytest.raises(OSError) as caught:
        atomic_write(target, numpy_says)
    assert caught.value.strerror == "No space left on device" and caught.value.filename.endswith("x.vecs.npy.tmp")
    assert not list(target.parent.iterdir())


# --- 5. Slurm: an outage survived, a cancel from outside said as such ------------------------------


def test_the_slurm_follower_survives_an_unreachable_controller(store, monkeypatch):
    from xlbench.errors import XlbenchError
    from xlbench.runs.executors import slurm

    run = store.create_run(kind="train", name="placed", config={})
    store.finish_run(run.id, "finished")
    answers = iter([XlbenchError("asking Slurm for job states: squeue failed: Unable to contact slurm controller")] * 3
                   + ["7_0|COMPLETED|node1\n"])

    def squeue(args, what):
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    waits = []
    monkeypatch.setattr(slurm, "_command", squeue)
    monkeypatch.setattr(slurm.time, "sleep", waits.append)
    said = []
    ended = slurm.SlurmExecutor(poll_seconds=5).follow(store, {run.id: "7_0"}, say=said.append)
    assert ended == {run.id: "finished"}
    assert waits == [10, 20, 40]  # backing off, never giving up
    assert [m for m in said if "still following" in m] == [said[0]] and said[0].startswith("Slurm unreachable since ")
    assert "Unable to contact slurm controller" in said[0]
    assert any(m.startswith("Slurm answers again") for m in said)


def test_a_job_cancelled_outside_xlbench_is_not_taken_for_a_requeue(monkeypatch):
    """What scontrol says while the worker handles SIGTERM (seen on the CI cluster): scancel →
    COMPLETING with no restart; scontrol requeue or preemption → COMPLETING, Restarts grown."""
    import signal

    from xlbench.runs.executors import slurm

    monkeypatch.setenv("SLURM_JOB_ID", "12")
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "11")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    ex = slurm.SlurmExecutor()
    asked = []
    for restart_count, record, requeue, cancelled in (
            ("", "JobId=12 ArrayJobId=11 ArrayTaskId=1 JobState=COMPLETING Reason=None Requeue=1 Restarts=0", False, True),
            ("", "JobId=12 JobState=COMPLETING Reason=None Requeue=1 Restarts=1", True, False),
            ("2", "JobId=12 JobState=COMPLETING Reason=None Requeue=1 Restarts=2", False, True),
            ("", "JobId=12 JobState=RUNNING Restarts=0", True, False)):  # a plain kill -TERM: as before
        monkeypatch.setenv("SLURM_RESTART_COUNT", restart_count)
        monkeypatch.setattr(slurm, "_command", lambda args, what, record=record: asked.append(args) or record + "\n")
        assert (ex.stop_reason(signal.SIGTERM) is not None) == requeue, record
        reason = ex.cancel_reason(signal.SIGTERM)
        assert (reason is not None) == cancelled, record
        if cancelled:
            assert reason.startswith("Slurm job 11_1 was cancelled from outside xlbench (scancel)")
    assert asked[0] == ["scontrol", "show", "job", "12", "--oneliner"]

    def unreachable(args, what):
        raise slurm.XlbenchError("scontrol failed")

    monkeypatch.setattr(slurm, "_command", unreachable)  # cannot ask: a preemption, as before
    assert ex.stop_reason(signal.SIGTERM) is not None and ex.cancel_reason(signal.SIGTERM) is None


@pytest.mark.slow
def test_import_streams_a_large_export_with_bounded_memory(tmp_path):
    """90 copies of the α study's records (a 56 MB file): the import holds one document at a time
    (its peak is the interpreter's plus one document, not a multiple of the file)."""
    import json
    import subprocess
    import sys

    record = Path(__file__).resolve().parents[1] / "results" / "alpha-study.json"
    docs = json.loads(record.read_text())[:6]
    big = tmp_path / "big.json"
    with open(big, "w") as fh:  # written as a stream too
        fh.write("[")
        for k in range(90):
            fh.write(("," if k else "") + json.dumps(docs[k % len(docs)]))
        fh.write("]")
    size_mb = big.stat().st_size / 2**20
    assert size_mb > 30
    # VmHWM, not ru_maxrss: the latter keeps the forking parent's peak across exec (a fat pytest)
    measured = ("import re, runpy, sys\n"
                "sys.argv = ['xlbench'] + sys.argv[1:]\n"
                "try:\n    runpy.run_module('xlbench', run_name='__main__')\n"
                "finally:\n    print('peak-kb', re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1),"
                " file=sys.stderr)\n")
    res = subprocess.run([sys.executable, "-c", measured, "--db", f"sqlite:///{tmp_path / 'big.sqlite'}", "import", str(big)],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("imported run") == 90
    peak_mb = int(res.stderr.split("peak-kb")[-1].split()[0]) / 1024
    assert peak_mb < 200, f"peak {peak_mb:.0f} MB importing a {size_mb:.0f} MB file"


def test_a_payload_whose_query_count_disagrees_with_its_record_is_refused(store, tmp_path):
    import json

    from tests.helpers import store_synthetic_sweep

    _, ids = store_synthetic_sweep(store, (0,), seeds=(1,))
    export = tmp_path / "run.json"
    assert xlbench("export", str(ids[0]), "-o", str(export)).returncode == 0
    doc = json.loads(export.read_text())
    info = json.loads(doc["query_results"][0]["info_json"] or "{}")
    doc["query_results"][0]["info_json"] = json.dumps({**info, "queries": 5})
    export.write_text(json.dumps(doc))
    res = xlbench("--db", f"sqlite:///{tmp_path / 'other.sqlite'}", "import", str(export))
    assert res.returncode != 0 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "query_results[0].payload: holds 120 queries where its info_json says 5" in res.stderr
