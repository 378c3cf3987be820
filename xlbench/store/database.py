"""Engines and migrations: the only place that knows which database is behind the store.

SQLite gets WAL, a busy timeout and foreign keys on every connection (several worker processes
and a polling TUI share the file). Any other SQLAlchemy URL (PostgreSQL for a team) is used as is.
Migrations in ``db/migrations`` are applied on open; ``create_all`` is for tests only.
"""

from __future__ import annotations

import os
import sqlite3
import time
from importlib import resources
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, create_engine

from xlbench.errors import StoreError, one_line

SQLITE_PRAGMAS = ("busy_timeout=5000", "synchronous=NORMAL", "foreign_keys=ON")
WAL_SWITCH_SECONDS = 30.0


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    for pragma in SQLITE_PRAGMAS:
        cur.execute(f"PRAGMA {pragma}")
    _switch_to_wal(cur)
    cur.close()


def _sqlite_read_only_pragmas(dbapi_conn, _record) -> None:
    dbapi_conn.execute("PRAGMA query_only=ON")


def read_only_sqlite(path: Path) -> bool:
    """An existing SQLite file this process cannot write (or whose folder it cannot write, where
    SQLite keeps its -wal and -shm files): read-only media, another user's workspace."""
    return path.exists() and not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK))


def _switch_to_wal(cur) -> None:
    # WAL is a property of the file, set once by whichever process gets there first. SQLite does
    # not call the busy handler for a journal-mode change, so two processes opening a new file at
    # the same moment (the ranks of a torchrun job) see "database is locked" at once: retry.
    deadline = time.monotonic() + WAL_SWITCH_SECONDS
    delay = 0.01
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


def _sqlite_manual_transactions(dbapi_conn, _record) -> None:
    # For migrations only: pysqlite's own transaction handling skips BEGIN before DDL, so a
    # failed upgrade would leave half its tables behind. (Everyday sessions keep pysqlite's
    # handling, which begins a write transaction at the first write and so waits on the busy
    # timeout, instead of failing a read transaction that tries to become a writer.)
    dbapi_conn.isolation_level = None


def _sqlite_begin_immediate(conn) -> None:
    # IMMEDIATE takes the write lock up front: two processes migrating at once queue up
    # instead of both creating the same table.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def is_read_only(engine: Engine) -> bool:
    return engine.url.query.get("immutable") == "1"


def make_engine(url: str, *, for_migration: bool = False) -> Engine:
    from xlbench.store.secrets import redact_url

    try:
        parsed = make_url(url)
    except Exception:
        raise StoreError(f"not a database URL: {redact_url(url)!r} (e.g. sqlite:///db/xlbench.sqlite or "
                         "postgresql+psycopg://...)") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.host or not parsed.database:
            raise StoreError(f"{redact_url(url)!r}: a SQLite URL names a file after three slashes, "
                             "e.g. sqlite:///db/xlbench.sqlite or sqlite:////abs/path.sqlite")
        path = Path(parsed.database)
        if parsed.database != ":memory:" and read_only_sqlite(path):
            # immutable: no locks, no -wal/-shm files; the schema must already be current
            engine = create_engine(f"sqlite:///file:{path.resolve()}?mode=ro&immutable=1&uri=true",
                                   connect_args={"check_same_thread": False})
            event.listen(engine, "connect", _sqlite_read_only_pragmas)
            return engine
        if parsed.database != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        if for_migration:
            event.listen(engine, "connect", _sqlite_manual_transactions)
            event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    try:
        return create_engine(url, pool_pre_ping=True)
    except Exception as exc:
        raise StoreError(f"cannot use database {parsed.render_as_string(hide_password=True)}: {exc}") from None


def migrations_dir() -> Path:
    return Path(str(resources.files("xlbench.migrations")))


def _alembic_config(engine: Engine | None = None):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    if engine is not None:
        cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision, atomically (a no-op when it is already there).

    On SQLite the upgrade runs on its own connection in one ``BEGIN IMMEDIATE`` transaction
    (DDL included), with foreign keys off (a batch "move and copy" of a referenced table would
    otherwise trip them) and checked before commit.
    """
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    head = head_revision()
    try:
        if current_revision(engine) == head:
            return
        if is_read_only(engine):
            raise StoreError(f"{engine.url.database}: the database is read-only here and needs a schema upgrade "
                             "(open it once where it can be written)")
        sqlite = engine.dialect.name == "sqlite"
        target = make_engine(engine.url.render_as_string(hide_password=False), for_migration=True) if sqlite else engine
        try:
            with target.connect() as conn:
                if sqlite:  # a pragma outside any transaction, on the driver connection itself
                    conn.connection.dbapi_connection.execute("PRAGMA foreign_keys=OFF")
                with conn.begin():
                    if MigrationContext.configure(conn).get_current_revision() != head:
                        cfg = _alembic_config(engine)
                        cfg.attributes["connection"] = conn
                        command.upgrade(cfg, "head")
                    if sqlite and conn.exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
                        raise StoreError("the migration left rows that break a foreign key; nothing was changed")
        finally:
            if target is not engine:
                target.dispose()
    except StoreError:
        raise
    except Exception as exc:
        raise StoreError(f"cannot open or migrate the database {engine.url.render_as_string(hide_password=True)}: "
                         f"{one_line(exc)}") from exc


def open_engine(url: str, *, migrate_schema: bool = True) -> Engine:
    engine = make_engine(url)
    if migrate_schema:
        migrate(engine)
    return engine


def session(engine: Engine) -> Session:
    """A short-lived session; objects stay readable after commit (no lazy reloads across threads)."""
    return Session(engine, expire_on_commit=False)
