"""The PostgreSQL server the benchmarks use, and the fresh databases they make on it and drop.

``CANOPY_BENCH_POSTGRES_URL`` names a maintenance database on the server (default: the local
server's ``postgres`` database over TCP, trust auth); each benchmark makes databases of its own
next to it, named after the benchmark and its process, and drops them at the end.
"""

from __future__ import annotations

import os

from . import common

POSTGRES = os.environ.get("CANOPY_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def server_version() -> tuple[str | None, str]:
    """The PostgreSQL server's version, or None and why it cannot be used."""
    try:
        from sqlalchemy import text

        from host.db import engine_for

        engine = engine_for(POSTGRES)
        with engine.connect() as connection:
            version = connection.execute(text("SHOW server_version")).scalar()
        engine.dispose()
        return f"PostgreSQL {version}", ""
    except Exception as exc:  # noqa: BLE001 - any failure means: measure without it, and say so
        return None, f"{exc.__class__.__name__}"


def admin(statement: str) -> None:
    """Run one statement on the maintenance database, outside a transaction (``CREATE DATABASE``…)."""
    from sqlalchemy import text

    from host.db import engine_for

    engine = engine_for(POSTGRES).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(statement))
    finally:
        engine.dispose()


def url_of(database: str) -> str:
    """The URL of ``database`` on the server (password kept, for the host's settings)."""
    from sqlalchemy.engine import make_url

    return make_url(POSTGRES).set(database=database).render_as_string(hide_password=False)


def fresh_database(name: str) -> str:
    """Make the database ``name`` anew (dropping one left by an interrupted run); return its URL."""
    admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin(f'CREATE DATABASE "{name}"')
    return url_of(name)


def drop_database(name: str) -> None:
    """Drop ``name`` (its connections closed by force); a failure is printed, never raised, so
    the rest of the clean-up still runs."""
    try:
        admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except Exception as exc:  # noqa: BLE001 - report, and go on cleaning up
        common.note(f"warning: could not drop the database {name}: {exc.__class__.__name__}")
