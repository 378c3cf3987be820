"""Database passwords stay out of argv, screens, stored records and exports.

A URL such as ``postgresql+psycopg://user:pw@host/db`` reaches xlbench through ``--db``,
``$XLBENCH_DB`` or a file named by ``$XLBENCH_DB_FILE`` (readable by its owner only). It is passed
to worker processes through their environment, never their argv, and everything shown or written
uses :func:`redact_url` (``user:***@host``).
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from xlbench.errors import StoreError

# scheme://user:password@  — the password part of any URL-looking word
_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@]*:)([^\s@/]*)(@)")


def redact_url(url: str) -> str:
    """The URL with its password (if any) replaced by ``***``."""
    return _URL_PASSWORD.sub(r"\1***\3", url)


def redact_argv(argv: list[str]) -> list[str]:
    return [redact_url(str(a)) for a in argv]


def redact_env(env: dict) -> dict:
    """A run's env record with passwords removed from its argv (and any other URL-valued string)."""
    out = {}
    for key, value in env.items():
        if isinstance(value, str):
            out[key] = redact_url(value)
        elif isinstance(value, list):
            out[key] = [redact_url(v) if isinstance(v, str) else v for v in value]
        elif isinstance(value, dict):
            out[key] = redact_env(value)
        else:
            out[key] = value
    return out


def url_from_file(path: str | os.PathLike) -> str:
    """A database URL read from a file that only its owner can read (like ~/.pgpass)."""
    p = Path(path).expanduser()
    try:
        mode = p.stat().st_mode
        text = p.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise StoreError(f"{p}: cannot read the database URL file ({exc.strerror})") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise StoreError(f"{p}: the database URL file is readable by others (mode {stat.S_IMODE(mode):o}); chmod 600 it")
    if not text:
        raise StoreError(f"{p}: the database URL file is empty")
    return text.splitlines()[0].strip()


def db_url(explicit: str | None = None) -> str:
    """The database URL: ``--db`` beats ``$XLBENCH_DB`` beats a file named by ``$XLBENCH_DB_FILE``
    (owner-only, :func:`url_from_file`) beats the workspace SQLite file."""
    import os

    from xlbench.paths import default_db_url

    if explicit or os.environ.get("XLBENCH_DB"):
        return explicit or os.environ["XLBENCH_DB"]
    if os.environ.get("XLBENCH_DB_FILE"):
        return url_from_file(os.environ["XLBENCH_DB_FILE"])
    return default_db_url()
