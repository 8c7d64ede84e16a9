"""The database layer: engines, UTC timestamps, transactions and request sessions."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError, OperationalError, StatementError

from host.db import CONNECT_TIMEOUT_SECONDS, Database, engine_for, get_database, session, utcnow
from host.storefront.models import Branch, Installation


def test_sqlite_engine_uses_wal_with_foreign_keys_on(tmp_path):
    engine = engine_for(f"sqlite:///{tmp_path / 'nested' / 'folder' / 'c.db'}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 15000
    finally:
        engine.dispose()
    assert (tmp_path / "nested" / "folder" / "c.db").is_file()  # the folder was created


def test_the_app_engine_on_the_default_url_is_sqlite_in_wal_mode(tmp_path, monkeypatch):
    from host import create_app

    monkeypatch.delenv("CANOPY_DATABASE_URL", raising=False)
    app = create_app({"INSTANCE_PATH": str(tmp_path / "instance"), "PLUGIN_PATHS": [], "LOAD_ENTRY_POINTS": False})
    database = get_database(app)
    try:
        assert database.dialect == "sqlite"
        assert database.url == f"sqlite:///{(tmp_path / 'instance').resolve() / 'canopy.db'}"
        with database.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        database.dispose()


@pytest.mark.parametrize("url", ["postgresql://u@db.invalid/x", "postgres://u@db.invalid/x"])
def test_postgresql_urls_use_psycopg_3(url):
    engine = engine_for(url)
    assert engine.dialect.name == "postgresql"
    assert engine.dialect.driver == "psycopg"
    engine.dispose()


def connect_parameters(url: str) -> dict:
    """The parameters the engine hands the driver (to a port where nothing listens)."""
    engine = engine_for(url)
    seen: dict = {}
    event.listen(engine, "do_connect", lambda dialect, record, cargs, cparams: seen.update(cparams))
    with pytest.raises(OperationalError):
        engine.connect()
    engine.dispose()
    return seen


def test_postgresql_connections_give_up_instead_of_hanging():
    assert connect_parameters("postgresql://u@127.0.0.1:1/x")["connect_timeout"] == CONNECT_TIMEOUT_SECONDS
    assert connect_parameters("postgresql://u@127.0.0.1:1/x?connect_timeout=2")["connect_timeout"] == "2"


def test_write_transactions_take_the_sqlite_write_lock_at_begin(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'c.db'}")
    seen: list[str] = []
    event.listen(database.engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
    try:
        with database.transaction(write=True) as s:
            s.connection()
        with database.transaction() as s:
            s.connection()
    finally:
        database.dispose()
    begins = [statement for statement in seen if statement.startswith("BEGIN")]
    assert begins == ["BEGIN IMMEDIATE", "BEGIN"]


def test_utcnow_is_aware_utc():
    now = utcnow()
    assert now.tzinfo is not None and now.utcoffset() == timedelta(0)


def test_timestamps_are_stored_in_utc_and_read_back_aware(app):
    database = get_database(app)
    shanghai = timezone(timedelta(hours=8))
    local = datetime(2024, 3, 1, 9, 30, tzinfo=shanghai)
    with database.transaction(write=True) as s:
        s.add(Branch(code="T1", name_zh="测试", name_en="Test", created_at=local))
    with database.transaction() as s:
        stored = s.get(Branch, "T1").created_at
    assert stored == local
    assert stored.utcoffset() == timedelta(0)
    assert (stored.hour, stored.minute) == (1, 30)


def test_naive_timestamps_are_refused(app):
    database = get_database(app)
    with pytest.raises(StatementError, match="naive datetimes"):
        with database.transaction(write=True) as s:
            s.add(Branch(code="T2", name_zh="测试", name_en="Test", created_at=datetime(2024, 3, 1, 9, 30)))
    with database.transaction() as s:
        assert s.get(Branch, "T2") is None


def test_a_transaction_commits_when_the_block_succeeds_and_rolls_back_when_it_raises(app):
    database = get_database(app)
    with database.transaction(write=True) as s:
        s.add(Branch(code="KEEP", name_zh="保留", name_en="Kept"))
    with pytest.raises(RuntimeError):
        with database.transaction(write=True) as s:
            s.add(Branch(code="DROP", name_zh="丢弃", name_en="Dropped"))
            s.flush()
            raise RuntimeError("boom")
    with database.transaction() as s:
        assert s.scalars(select(Branch.code).order_by(Branch.code)).all() == ["KEEP"]


def test_foreign_keys_are_enforced(app):
    with pytest.raises(IntegrityError):
        with get_database(app).transaction(write=True) as s:
            s.add(Installation(branch_code="NOWHERE", plugin_id="wealth.checkup", version="1.0.0"))


def test_a_request_has_one_session_closed_at_teardown(app):
    with app.test_request_context("/"):
        first = session()
        assert session() is first
        first.execute(select(Branch.code)).all()
        assert first.in_transaction()
    assert not first.in_transaction()  # closed at teardown
    with app.test_request_context("/"):
        assert session() is not first
