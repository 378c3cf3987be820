"""Worker lifecycle as a person meets it: SIGKILL → lost, Ctrl-C → cancelled, cancel requests."""

from __future__ import annotations

import signal
import sqlite3
import time

import pytest

from tests.helpers import SLOW_ENCODER, start_xlbench, wait_for, write_plugin, xlbench
from xlbench.store.store import Store


@pytest.fixture
def slow_plugins(tmp_path):
    folder = tmp_path / "slow-plugins"
    write_plugin(folder, "slow.py", SLOW_ENCODER)
    return folder


def _running_run(store: Store):
    runs = store.list_runs(statuses=["running"])
    return runs[0] if runs and runs[0].progress_done else None


@pytest.mark.slow
def test_sigkill_leaves_database_intact_and_run_lost(slow_plugins, workspace):
    proc = start_xlbench("--plugins-dir", str(slow_plugins), "eval", "--encoder", "slow", "-l", "en,de")
    store = Store()
    run = wait_for(lambda: _running_run(store), timeout=90)
    assert run.pid == proc.pid
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    killed_at = time.monotonic()
    # what a person does next: list the runs
    out = wait_for(lambda: (r := xlbench("runs")).returncode == 0 and "lost" in r.stdout and r, timeout=30)
    assert time.monotonic() - killed_at < 30
    lost = store.get_run(run.id)
    assert lost.status == "lost" and "heart" in lost.error
    assert f"{run.id}" in out.stdout
    with sqlite3.connect(workspace / "db" / "xlbench.sqlite") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert store.events(run.id)  # what the worker wrote before dying is still there


def test_stale_heartbeat_from_another_host_is_lost(store):
    from datetime import timedelta

    from xlbench.store.database import session
    from xlbench.store.models import Run, utcnow

    run = store.create_run(kind="eval", name="elsewhere", config={})
    with session(store.engine) as s:
        row = s.get(Run, run.id)
        row.status, row.host, row.pid = "running", "another-host", 1
        row.heartbeat_at = utcnow() - timedelta(seconds=60)
        s.commit()
    fresh = store.create_run(kind="eval", name="alive elsewhere", config={})
    with session(store.engine) as s:
        row = s.get(Run, fresh.id)
        row.status, row.host, row.pid, row.heartbeat_at = "running", "another-host", 1, utcnow()
        s.commit()
    assert store.reap_lost() == [run.id]
    assert store.get_run(fresh.id).status == "running"


def test_a_worker_that_finishes_while_the_reaper_looks_keeps_its_outcome(store, monkeypatch):
    """The race two queues met in CI: a reaper reads a running run, its worker records "finished"
    and exits, and the reaper, finding the process gone, must not write "lost" over it."""
    from xlbench.store import store as store_module

    run = store.create_run(kind="eval", name="finishing", config={})
    store.claim_run(run.id, env={}, git_commit=None)
    gone = store.create_run(kind="eval", name="gone", config={})
    store.claim_run(gone.id, env={}, git_commit=None)
    worker = Store(store.url)
    worker.owner = store.owner

    def gone_after_finishing(pid):  # between the reaper's read and its mark
        if worker.get_run(run.id).status == "running":
            worker.finish_run(run.id, "finished")
        return False

    monkeypatch.setattr(store_module, "_pid_alive", gone_after_finishing)
    assert store.reap_lost() == [gone.id]  # its process is gone too, and it had recorded nothing
    assert store.get_run(run.id).status == "finished"
    assert [e.message for e in store.events(run.id) if e.level == "error"] == []

    from datetime import timedelta

    from xlbench.store.database import session
    from xlbench.store.models import Run

    again = store.create_run(kind="eval", name="beats in time", config={})
    store.claim_run(again.id, env={}, git_commit=None)
    with session(store.engine) as s:  # silent for a minute when the reaper reads it
        row = s.get(Run, again.id)
        row.heartbeat_at -= timedelta(seconds=60)
        s.commit()
    monkeypatch.setattr(store_module, "_pid_alive", lambda pid: worker.heartbeat(again.id) or True)
    assert store.reap_lost(stale_seconds=15) == []  # beating again by the mark
    assert store.get_run(again.id).status == "running"
    monkeypatch.setattr(store_module, "_pid_alive", lambda pid: True)
    with session(store.engine) as s:
        row = s.get(Run, again.id)
        row.heartbeat_at -= timedelta(seconds=60)
        s.commit()
    assert store.reap_lost(stale_seconds=15) == [again.id]  # and a silent one is still marked


