"""Canopy, the host. :func:`create_app` is the only way in."""

from __future__ import annotations

from typing import Any, Mapping

from flask import Flask

from . import db, i18n, identity, oauth, observability, payments, problems
from .config import load_config, plugin_paths, require_secret
from .publishing import health as release_health
from .publishing import prereview_runs
from .publishing.services import package_store
from .runtime import PluginRuntime


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the host app: configuration, database, plugin runtime, routes and commands.

    ``config`` overrides everything else (tests pass ``DATABASE_URL``, ``PLUGIN_PATHS``…).
    Plugins are loaded and registered here, and registration is closed before this returns.
    """
    settings = load_config(config)
    app = Flask(__name__, instance_path=settings["INSTANCE_PATH"])
    app.config.update(settings)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    if settings.get("SECRET_KEY"):
        require_secret(settings)  # refuse a short one now, not at the first request
        app.secret_key = settings["SECRET_KEY"]
    if app.config["TRUSTED_PROXIES"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = int(app.config["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    database = db.init_app(app)
    i18n.init_app(app)
    problems.init_app(app)
    observability.init_app(app)
    identity.init_app(app)

    runtime = PluginRuntime(app.config, database)
    runtime.package_root = package_store(app)  # published versions, served once released
    release_health.init_app(app, runtime)  # gray versions measured, rolled back automatically
    prereview_runs.mode(app.config)  # where pre-reviews run: a wrong value stops the start, naming it
    runtime.load(plugin_paths(app.config), entry_points=bool(app.config["LOAD_ENTRY_POINTS"]))
    runtime.start()
    app.extensions["canopy.runtime"] = runtime
    oauth.init_app(app)  # the authorization server, its routes, the consent ledger as runtime.consents
    payments.init_app(app)  # ctx.payments, the payments API and confirmation page, event delivery

    from .api import bp as api_bp
    from .health import bp as health_bp
    from .metrics import bp as metrics_bp
    from .payments.risk.views import bp as risk_bp
    from .storefront.miniprogram import bp as miniprogram_bp
    from .storefront.views import bp as storefront_bp

    for blueprint in (health_bp, metrics_bp, api_bp, storefront_bp, miniprogram_bp, risk_bp):
        app.register_blueprint(blueprint)

    from .search import api as search_api, views as search_views

    app.register_blueprint(search_views.bp)
    app.register_blueprint(search_api.bp)

    from .console.partners import bp as console_partners_bp
    from .console.publishing import bp as console_publishing_bp
    from .console.releases import bp as console_releases_bp
    from .console.staff import bp as console_staff_bp

    app.register_blueprint(console_partners_bp)
    app.register_blueprint(console_staff_bp)
    app.register_blueprint(console_publishing_bp)
    app.register_blueprint(console_releases_bp)

    from .cli import register_commands

    register_commands(app)
    return app
