"""The Sweep screens: the list, the curves with intervals and marks, the table, the runs; enter
opens a run or compares a point's seeds. Synthetic runs (integer ranks): the same on every machine."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable

from tests.helpers import store_synthetic_sweep
from tests.tui.conftest import fixed_clock
from tests.tui.test_screens import settle
from xlbench.tui.screens.compare import CompareScreen
from xlbench.tui.screens.run import RunScreen
from xlbench.tui.screens.sweep import StudyPlot, SweepScreen, SweepsScreen

SIZES = {"80x24": (80, 24), "160x48": (160, 48)}


@pytest.fixture
def sweep_app(store):
    from tests.conftest import PLUGINS
    from xlbench.tui.app import XlbenchApp

    store_synthetic_sweep(store, (0, 0.25, 0.5, 0.75, 1), seeds=(1, 2, 3))

    def factory() -> XlbenchApp:
        return XlbenchApp(store.url, plugins_dir=str(PLUGINS), poll_seconds=3600, clock=fixed_clock, permutations=1000)

    return factory


def _cells(table: DataTable) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


@pytest.mark.slow
async def test_sweeps_list_opens_the_study_and_its_runs(sweep_app):
    app = sweep_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("w")
        await settle(pilot)
        assert isinstance(app.screen, SweepsScreen)
        assert _cells(app.screen.query_one("#sweeps", DataTable))[0][:4] == ["1", "alpha", "train.seed=1,2,3 × sampler.alpha=0,0.25,0.5,0.75,1", "15"]
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, SweepScreen) and screen.study is not None
        plots = list(screen.query(StudyPlot))
        assert all(p.display for p in plots) and len(plots) == 4
        assert [r.label for r in screen.study.rows] == ["mono mAP", "cross mAP", "multi mAP", "rank distance"]
        await pilot.press("2")
        rows = _cells(screen.query_one("#study-table", DataTable))
        assert [r[0] for r in rows] == ["0", "0.25", "0.5", "0.75", "1"] and all(r[1] == "3" for r in rows)
        assert "±" in rows[2][2] and "a***" in rows[2][2] and "b***" in rows[2][2]
        power = str(screen.query_one("#study-power").content)
        assert power.count("detectable at 80 % power") == 4
        assert "as a training procedure" in str(screen.query_one("#sweep-status").content)
        await pilot.press("down", "down", "enter")  # the α = 0.5 point: its three seeds compared
        await settle(pilot)
        assert isinstance(app.screen, CompareScreen) and app.screen.run_ids == screen.study.rows[0].points[2].run_ids
        await pilot.press("escape")
        await pilot.press("3")
        await settle(pilot)
        runs = _cells(screen.query_one("#sweep-runs", DataTable))
        assert len(runs) == 15 and runs[0][:4] == ["1", "0", "1", "finished"] and runs[0][5] != "–"
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, RunScreen) and app.screen.run_id == 1


async def test_an_empty_sweep_screen_says_what_to_do(store):
    from tests.conftest import PLUGINS
    from xlbench.tui.app import XlbenchApp

    app = XlbenchApp(store.url, plugins_dir=str(PLUGINS), poll_seconds=3600, clock=fixed_clock)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        await pilot.press("w")
        await settle(pilot)
        assert "no sweeps yet" in str(app.screen.query_one("#sweeps-status").content)


@pytest.mark.parametrize("size", list(SIZES))
def test_sweep_screen_snapshot(snap_compare, sweep_app, size):
    async def open_sweep(pilot) -> None:
        await settle(pilot)
        pilot.app.open_sweep(1)
        await settle(pilot, rounds=5)

    assert snap_compare(sweep_app(), terminal_size=SIZES[size], run_before=open_sweep)


@pytest.mark.slow
async def test_small_terminal_shows_one_curve_at_a_time_and_reopening_runs_no_tests(sweep_app):
    app = sweep_app()
    calls = []
    run_cli = app.run_cli
    app.run_cli = lambda *args: calls.append(args) or run_cli(*args)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.open_sweep(1)
        await settle(pilot, rounds=5)
        screen = app.screen
        shown = lambda: [p.id for p in screen.query(StudyPlot) if p.display]  # noqa: E731
        assert shown() == ["study-0"] and "curve 1 of 4: mono mAP" in str(screen.query_one("#curve-hint").content)
        await pilot.press("right_square_bracket")
        assert shown() == ["study-1"] and "curve 2 of 4: cross mAP" in str(screen.query_one("#curve-hint").content)
        await pilot.press("left_square_bracket", "left_square_bracket")
        assert shown() == ["study-3"]
        await pilot.resize_terminal(160, 48)
        await settle(pilot)
        assert shown() == ["study-0", "study-1", "study-2", "study-3"] and not screen.query_one("#curve-hint").display
        await pilot.press("escape")
        app.open_sweep(1)
        await settle(pilot, rounds=5)
        assert app.screen.study is not None and len(app.screen.study.rows) == 4
    assert sum(1 for args in calls if args[:2] == ("sweep", "show")) == 1  # the second opening reused the study


async def test_the_curves_are_drawn_before_the_tests_over_seeds_return(sweep_app, monkeypatch):
    """Means and intervals at once from the runs' stored numbers; the marks when the `sweep show`
    process (held here on a gate) returns."""
    import threading

    from tests.tui.test_screens import until

    app = sweep_app()
    gate = threading.Event()
    real = app.run_cli

    def held(*args, **kw):
        if args[:2] == ("sweep", "show"):
            assert gate.wait(120), "the test never opened the gate"
        return real(*args, **kw)

    monkeypatch.setattr(app, "run_cli", held)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        app.open_sweep(1)
        screen = await until(pilot, lambda: isinstance(app.screen, SweepScreen) and app.screen.study is not None
                             and app.screen, what="the sweep screen with a study")
        assert screen.provisional and all(p.display for p in screen.query(StudyPlot))
        rows = _cells(screen.query_one("#study-table", DataTable))
        assert [r[0] for r in rows] == ["0", "0.25", "0.5", "0.75", "1"] and "±" in rows[2][2]
        assert not any("*" in cell for row in rows for cell in row)  # no marks before the tests
        assert "tests over seeds running" in str(screen.query_one("#sweep-status").content)
        provisional_means = [p.mean for p in screen.study.rows[0].points]
        gate.set()
        await until(pilot, lambda: not screen.provisional, timeout=120, what="the tests' marks")
        rows = _cells(screen.query_one("#study-table", DataTable))
        assert "a***" in rows[2][2] and "b***" in rows[2][2]
        # the quick means were the tested ones (each run's stored macro mean)
        assert [p.mean for p in screen.study.rows[0].points] == pytest.approx(provisional_means, abs=1e-12)
