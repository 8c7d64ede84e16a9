"""Alembic environment: runs against the engine ``host.migrations.alembic_config`` binds."""

from __future__ import annotations

from alembic import context

from host.migrations import models_metadata

config = context.config
engine = config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=models_metadata(),
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
