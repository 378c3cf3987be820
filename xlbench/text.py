"""Stored text made inert for a terminal: names, events, errors and labels come from the database
or from imported documents, and reach the terminal only through :func:`inert` (and, where Rich
markup is rendered, :func:`plain_markup`).

* Control characters (C0 but tab and, where allowed, newline; DEL; C1, which some terminals read
  as ESC-sequences) are shown as visible escapes (``\\x1b``), so a name cannot set a window title,
  write the clipboard (OSC 52), clear the screen or hide text.
* Text longer than ``limit`` is cut with a marker saying how much was left out, so wrapping a
  100 MB event message costs as much as wrapping ``limit`` characters. Everything is linear in the
  input's length (one ``str.translate`` over at most ``limit`` characters).
"""

from __future__ import annotations

NAME_LIMIT = 200  # run, sweep, model and dataset names, config values in tables
MESSAGE_LIMIT = 2000  # events and errors

_CONTROLS = [c for c in range(0x20) if c not in (0x09, 0x0A)] + [0x7F] + list(range(0x80, 0xA0))
_ESCAPES = {c: f"\\x{c:02x}" for c in _CONTROLS}
_ESCAPES_ONE_LINE = {**_ESCAPES, 0x0A: "\\n"}


def inert(value: object, *, limit: int = NAME_LIMIT, newlines: bool = False) -> str:
    """``value`` as text that does nothing to a terminal: controls escaped visibly, cut at ``limit``."""
    text = "" if value is None else str(value)
    cut = len(text) - limit
    if cut > 0:
        text = text[:limit]
    text = text.translate(_ESCAPES if newlines else _ESCAPES_ONE_LINE)
    if cut > 0:
        text += f"… [{cut:,} more characters]"
    return text


def plain_markup(value: object, *, limit: int = NAME_LIMIT, newlines: bool = False) -> str:
    """:func:`inert`, then Rich markup escaped: for stored text inside a Rich markup string."""
    from rich.markup import escape

    return escape(inert(value, limit=limit, newlines=newlines))

