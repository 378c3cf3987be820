"""How core work reports progress without knowing who listens (database, terminal, TUI).

Core code calls :meth:`Reporter.phase`, :meth:`Reporter.advance` and :meth:`Reporter.event`.
``advance`` is also the safe point where a listener may stop the work by raising
:class:`~xlbench.errors.Cancelled`.
"""

from __future__ import annotations


class Reporter:
    """A listener that ignores everything; subclass what you need."""

    def phase(self, name: str, total: int | None = None) -> None:
        """A new stage of work begins (``total`` units, if known)."""

    def advance(self, done: int, total: int | None = None) -> None:
        """``done`` units of the current stage are complete. May raise ``Cancelled``."""

    def event(self, message: str, level: str = "info", **data) -> None:
        """Something a person reading the run's log should know."""

    def cancelled(self) -> bool:
        """Whether someone asked the work to stop (polled where raising is not an option)."""
        return False


class FanOut(Reporter):
    """Forward every call to several reporters, in order."""

    def __init__(self, *reporters: Reporter) -> None:
        self.reporters = [r for r in reporters if r is not None]

    def phase(self, name: str, total: int | None = None) -> None:
        for r in self.reporters:
            r.phase(name, total)

    def advance(self, done: int, total: int | None = None) -> None:
        for r in self.reporters:
            r.advance(done, total)

    def event(self, message: str, level: str = "info", **data) -> None:
        for r in self.reporters:
            r.event(message, level, **data)

    def cancelled(self) -> bool:
        return any(r.cancelled() for r in self.reporters)
