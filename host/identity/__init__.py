"""People and sign-in: customers, staff, partner developers; sessions, CSRF, step-up."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Session policy, CSRF checks and the sign-in pages. A wrong ``PIN_KEY`` or
    ``PIN_KEYS_OLD`` stops the start here, not at the first payment."""
    from ..config import pin_key_settings
    from . import csrf, sessions
    from .views import bp

    pin_key_settings(app.config)
    sessions.configure(app)
    csrf.init_app(app)
    app.register_blueprint(bp)
