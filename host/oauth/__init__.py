"""OAuth 2.0 at FAPI 2.0 grade: the authorization server (Authlib), PAR, DPoP,
``private_key_jwt``, the consent ledger, the scope catalog, the resource server
decorator and mini-program login.

:func:`init_app` wires it into the app: the authorization server, its blueprints, and
the consent ledger as the runtime's consent source.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Create the authorization server, register the OAuth routes and make the consent
    ledger the plugin runtime's consent source (call after the runtime exists)."""
    from ..runtime import get_runtime
    from . import server
    from .api import bp as api_bp
    from .authorisations import bp as authorisations_bp
    from .authorize import bp as authorize_bp
    from .consent import LedgerConsentSource
    from .endpoints import bp as endpoints_bp
    from .miniprogram import bp as miniprogram_bp

    server.init_app(app)
    runtime = get_runtime(app)
    runtime.consents = LedgerConsentSource(runtime.database)
    for blueprint in (authorize_bp, endpoints_bp, api_bp, authorisations_bp, miniprogram_bp):
        app.register_blueprint(blueprint)
