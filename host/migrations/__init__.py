"""Alembic migrations of the host's database (run with ``canopy db upgrade``)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

from ..db import Base


def alembic_config(engine: Engine) -> Config:
    """An Alembic configuration bound to ``engine``; no alembic.ini needed."""
    config = Config()
    config.set_main_option("script_location", "host:migrations")
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision``."""
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Take the database back to ``revision``."""
    command.downgrade(alembic_config(engine), revision)


def models_metadata():
    """The metadata of every model (importing each domain's models)."""
    from ..audit import models as _audit  # noqa: F401
    from ..events import models as _events  # noqa: F401
    from ..identity import models as _identity  # noqa: F401
    from ..oauth import models as _oauth  # noqa: F401
    from ..payments import models as _payments  # noqa: F401
    from ..payments.risk import models as _risk  # noqa: F401
    from ..publishing import models as _publishing  # noqa: F401
    from ..runtime import models as _runtime  # noqa: F401
    from ..storefront import models as _storefront  # noqa: F401

    return Base.metadata
