"""Shared screen mechanics: number keys for the tabs of a TabbedContent, and polling the database."""

from __future__ import annotations

from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import TabbedContent


def tab_bindings(*tabs: tuple[str, str]) -> list[Binding]:
    """``1``, ``2``, … switch to the tabs with these ids (each given with a description)."""
    return [Binding(str(i), f"tab('{tab_id}')", label, show=False) for i, (tab_id, label) in enumerate(tabs, start=1)]


class TabbedScreen(Screen):
    """A screen whose TabbedContent (any id) the number keys switch."""

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab


def poll_while_current(screen: Screen, seconds: float) -> None:
    """Call ``screen.poll()`` now and then every ``seconds`` while the screen is the one shown (a
    screen underneath another one does not query the database)."""
    screen.poll()
    screen.set_interval(seconds, lambda: screen.poll() if screen.is_current else None)
