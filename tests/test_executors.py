"""Executors: the local queue as a plugin, and Slurm through the real sbatch/squeue/scancel/scontrol.

The Slurm tests need a running cluster (``SLURM_CONF``, as ``.ci/start-slurm`` prints it) and a
PostgreSQL server (``XLBENCH_TEST_PG_URL``): a cluster's nodes share the store through a server,
never a SQLite file. Each prints the job ids it sees, so the CI log shows them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PLUGINS
from tests.helpers import tiny_run_toml, wait_for, xlbench
from xlbench.errors import ConfigError
from xlbench.runs.executors.slurm import SlurmExecutor, SlurmOptions, batch_script
from xlbench.store.store import TERMINAL_STATUSES, Store

# --- the batch script (no cluster needed) --------------------------------------------------------


def test_batch_script_for_an_array_holds_runs_limits_and_signals_but_no_database(tmp_path):
    options = SlurmOptions(partition="gpu", time="04:00:00", mem="8G", cpus_per_run=4, gpus_per_run=1,
                           account="nlp", sbatch=["--constraint=a100"], signal_seconds=300)
    text = batch_script([7, 8, 9], options, log_dir=tmp_path, parallel=2, python="/opt/venv/bin/python",
                        workdir=tmp_path)
    lines = text.splitlines()
    assert lines[0] == "#!/bin/bash"
    for expected in ("#SBATCH --array=0-2%2", "#SBATCH --partition=gpu", "#SBATCH --time=04:00:00", "#SBATCH --mem=8G",
                     "#SBATCH --cpus-per-task=4", "#SBATCH --gpus-per-node=1", "#SBATCH --account=nlp",
                     "#SBATCH --constraint=a100", "#SBATCH --requeue", "#SBATCH --signal=B:USR1@300",
                     f"#SBATCH --output={tmp_path}/slurm-%A_%a.log", "runs=(7 8 9)",
                     'exec /opt/venv/bin/python -m xlbench worker "$run"'):
        assert expected in lines, expected
    assert "XLBENCH_DB=" not in text and "postgresql" not in text
    assert "torch.distributed.run" not in text


def test_batch_script_for_several_gpus_runs_the_worker_under_torchrun(tmp_path):
    text = batch_script([3], SlurmOptions(gpus_per_run=4, nodes=2), log_dir=tmp_path, parallel=None, python="python",
                        workdir=tmp_path)
    assert "#SBATCH --array" not in text and "run=3" in text
    assert "#SBATCH --nodes=2" in text and "#SBATCH --gpus-per-node=4" in text
    assert "#SBATCH --signal=USR1@120" in text  # the job steps (torchrun and its ranks), not only the shell
    assert "srun --kill-on-bad-exit=1 python -m torch.distributed.run --nnodes=\"$SLURM_NNODES\" --nproc-per-node=4" in text
    assert '-m xlbench worker "$run"' in text


@pytest.mark.parametrize("bad", [{"sbatch": ["--constraint=a100\necho pwned"]}, {"sbatch": ["rm -rf /"]},
                                 {"gpus_per_run": -1}, {"partiton": "gpu"}])
def test_bad_slurm_options_are_one_clear_error(bad):
    with pytest.raises(ConfigError, match=r"\[executor\]"):
        SlurmExecutor(**bad)


def test_a_sqlite_store_is_refused_for_slurm_before_anything_is_queued(workspace):
    res = xlbench("--plugins-dir", str(PLUGINS), "sweep", "--seeds", "1,2", "--run", "--executor", "slurm")
    assert res.returncode != 0
    assert "SQLite" in res.stderr and "PostgreSQL" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert Store().list_runs() == [] and Store().sweeps() == []


def test_slurm_flags_need_the_slurm_executor(workspace):
    res = xlbench("queue", "--partition", "gpu")
    assert res.returncode != 0 and "--executor slurm" in res.stderr


def test_executors_are_plugins():
    from xlbench.plugins import Registry

    registry = Registry(PLUGINS)
    assert {"local", "slurm"} <= set(registry.names("executor"))
    assert registry.load("executor", "slurm").shared_store is True


def test_an_executor_config_section_is_read_and_kept_out_of_the_experiment(tmp_path):
    from xlbench.commands.placement import choose_executor
    from xlbench.commands.training import build_run_config

    cfg = tmp_path / "cluster.toml"
    cfg.write_text('[executor]\nname = "slurm"\npartition = "gpu"\ntime = "01:00:00"\n[train]\nmax_steps = 5\n')
    ex = choose_executor(None, cfg, ["mem=4G"], partition="debug")
    assert ex.name == "slurm" and ex.options.partition == "debug" and ex.options.mem == "4G"
    assert ex.options.time == "01:00:00"
    assert "executor" not in build_run_config(None, cfg, [], {})


# --- a real one-node cluster ------------------------------------------------------------------


def _slurm_ready() -> bool:
    if not os.environ.get("SLURM_CONF") or not shutil.which("sbatch"):
        return False
    res = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True)
    return res.returncode == 0 and any(s.strip() in ("idle", "mix", "alloc") for s in res.stdout.split())


needs_cluster = pytest.mark.skipif(not _slurm_ready() or not os.environ.get("XLBENCH_TEST_PG_URL"),
                                   reason="needs a Slurm cluster (SLURM_CONF, .ci/start-slurm) and XLBENCH_TEST_PG_URL")


@pytest.fixture
def pg_url():
    from sqlalchemy import create_engine, text

    base = os.environ["XLBENCH_TEST_PG_URL"]
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    name = f"xlbench_slurm_{os.getpid()}_{os.urandom(3).hex()}"
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    yield base.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def report(line: str) -> None:
    """Print (seen with -s) and, in CI, append to $XLBENCH_CI_REPORT, which .ci/run prints."""
    print(line)
    if os.environ.get("XLBENCH_CI_REPORT"):
        with open(os.environ["XLBENCH_CI_REPORT"], "a") as fh:
            fh.write(line + "\n")


def sweep_on_slurm(exp: Path, db: str, *args: str) -> Store:
    """Queue ``exp`` as a sweep (``args``: --grid/--seeds and executor flags) and submit it to Slurm
    without following it; returns the store."""
    res = xlbench("--plugins-dir", str(PLUGINS), "sweep", "--config", str(exp), *args, "--run", "--executor", "slurm",
                  "--mem", "2G", "-x", "follow=false", env={"XLBENCH_DB": db})
    assert res.returncode == 0, res.stderr
    from sqlalchemy.engine import make_url

    password = make_url(db).password
    assert not password or password not in res.stdout + res.stderr
    return Store(db)


def squeue_state(job_id: str) -> str:
    res = subprocess.run(["squeue", "-h", "-r", "-t", "all", "-o", "%i %T"], capture_output=True, text=True)
    return dict(line.split() for line in res.stdout.splitlines() if line.strip()).get(job_id, "")


def training_step(store: Store, run_id: int) -> int:
    run = store.get_run(run_id)
    return (run.progress_done or 0) if run.status == "running" and run.phase == "training" else 0


def resumed_after(store: Store, run_id: int, stopped: str) -> list[str]:
    """The events of a run a scheduler's signal stopped, now ended: it finished, an event says
    ``stopped`` (why it handed the run back) and its next worker resumed from a checkpoint."""
    row = store.get_run(run_id)
    events = [e.message for e in store.events(run_id)]
    assert row.status == "finished", (row.status, row.error, events)
    assert any(stopped in m for m in events), events
    assert any(m.startswith("resuming from the checkpoint at step") for m in events), events
    return events


def metric_values(store: Store, run_id: int) -> dict:
    return {(m.dataset, m.setting, m.query_lang, m.corpus_lang, m.metric): m.value for m in store.metrics(run_id)}


@pytest.mark.postgres
@pytest.mark.slow
@needs_cluster
def test_a_sweep_runs_as_a_job_array_and_a_requeued_run_resumes_with_the_same_metrics(tiny_model, pg_url, tmp_path):
    # two runs that differ only in how many checkpoints they keep: the same model either way
    exp = tiny_run_toml(tmp_path / "exp.toml", tiny_model, steps=240, name="slurm", batch_size=8, val_every=0,
                        checkpoint_every=20)
    env = {"XLBENCH_DB": pg_url}
    store = sweep_on_slurm(exp, pg_url, "--grid", "train.keep_checkpoints=1,2", "-w", "2")
    runs = sorted(store.list_runs(), key=lambda r: r.id)
    assert len(runs) == 2 and all(r.executor == "slurm" and r.job_id for r in runs)
    report(f"sweep of 2 runs submitted as one job array: job ids {[r.job_id for r in runs]}")
    array = runs[0].job_id.split("_")[0]
    assert [r.job_id for r in runs] == [f"{array}_0", f"{array}_1"]

    target = runs[1]
    wait_for(lambda: training_step(store, target.id) >= 50, timeout=300, interval=0.5)
    requeue = subprocess.run(["scontrol", "requeue", target.job_id], capture_output=True, text=True)
    assert requeue.returncode == 0, requeue.stderr
    report(f"scontrol requeue {target.job_id} (run {target.id}) at training step {store.get_run(target.id).progress_done}")
    wait_for(lambda: all(store.get_run(r.id).status in TERMINAL_STATUSES for r in runs),
             timeout=600, interval=1)
    for r in runs:
        row = store.get_run(r.id)
        assert row.status == "finished", (row.status, row.error, [e.message for e in store.events(r.id)])
    events = resumed_after(store, target.id, "preempted or requeued (SIGTERM)")
    report(f"both runs finished; run {target.id}'s events after the requeue: "
           + " | ".join(m for m in events if "SIGTERM" in m or m.startswith("resuming") or m == "run finished"))
    resumed, straight = metric_values(store, target.id), metric_values(store, runs[0].id)
    assert resumed and resumed == pytest.approx(straight, abs=1e-12)
    mono = next(v for k, v in resumed.items() if k[1:] == ("mono", "macro", "macro", "map"))
    report(f"requeued run's metrics equal the uninterrupted run's ({len(resumed)} values; mono mAP {mono:.4f})")
    # the node a run ran on is its host; `xlbench runs` shows job and node
    listing = xlbench("runs", env=env)
    assert target.job_id in listing.stdout, listing.stdout
    store.dispose()


@pytest.mark.postgres
@pytest.mark.slow
@needs_cluster
def test_a_time_limit_warning_checkpoints_requeues_the_job_and_the_run_finishes(tiny_model, pg_url, tmp_path):
    exp = tiny_run_toml(tmp_path / "exp.toml", tiny_model, steps=160, name="usr1", batch_size=8, val_every=0,
                        checkpoint_every=40)
    store = sweep_on_slurm(exp, pg_url, "--seeds", "1", "--time", "00:30:00")
    run = store.list_runs()[0]
    wait_for(lambda: training_step(store, run.id) >= 30, timeout=300, interval=0.5)
    # what Slurm does signal_seconds before the time limit (--signal=B:USR1@120): SIGUSR1 to the batch shell
    subprocess.run(["scancel", "--signal=USR1", "--batch", run.job_id], check=True)
    report(f"scancel --signal=USR1 --batch {run.job_id} (a time-limit warning) at step {store.get_run(run.id).progress_done}")
    wait_for(lambda: store.get_run(run.id).status in TERMINAL_STATUSES, timeout=600, interval=1)
    events = resumed_after(store, run.id, "time limit is near (SIGUSR1)")
    report("after SIGUSR1: " + " | ".join(m for m in events if "SIGUSR1" in m or m.startswith("resuming") or m == "run finished"))
    store.dispose()


@pytest.mark.postgres
@pytest.mark.slow
@needs_cluster
def test_cancel_scancels_and_a_job_cancelled_outside_xlbench_is_said_so(tiny_model, pg_url, tmp_path):
    exp = tiny_run_toml(tmp_path / "exp.toml", tiny_model, steps=2000, name="long", batch_size=8, val_every=0,
                        checkpoint_every=50)
    env = {"XLBENCH_DB": pg_url}
    queued = xlbench("--plugins-dir", str(PLUGINS), "sweep", "--config", str(exp), "--seeds", "1,2", env=env)
    assert queued.returncode == 0, queued.stderr
    placed = xlbench("queue", "--executor", "slurm", "--mem", "2G", "-w", "2", "-x", "follow=false", env=env)
    assert placed.returncode == 0, placed.stderr
    store = Store(pg_url)
    first, second = sorted(store.list_runs(), key=lambda r: r.id)
    first, second = store.get_run(first.id), store.get_run(second.id)
    report(f"two runs placed on Slurm: {first.job_id}, {second.job_id}")
    wait_for(lambda: training_step(store, first.id) > 0 and training_step(store, second.id) > 0, timeout=300)

    cancelled = xlbench("cancel", str(first.id), env=env)
    assert cancelled.returncode == 0 and f"job {first.job_id}" in cancelled.stdout, cancelled.stdout
    wait_for(lambda: store.get_run(first.id).status == "cancelled", timeout=120)
    assert any(e.message == f"scancel {first.job_id}" for e in store.events(first.id))
    wait_for(lambda: squeue_state(first.job_id) == "CANCELLED", timeout=60)
    report(f"xlbench cancel {first.id}: run cancelled, event 'scancel {first.job_id}', squeue says {squeue_state(first.job_id)}")

    subprocess.run(["scancel", second.job_id], check=True)  # not through xlbench: its worker asks Slurm why
    def ended():
        xlbench("runs", env=env)  # listing runs asks Slurm about placed runs
        return store.get_run(second.id).status in ("cancelled", "lost")
    wait_for(ended, timeout=120, interval=2)
    row = store.get_run(second.id)
    report(f"scancel {second.job_id} outside xlbench: run {second.id} {row.status}: {row.error}")
    assert row.status == "cancelled", (row.status, row.error)
    assert row.error.startswith(f"Slurm job {second.job_id} was cancelled from outside xlbench (scancel)")
    assert not any("preempted or requeued" in e.message for e in store.events(second.id))  # never a requeue in progress
    store.dispose()


@pytest.mark.postgres
@pytest.mark.slow
@needs_cluster
def test_no_password_in_the_process_list_or_the_batch_script(tiny_model, pg_url, tmp_path):
    from sqlalchemy.engine import make_url

    secret = "S3cr3t-slurm-pw"
    url = make_url(pg_url).set(password=secret).render_as_string(hide_password=False)  # trust auth ignores it
    exp = tiny_run_toml(tmp_path / "exp.toml", tiny_model, steps=400, name="ps", batch_size=8, val_every=0,
                        checkpoint_every=100)
    store = sweep_on_slurm(exp, url, "--seeds", "1")
    run = store.list_runs()[0]
    wait_for(lambda: training_step(store, run.id) > 0, timeout=300)
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    worker = f"{sys.executable} -m xlbench worker {run.id}"
    assert worker in ps and secret not in ps
    scripts = list(Path(os.environ["XLBENCH_HOME"]).rglob("*.sbatch"))
    assert scripts and all(secret not in p.read_text() for p in scripts)
    xlbench("cancel", str(run.id), env={"XLBENCH_DB": url})
    wait_for(lambda: store.get_run(run.id).status == "cancelled", timeout=120)
    assert secret not in store.get_run(run.id).env_json
    report(f"ps during run {run.id} (job {run.job_id}) on PostgreSQL: '{worker}', no password in any process")
    store.dispose()
