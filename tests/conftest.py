"""Fixtures shared by the whole suite.

The database backend is chosen by ``CANOPY_TEST_BACKEND``:

* ``sqlite`` (default): each test gets a fresh copy of a migrated SQLite file.
* ``postgresql``: each test worker gets its own database on
  ``CANOPY_TEST_DATABASE_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``),
  migrated once; tables are emptied after each test. When PostgreSQL cannot be
  reached the tests that need it are skipped with the reason — except under
  ``CI=true``, where that is an error.

Tests that use the ``database_url`` fixture (directly or through ``app``) are marked
``db`` automatically, so ``make test`` can run exactly those again on PostgreSQL.
"""

from __future__ import annotations

import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ROOT / "plugins"
SECRET = "test-secret-key-for-the-suite-only-0123456789"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


def backend() -> str:
    return os.environ.get("CANOPY_TEST_BACKEND", "sqlite")


def pytest_collection_modifyitems(config, items):
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "database_url" in fixtures:
            item.add_marker(pytest.mark.db)
        if "postgres_only" in fixtures:
            item.add_marker(pytest.mark.postgres)


def unavailable(message: str):
    """Skip a test whose service is missing, saying why; under ``CI=true`` fail instead:
    CI has every service, so a missing one is a broken run, never a quiet skip."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true: these tests must run)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(name="unavailable")
def unavailable_fixture():
    """``unavailable(message)``: skip (or, under CI=true, fail) for a missing service."""
    return unavailable


def _postgres_or_skip() -> str:
    from host.db import engine_for

    url = os.environ.get("CANOPY_TEST_DATABASE_URL", DEFAULT_PG)
    try:
        engine = engine_for(url)
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        unavailable(f"PostgreSQL is not reachable at {make_url(url).render_as_string(hide_password=True)}: {exc.__class__.__name__}")
    return url


@contextmanager
def _new_database(prefix: str):
    """Create an empty PostgreSQL database of this test process; yield its URL; drop it.

    The name carries the process id and xdist worker, so runs side by side (two checkouts,
    two terminals) never share one."""
    from host.db import engine_for

    base = _postgres_or_skip()
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"{prefix}_{os.getpid()}_{worker}_{uuid.uuid4().hex[:8]}".replace("-", "_")
    admin = engine_for(base).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_url():
    """A freshly created, migrated PostgreSQL database for this test worker."""
    from host.db import engine_for
    from host.migrations import upgrade

    with _new_database("canopy_test") as url:
        engine = engine_for(url)
        upgrade(engine)
        engine.dispose()
        yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A migrated SQLite file that each test copies."""
    from host.db import engine_for
    from host.migrations import upgrade

    path = tmp_path_factory.mktemp("template") / "canopy.db"
    engine = engine_for(f"sqlite:///{path}")
    upgrade(engine)
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture
def database_url(request, tmp_path) -> str:
    """The URL of an empty, migrated database for this test."""
    if backend() == "postgresql":
        url = request.getfixturevalue("postgres_url")
        yield url
        _truncate(url)
    else:
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path / "canopy.db"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"


def _truncate(url: str) -> None:
    from host.db import engine_for
    from host.migrations import models_metadata

    engine = engine_for(url)
    names = ", ".join(f'"{table.name}"' for table in models_metadata().sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


TEST_REDIS_URL = os.environ.get("CANOPY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def redis_url() -> str:
    """The test Redis (database 15 unless ``CANOPY_TEST_REDIS_URL`` says otherwise)."""
    import redis

    try:
        client = redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
        client.ping()
        client.close()
    except redis.RedisError as exc:
        unavailable(f"Redis is not reachable at {TEST_REDIS_URL}: {exc.__class__.__name__}")
    return TEST_REDIS_URL


@pytest.fixture
def fresh_database_url(tmp_path):
    """An empty database (no tables) on the test backend, dropped afterwards."""
    if backend() != "postgresql":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    with _new_database("canopy_fresh") as url:
        yield url


@pytest.fixture
def postgres_only():
    """Skip unless this run is on PostgreSQL (the PostgreSQL pass runs these tests)."""
    if backend() != "postgresql":
        pytest.skip("needs PostgreSQL; runs in the PostgreSQL pass (CANOPY_TEST_BACKEND=postgresql)")


def make_config(database_url: str, tmp_path: Path, **overrides) -> dict:
    """The configuration the suite's apps run with."""
    config = {
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "PLUGIN_PATHS": [str(PLUGINS)],
        "LOAD_ENTRY_POINTS": False,
        # Partner plugins stay refused in the suite's apps unless a test turns the sandbox on
        # (tests/sandbox does: SANDBOX="auto", the default outside the suite).
        "SANDBOX": "off",
        "SECRET_KEY": SECRET,
        "TESTING": True,
        # Real Argon2id, at a cost that keeps the suite quick.
        "ARGON2_TIME_COST": 1,
        "ARGON2_MEMORY_KIB": 8192,
        "ARGON2_PARALLELISM": 1,
    }
    config.update(overrides)
    return config


@pytest.fixture
def app_factory(database_url, tmp_path):
    """Build apps on this test's database; each is shut down at the end."""
    from host import create_app
    from host.db import get_database
    from host.runtime import get_runtime

    apps = []

    def build(**overrides):
        app = create_app(make_config(database_url, tmp_path, **overrides))
        apps.append(app)
        return app

    yield build
    for app in apps:
        get_runtime(app).invoker.shutdown()
        get_database(app).dispose()


@pytest.fixture
def app(app_factory):
    """An app with the bundled plugins, registry synced, not seeded."""
    return app_factory()


def seed_demo(app):
    """Register and approve the plugins found, then seed the demo data; return ``app``."""
    from host.db import get_database
    from host.demo import seed
    from host.runtime import get_runtime
    from host.runtime.registry import sync_registry

    with app.app_context():
        with get_database(app).transaction(write=True) as session:
            sync_registry(session, get_runtime(app), approve=True)
        with get_database(app).transaction(write=True) as session:
            seed(session)
    return app


@pytest.fixture(name="seed_demo")
def seed_demo_fixture():
    """``seed_demo(app)``: register, approve and seed the demo on another app of this test."""
    return seed_demo


@pytest.fixture
def demo_app(app):
    """An app seeded with the demo branches, installations and people."""
    return seed_demo(app)


@pytest.fixture
def client(demo_app):
    """A test client of the demo app."""
    return demo_app.test_client()
