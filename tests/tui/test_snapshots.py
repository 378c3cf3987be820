"""SVG snapshots of every screen at 80×24 and 160×48 (update with --snapshot-update)."""

from __future__ import annotations

import pytest

from tests.tui.test_screens import settle

SIZES = {"80x24": (80, 24), "160x48": (160, 48)}


async def _settle(pilot) -> None:
    await settle(pilot, rounds=4)


def _open_run(run_id: int, tab: str | None = None):
    async def go(pilot) -> None:
        await _settle(pilot)
        pilot.app.open_run(run_id)
        await _settle(pilot)
        if tab:
            pilot.app.screen.query_one("#run-tabs").active = tab
            await _settle(pilot)

    return go


def _press(*keys: str):
    async def go(pilot) -> None:
        await _settle(pilot)
        for key in keys:
            await pilot.press(key)
            await _settle(pilot)

    return go


async def _compare(pilot) -> None:
    await _settle(pilot)
    pilot.app.open_compare([1, 2])
    await _settle(pilot)


async def _new_run(pilot) -> None:
    await _settle(pilot)
    await pilot.press("n")
    await _settle(pilot)


SCREENS = {
    "runs": _press(),
    "run_loss": _open_run(1),
    "run_heatmap": _open_run(1, "tab-heatmap"),
    "run_bias": _open_run(1, "tab-bias"),
    "run_failed": _open_run(4, "tab-events"),
    "compare": _compare,
    "models": _press("m"),
    "datasets": _press("d"),
    "new_run": _new_run,
    "help": _press("question_mark"),
}


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("screen", list(SCREENS))
def test_screen_snapshot(snap_compare, make_app, screen, size):
    assert snap_compare(make_app(), terminal_size=SIZES[size], run_before=SCREENS[screen])
