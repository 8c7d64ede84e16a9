"""The database: one engine and session factory per app, SQLAlchemy 2 typed models.

Request code uses :func:`session` (one per request, closed at teardown). Code that
runs outside a request (plugin storage in worker threads, CLI commands) opens its
own with ``get_database(app).transaction()``.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from flask import Flask, current_app, g
from sqlalchemy import DateTime, MetaData, create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base class of every host model."""

    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None:
            if value.tzinfo is None:
                raise ValueError("naive datetimes are not stored; use UTC")
            value = value.astimezone(timezone.utc)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


def utcnow() -> datetime:
    """The current time in UTC."""
    return datetime.now(timezone.utc)


#: Seconds to wait for a PostgreSQL connection before the database counts as unreachable.
CONNECT_TIMEOUT_SECONDS = 5


def engine_for(url: str) -> Engine:
    """Create an engine for ``url``: psycopg 3 for PostgreSQL, WAL mode for SQLite."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": 15})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    # libpq waits as long as the kernel does for a server that drops packets; fail within
    # seconds instead, so requests answer 503 rather than hang (the URL may set its own).
    connect_args = {} if "connect_timeout" in parsed.query else {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    return create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=10, connect_args=connect_args)


def _sqlite_begin(conn) -> None:
    # pysqlite's own transaction handling is off (see _sqlite_pragmas); a write
    # transaction takes SQLite's write lock at BEGIN, so a read-then-write never
    # fails half way with "database is locked".
    immediate = conn.get_execution_options().get("sqlite_immediate")
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None  # transactions are begun by the "begin" listener
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Database:
    """The app's engine and session factory."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = engine_for(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @contextmanager
    def transaction(self, *, write: bool = False) -> Iterator[Session]:
        """Open a session, commit when the block succeeds, roll back when it raises.

        ``write=True`` takes SQLite's write lock at the start (no effect on PostgreSQL).
        """
        with self.sessions() as session:
            with session.begin():
                if write:
                    session.connection(execution_options={"sqlite_immediate": True})
                yield session

    def dispose(self) -> None:
        """Close every pooled connection (after fork, and at shutdown)."""
        self.engine.dispose()


def init_app(app: Flask) -> Database:
    """Attach a :class:`Database` to ``app`` and close request sessions at teardown."""
    database = Database(app.config["DATABASE_URL"])
    app.extensions["canopy.db"] = database

    @app.teardown_appcontext
    def _close_session(exc: BaseException | None) -> None:
        current = g.pop("db_session", None)
        if current is not None:
            current.close()

    return database


def get_database(app: Flask | None = None) -> Database:
    """Return the app's :class:`Database`."""
    return (app or current_app).extensions["canopy.db"]


def session() -> Session:
    """Return the current request's session (created on first use)."""
    if "db_session" not in g:
        g.db_session = get_database().sessions()
    return g.db_session


def session_if_made() -> Session | None:
    """The current request's session if :func:`session` made one, else None."""
    return g.get("db_session")
