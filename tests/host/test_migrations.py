"""Alembic migrations: up and down on the test backend, and the models match them."""

from __future__ import annotations


import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from host.db import engine_for
from host.migrations import alembic_config, downgrade, models_metadata, upgrade

pytestmark = pytest.mark.db


@pytest.fixture
def fresh_engine(fresh_database_url):
    """An engine on an empty database (no tables) of the test backend."""
    engine = engine_for(fresh_database_url)
    yield engine
    engine.dispose()


def model_tables() -> set[str]:
    return {table.name for table in models_metadata().sorted_tables}


def current_revision(engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def differences(engine) -> list:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "compare_server_default": True})
        return compare_metadata(context, models_metadata())


def test_there_is_one_head():
    script = ScriptDirectory.from_config(alembic_config(None))  # type: ignore[arg-type]
    assert len(script.get_heads()) == 1


def test_upgrade_downgrade_upgrade(fresh_engine):
    head = ScriptDirectory.from_config(alembic_config(fresh_engine)).get_current_head()
    assert not model_tables() & set(inspect(fresh_engine).get_table_names())

    upgrade(fresh_engine)
    assert model_tables() <= set(inspect(fresh_engine).get_table_names())
    assert current_revision(fresh_engine) == head

    downgrade(fresh_engine, "base")
    assert not model_tables() & set(inspect(fresh_engine).get_table_names())
    assert current_revision(fresh_engine) is None

    upgrade(fresh_engine)
    assert model_tables() <= set(inspect(fresh_engine).get_table_names())
    assert current_revision(fresh_engine) == head
    assert differences(fresh_engine) == []


def test_every_revision_steps_up_and_down(fresh_engine):
    script = ScriptDirectory.from_config(alembic_config(fresh_engine))
    revisions = [r.revision for r in reversed(list(script.walk_revisions()))]  # base → head
    for revision in revisions:
        upgrade(fresh_engine, revision)
        assert current_revision(fresh_engine) == revision
    for revision in reversed(revisions):
        downgrade(fresh_engine, "-1")
        assert current_revision(fresh_engine) == script.get_revision(revision).down_revision
    upgrade(fresh_engine)
    assert current_revision(fresh_engine) == script.get_current_head()


def test_the_models_match_the_migrations(database_url):
    engine = engine_for(database_url)
    try:
        assert model_tables() <= set(inspect(engine).get_table_names())
        assert differences(engine) == []
    finally:
        engine.dispose()


def test_a_model_change_without_a_migration_is_noticed(database_url):
    from sqlalchemy import Column, Integer, MetaData, Table

    engine = engine_for(database_url)
    extra = MetaData()
    for table in models_metadata().sorted_tables:
        table.to_metadata(extra)
    Table("unmigrated", extra, Column("id", Integer, primary_key=True))
    try:
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), extra)
    finally:
        engine.dispose()
    assert [entry[0] for entry in diff] == ["add_table"]
    assert diff[0][1].name == "unmigrated"
