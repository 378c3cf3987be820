"""A run's life (xlbench/runs): the "before" evaluation is its own queued row, executed through the
one entry like any other; a run handed to a background process from a terminal loads its data once,
in the process that checked it, never again in the worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import tiny_run_toml, wait_for, write_plugin, xlbench

COUNTING = '''
    import dataclasses
    import os

    from xlbench.core.data.corpora import XquadRCorpus
    from xlbench.core.data.sources import XquadR


    def _count(what):
        with open(os.environ["XLBENCH_TEST_LOAD_LOG"], "a") as fh:
            fh.write(f"{what} {os.getpid()}\\n")


    class CountedCorpus:
        kind = "corpus"
        name = "counted-xquad"

        def load(self, spec):
            _count("corpus")
            return XquadRCorpus().load(dataclasses.replace(spec, kind="xquad-r"))


    class CountedSet:
        kind = "dataset"
        name = "counted-xquad"

        def load(self, *args, **kwargs):
            _count("dataset")
            return XquadR().load(*args, **kwargs)
'''


def _setup(tmp_path, tiny_model):
    plugins = tmp_path / "plugins"
    write_plugin(plugins, "counted.py", COUNTING)
    log = tmp_path / "loads.txt"
    toml = tiny_run_toml(tmp_path / "run.toml", tiny_model, steps=3, eval_langs=("de", "en"), val_every=0)
    sets = ["--set", "data.kind=counted-xquad", "--set", 'eval.datasets=[{"name": "counted-xquad"}]',
            "--set", "eval.before=true"]
    return plugins, log, toml, sets


def _loads(log: Path) -> list[tuple[str, int]]:
    return [(w, int(pid)) for w, pid in (line.split() for line in log.read_text().splitlines())]


def _store():
    from xlbench.store.store import Store

    return Store()


def _wait_finished(store, run_id: int):
    wait_for(lambda: store.get_run(run_id).status not in ("queued", "running"), timeout=300, interval=0.5)
    run = store.get_run(run_id)
    assert run.status == "finished", run.error
    return run


def test_before_evaluation_is_a_queued_child_row_executed_like_any_other(workspace, tiny_model, tmp_path):
    from xlbench.config import RunConfig, parse_config
    from xlbench.runs.execute import execute_run
    from xlbench.runs.jobs import training
    from xlbench.runs.launch import submit
    from xlbench.presets import set_dotted

    import tomllib

    toml = tiny_run_toml(tmp_path / "run.toml", tiny_model, steps=3, eval_langs=("de", "en"), val_every=0)
    data = tomllib.loads(toml.read_text())
    set_dotted(data, "eval.before=true")
    config = parse_config(RunConfig, data)
    store = _store()
    run_id = submit(store, "train", config, "life")
    children = store.children(run_id)
    assert [(c.kind, c.status, c.name) for c in children] == [("eval", "queued", f"before: {tiny_model}")]
    assert json.loads(children[0].config_json)["model"] == str(tiny_model)
    execute_run(store, run_id, prepared=training.prepare(config))
    child = store.get_run(children[0].id)
    assert child.status == "finished" and child.pid == os.getpid()  # claimed and executed here, its own row
    assert json.loads(child.env_json)["threads"] == config.threads and store.metrics(child.id)
    assert store.get_run(run_id).status == "finished" and len(store.children(run_id)) == 1


@pytest.mark.slow
def test_a_detached_run_loads_its_data_once(workspace, tiny_model, tmp_path):
    plugins, log, toml, sets = _setup(tmp_path, tiny_model)
    env = {"XLBENCH_TEST_LOAD_LOG": str(log)}
    res = xlbench("--plugins-dir", str(plugins), "run", "--config", str(toml), *sets, "--detach", env=env)
    assert res.returncode == 0, res.stderr
    store = _store()
    train = next(r for r in store.list_runs() if r.kind == "train")
    before = store.children(train.id)[0]
    assert before.name.startswith("before: ")
    train = _wait_finished(store, train.id)
    # one load of the training data and one of the evaluation sets, by the process that checked them;
    # the background process executed the run (and its before evaluation) with that data
    loads = _loads(log)
    assert sorted(w for w, _ in loads) == ["corpus", "dataset"], loads
    assert len({pid for _, pid in loads}) == 1 and train.pid != loads[0][1]
    assert store.get_run(before.id).status == "finished" and store.get_run(before.id).pid == train.pid


@pytest.mark.slow
def test_xlbench_run_in_a_terminal_loads_its_data_once_and_opens_the_app(workspace, tiny_model, tmp_path):
    """The default `xlbench run` at a terminal: checks and loads, queues, hands the run to a background
    process with that data, opens the app on it (here a stand-in: no terminal in a test)."""
    plugins, log, toml, sets = _setup(tmp_path, tiny_model)
    driver = tmp_path / "terminal.py"
    driver.write_text(
        "import sys\n"
        "import xlbench.commands.training as training\n"
        "import xlbench.tui.app as app\n"
        "training.in_terminal = lambda: True\n"
        "app.run_app = lambda db, plugins_dir, open_run=None: print(f'app opened on run {open_run}')\n"
        "from xlbench.cli import main\n"
        f"sys.argv = ['xlbench', '--plugins-dir', {str(plugins)!r}, 'run', '--config', {str(toml)!r}, *{sets!r}]\n"
        "main()\n")
    res = subprocess.run([sys.executable, str(driver)], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "XLBENCH_TEST_LOAD_LOG": str(log)})
    assert res.returncode == 0, res.stderr
    store = _store()
    train = next(r for r in store.list_runs() if r.kind == "train")
    assert f"app opened on run {train.id}" in res.stdout
    train = _wait_finished(store, train.id)
    loads = _loads(log)
    assert sorted(w for w, _ in loads) == ["corpus", "dataset"], loads
    assert train.pid != loads[0][1]
