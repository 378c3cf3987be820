"""Reading line-based data files with every problem named by file and line (JSONL, TSV, qrels).

Plain or gzip-compressed (by the ``.gz`` suffix); bytes are decoded line by line so a non-UTF-8
line is reported where it is, and an optional ``digest`` sees every raw byte (a content version
computed in the same pass).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

from xlbench.errors import DataError


def text_lines(path: Path, digest=None) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of a UTF-8 text file; a line that is not UTF-8 is named, not a traceback."""
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        fh = opener(path, "rb")
    except OSError as exc:
        raise DataError(path, "", f"cannot read ({exc.strerror or exc})") from None
    try:
        with fh:
            for lineno, raw in enumerate(fh, start=1):
                if digest is not None:
                    digest.update(raw)
                try:
                    yield lineno, raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise DataError(path, f"line {lineno} column {exc.start + 1}",
                                    f"not UTF-8 text (byte 0x{raw[exc.start]:02x})") from None
    except (OSError, EOFError) as exc:  # a truncated or corrupt gzip stream
        raise DataError(path, "", f"cannot read ({exc})") from None


def json_lines(path: Path, digest=None) -> Iterator[tuple[int, str, object]]:
    """``(line number, line, value)`` for each non-blank line of a JSON-lines file."""
    for lineno, line in text_lines(path, digest):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(path, f"line {lineno} column {exc.colno}", f"invalid JSON ({exc.msg})") from None
        yield lineno, line, value
