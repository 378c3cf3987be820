"""The store: migrations on an empty database, the model matches the migrations, run lifecycle."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import inspect

from xlbench.store.database import current_revision, head_revision, make_engine, migrate
from xlbench.store.store import Store


def test_migrations_build_the_schema_on_an_empty_database(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.sqlite'}")
    assert current_revision(engine) is None
    migrate(engine)
    assert current_revision(engine) == head_revision()
    tables = set(inspect(engine).get_table_names())
    assert {"models", "datasets", "runs", "run_events", "metrics", "query_results", "checkpoints"} <= tables
    migrate(engine)  # idempotent


def test_models_and_migrations_agree(tmp_path):
    """Autogenerate against a migrated database must find nothing to do."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlmodel import SQLModel

    import xlbench.store.models  # noqa: F401

    engine = make_engine(f"sqlite:///{tmp_path / 'cmp.sqlite'}")
    migrate(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == []


def test_sqlite_pragmas_are_set(store):
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_default_database_lives_in_the_workspace(workspace):
    s = Store()
    assert s.url == f"sqlite:///{workspace / 'db' / 'xlbench.sqlite'}"
    assert (workspace / "db" / "xlbench.sqlite").exists()


def test_run_lifecycle_and_results(store):
    from xlbench.core.lareqa_report import Cell
    from xlbench.store.results import report_from_rows, result_rows

    run = store.create_run(kind="eval", name="t", config={"a": 1})
    assert run.status == "queued"
    claimed = store.claim_run(run.id, env={"threads": 1}, git_commit=None)
    assert claimed.status == "running" and claimed.pid == os.getpid()
    with pytest.raises(Exception, match="not queued"):
        store.claim_run(run.id, env={}, git_commit=None)

    class Result:
        dataset, version, payload_format, payload, info = "toy", "v1", "x", b"\x00\x01", {}
        cells = [Cell("mono", "en", "en", 3, {"map": 0.5}), Cell("cross", "en", "de", 3, {"map": 0.25}),
                 Cell("multi", "en", "all", 3, {"map": 0.1})]
        summary = {"mono": {"map": 0.5, "n_cells": 1}, "multi": {"map": 0.1, "n_cells": 1, "map_micro": 0.1}}
        bias = {"rank_distance": {"per_lang": {"en": 4.0}, "macro": 4.0}, "visibility": [{"lang": "de", "mean_rank": 2.0}]}

    rows, payload = result_rows(run.id, Result)
    store.save_results(run.id, rows, payload)
    store.save_results(run.id, *result_rows(run.id, Result))  # replacing is idempotent
    report = report_from_rows(store.metrics(run.id))[0]
    assert {(c["setting"], c["corpus_lang"]) for c in report["cells"]} == {("mono", "en"), ("cross", "de"), ("multi", "all")}
    assert report["summary"]["multi"]["map_micro"] == 0.1
    assert report["bias"]["rank_distance"]["macro"] == 4.0 and report["bias"]["visibility"][0]["lang"] == "de"
    assert store.query_results(run.id)[0].payload == b"\x00\x01"
    store.finish_run(run.id, "finished")
    assert store.get_run(run.id).status == "finished"


def test_cancel_of_a_queued_run_is_immediate(store):
    run = store.create_run(kind="eval", name="q", config={})
    assert store.request_cancel(run.id).status == "cancelled"


@pytest.mark.postgres
def test_store_on_postgresql():
    url = os.environ.get("XLBENCH_TEST_PG_URL")
    if not url:
        pytest.skip("XLBENCH_TEST_PG_URL not set (CI starts a PostgreSQL server and sets it)")
    from sqlalchemy import create_engine, text

    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    name = f"xlbench_test_{os.getpid()}"
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        db_url = url.rsplit("/", 1)[0] + f"/{name}"
        s = Store(db_url)
        run = s.create_run(kind="eval", name="pg", config={"x": [1, 2]})
        s.claim_run(run.id, env={}, git_commit=None)
        s.add_event(run.id, "hello")
        assert s.heartbeat(run.id) is False
        s.request_cancel(run.id)
        assert s.heartbeat(run.id) is True
        s.finish_run(run.id, "cancelled")
        assert s.get_run(run.id).status == "cancelled" and s.events(run.id)[0].message == "hello"
        # the whole pipeline on PostgreSQL: an evaluation run, its metrics and per-query ranks
        from tests.helpers import xlbench

        res = xlbench("--db", db_url, "eval", "--encoder", "hashing", "-l", "en,de")
        assert res.returncode == 0, res.stderr
        evaluated = s.list_runs()[0]
        assert evaluated.status == "finished" and len(s.metrics(evaluated.id)) > 30 and s.query_results(evaluated.id)
        s.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def _at_revision(path, revision: str):
    from alembic import command

    from xlbench.store.database import _alembic_config

    engine = make_engine(f"sqlite:///{path}")
    cfg = _alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    return engine


def test_upgrade_keeps_existing_rows_and_foreign_keys(tmp_path):
    engine = _at_revision(tmp_path / "old.sqlite", "0001")
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO runs (id, name, kind, status, config_json, created_at, phase, cancel_requested, "
                             "xlbench_version, env_json) VALUES (1, 'r', 'eval', 'finished', '{}', '2026-01-01', '', 0, '0', '{}')")
        conn.exec_driver_sql("INSERT INTO run_events (run_id, ts, level, message, data_json) VALUES (1, '2026-01-01', 'info', 'hi', '{}')")
    migrate(engine)
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT message FROM run_events WHERE run_id = 1").scalar() == "hi"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


@pytest.mark.slow
def _open_in_lockstep(barrier, root: str, rounds: int) -> None:
    """Open the same new database file as the other process, ``rounds`` times, each after both
    reach the barrier (a child of the test below)."""
    try:
        for i in range(rounds):
            barrier.wait(timeout=60)  # raises BrokenBarrierError if the other process never comes
            Store(f"sqlite:///{root}/race{i}.sqlite").dispose()
    except BaseException:
        barrier.abort()  # the other process stops waiting at once
        raise


def test_concurrent_first_opens_all_succeed(tmp_path):
    """Processes that open a new file at the same instant (torchrun ranks) all get the schema.

    Two processes (this machine has two cores) import once, then open thirty new files in lockstep:
    before each open both wait at a barrier, so the opens really collide however busy the machine;
    before the journal-mode retry, about one open in three failed "database is locked".
    """
    import multiprocessing

    spawn = multiprocessing.get_context("spawn")  # fresh interpreters, as torchrun's ranks are
    barrier = spawn.Barrier(2)
    procs = [spawn.Process(target=_open_in_lockstep, args=(barrier, str(tmp_path), 30)) for _ in range(2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=180)
    assert [proc.exitcode for proc in procs] == [0, 0]  # a child's traceback is in the captured stderr


def test_phase_times_of_a_run_resumed_during_its_evaluation_start_at_its_first_attempt(store):
    """Run 7 of the α study was resumed after its training had ended: its last claim came after its
    last step, which once made its training time negative."""
    from datetime import UTC, datetime, timedelta

    from tests.helpers import wait_for
    from xlbench.store.views import phase_seconds

    def later_than(stamp) -> None:
        """Until the clock is 50 ms past ``stamp`` (the last thing the store wrote), so the next
        write is distinctly later."""
        stamp = stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
        wait_for(lambda: datetime.now(UTC) >= stamp + timedelta(seconds=0.05), timeout=30, interval=0.01)

    run = store.create_run(kind="train", name="resumed", config={})
    store.set_job(run.id, "slurm", "41_0")  # placed (and noted) long before it starts
    later_than(store.events(run.id)[-1].ts)
    store.claim_run(run.id, env={}, git_commit=None)
    store.add_event(run.id, "trains on ...")
    store.add_train_points(run.id, [{"step": s, "split": "train", "loss": 1.0} for s in (1, 2)])
    later_than(store.train_points(run.id)[-1].ts)
    store.finish_run(run.id, "lost", "worker stopped")
    store.requeue(run.id)
    later_than(store.get_run(run.id).finished_at or store.events(run.id)[-1].ts)
    store.claim_run(run.id, env={}, git_commit=None)  # resumed in evaluation: no more steps
    later_than(store.get_run(run.id).started_at)
    store.finish_run(run.id, "finished")
    row = store.get_run(run.id)
    first = store.events(run.id)[1].ts  # "trains on ...", after the placement note
    last_step = store.train_points(run.id)[-1].ts
    phases = phase_seconds(store, row)
    assert row.started_at > last_step  # the situation
    assert phases["train"] == pytest.approx((last_step - first).total_seconds()) and phases["train"] >= 0
    assert phases["evaluate"] == pytest.approx((row.finished_at - last_step).total_seconds()) and phases["evaluate"] > 0.1
    assert phases["total"] == pytest.approx(phases["train"] + phases["evaluate"])
