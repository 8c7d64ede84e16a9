"""People and sign-in: customers, staff, partner developers; sessions, CSRF, step-up."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Session policy, CSRF checks and the sign-in pages."""
    from . import csrf, sessions
    from .views import bp

    sessions.configure(app)
    csrf.init_app(app)
    app.register_blueprint(bp)
