"""Engine setup (SQLite with WAL, or PostgreSQL), migrations and the one transaction helper."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, create_engine

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str, *, create_under: Path | None = None) -> Engine:
    """An engine for url; SQLite gets WAL, a busy timeout and write-locking transactions.

    A missing folder of the SQLite file is made only when it lies under create_under (the
    config's folder, where validation allowed it): never anywhere else on the file system.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        if parsed.drivername == "postgresql":  # the URL object: str() would mask the password
            parsed = parsed.set(drivername="postgresql+psycopg")
        engine = create_engine(parsed, pool_pre_ping=True)
        side = create_engine(parsed, pool_size=1, max_overflow=4, pool_pre_ping=True)
        _COUNTERS[engine] = side
        event.listen(engine, "engine_disposed", lambda _engine: side.dispose())
        return engine
    if create_under is not None and parsed.database and parsed.database != ":memory:":
        folder = Path(parsed.database).resolve().parent
        if folder.is_relative_to(create_under.resolve()):
            folder.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, see _on_begin
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Take the write lock up front: two processes never deadlock upgrading a read lock.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


_COUNTERS: WeakKeyDictionary[Engine, Engine] = WeakKeyDictionary()


def counter_engine(engine: Engine) -> Engine | None:
    """The side pool a PostgreSQL engine draws counter values from, each in a transaction of
    its own (``store.queries.next_counter``); None: draw them in the caller's transaction.

    A pool of its own, never the caller's: a caller holding its last connection while it
    waited for another one would wait forever.
    """
    return _COUNTERS.get(engine)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision."""
    from alembic import command
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One unit of work: commits on success, rolls back on any exception."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        yield session
