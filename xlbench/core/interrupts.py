"""The stop signals this process received, so a worker can tell a person's Ctrl-C or cancel from
a scheduler's preemption or time-limit warning (which hand the run back to the queue instead)."""

from __future__ import annotations

import signal

# SIGUSR1: what a batch scheduler (Slurm's --signal) sends before a time limit
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)

_received: list[int] = []


def note(signum: int) -> None:
    _received.append(signum)


def last() -> int | None:
    """The most recent stop signal, or None."""
    return _received[-1] if _received else None
