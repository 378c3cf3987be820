"""One error family: every failure a person can act on is an ``XlbenchError``.

The CLI prints ``str(error)`` as a single line and exits with ``error.exit_code``;
the TUI shows it in a dialog. Tracebacks appear only with ``--debug``.
"""

from __future__ import annotations


class XlbenchError(Exception):
    """Base class: a one-line message for a person and an exit code for scripts."""

    exit_code = 1

    def __str__(self) -> str:  # keep it to one line whatever the cause carried
        return " ".join(super().__str__().split())


class ConfigError(XlbenchError):
    """The request itself is wrong: unknown option value, unknown plugin, bad config file."""

    exit_code = 2


class DataError(XlbenchError):
    """An input file is malformed. The message names the file and the place."""

    def __init__(self, path: object, place: str, problem: str) -> None:
        self.path = str(path)
        self.place = place
        self.problem = problem
        where = f"{self.path}: {place}" if place else self.path
        super().__init__(f"{where}: {problem}")


class PluginError(XlbenchError):
    """A plugin could not be found, imported, or broke its contract."""


class ModelError(XlbenchError):
    """A model could not be loaded or built."""


class StoreError(XlbenchError):
    """The database could not be opened, migrated, or does not hold what was asked for."""


class TrainingError(XlbenchError):
    """Training cannot go on: the loss diverged (NaN or infinite), or a checkpoint is unusable."""


class Evicted(XlbenchError):
    """This worker no longer owns its run (it was marked lost and resumed elsewhere): stop, write nothing."""

    exit_code = 3


class Cancelled(XlbenchError):
    """The run was cancelled (Ctrl-C or a cancel request); what was written is kept."""

    exit_code = 130


def one_line(exc: BaseException) -> str:
    """What went wrong, in one line a person can act on (never an SQL statement or a traceback)."""
    if isinstance(exc, XlbenchError):
        return str(exc)
    orig = getattr(exc, "orig", None)  # SQLAlchemy wraps the driver's own error (and appends the SQL)
    if orig is not None:
        return "database error: " + " ".join(str(orig).split())
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror + (f": {exc.filename}" if exc.filename else "")
    return f"{type(exc).__name__}: " + " ".join(str(exc).split())