@pytest.mark.slow
def test_ctrl_c_in_headless_mode_marks_cancelled(slow_plugins):
    # A non-interactive shell starts background jobs with SIGINT ignored and children inherit it
    # (the suite run as `bash -c '... &'` passed SIG_IGN down, and xlbench rightly ignored Ctrl-C):
    # give the child the default a terminal's shell gives.
    proc = start_xlbench("--plugins-dir", str(slow_plugins), "eval", "--encoder", "slow", "-l", "en,de",
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    store = Store()
    run = wait_for(lambda: _running_run(store), timeout=90)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "cancelled" in lines[0] and lines[0].startswith("xlbench: error:")
    final = store.get_run(run.id)
    assert final.status == "cancelled" and final.finished_at is not None
    assert any("cancelled" in e.message for e in store.events(run.id))


@pytest.mark.slow
def test_cancel_request_is_honoured_by_a_detached_worker(slow_plugins):
    res = xlbench("--plugins-dir", str(slow_plugins), "eval", "--encoder", "slow", "--encoder-option", "delay=0.002",
                  "-l", "en,de", "--detach")
    assert res.returncode == 0, res.stderr
    store = Store()
    run = wait_for(lambda: _running_run(store), timeout=90)
    assert xlbench("cancel", str(run.id)).returncode == 0
    wait_for(lambda: store.get_run(run.id).status == "cancelled", timeout=30)


def test_detached_worker_finishes_and_results_show(slow_plugins, tmp_path):
    res = xlbench("--plugins-dir", str(slow_plugins), "eval", "--encoder", "slow", "--encoder-option", "delay=0",
                  "-l", "en", "--detach")
    assert res.returncode == 0, res.stderr
    store = Store()
    run = wait_for(lambda: (runs := store.list_runs()) and runs[0].status in ("finished", "failed") and runs[0], timeout=120)
    assert run.status == "finished", run.error
    shown = xlbench("runs", "show", str(run.id), "--json", str(tmp_path / "r.json"))
    assert shown.returncode == 0 and "family means" in shown.stdout


def test_a_run_records_the_commit_of_this_checkout():
    """The worker stamps runs with the repository's commit (found from its own file's place)."""
    import subprocess

    from tests.conftest import REPO
    from xlbench.runs.worker import git_commit

    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert git_commit() is not None and git_commit().removesuffix("-dirty") == head


def test_a_queue_whose_worker_lost_the_claim_says_who_has_the_run(store, monkeypatch):
    """Two queues may start a worker for the same queued run; one claim wins. The other queue says
    so instead of reporting the winner's status as its own run's outcome."""
    from xlbench.runs import queue

    run = store.create_run(kind="eval", name="contested", config={})
    rival = Store(store.url)
    rival.owner = (rival.owner[0] + 1, rival.owner[1])

    class RefusedWorker:  # what `xlbench worker` does when the claim is refused: exits, writing nothing
        pid, returncode = rival.owner[0] + 1, 2

        def poll(self):
            return self.returncode

    def spawn(run_id, **_):
        rival.claim_run(run_id, env={}, git_commit=None)  # the other queue's worker got there first
        rival.finish_run(run_id, "finished")
        return RefusedWorker()

    monkeypatch.setattr(queue, "spawn_worker", spawn)
    said: list[str] = []
    assert queue.run_queue(store, poll=0.01, gpus=[], say=said.append) == {run.id: 2}
    assert said[-1] == (f"run {run.id} was taken by another worker (pid {rival.owner[0]} on {rival.owner[1]}, now finished); "
                        "this queue's worker left it")
    assert store.get_run(run.id).status == "finished"
