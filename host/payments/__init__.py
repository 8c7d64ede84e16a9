"""Payments: the double-entry ledger, payment intents, refunds, idempotency, the host's
confirmation page and the risk centre. Only this package moves money (docs/payments.md)."""

from __future__ import annotations

from flask import Flask

from ..config import ConfigError


def currencies(config) -> frozenset[str]:
    """The currencies intents may be created in (``PAYMENTS_CURRENCIES``, comma-separated ISO 4217 codes)."""
    from .money import MoneyError, parse_currency

    raw = config.get("PAYMENTS_CURRENCIES") or ""
    try:
        codes = frozenset(parse_currency(code.strip()) for code in str(raw).split(",") if code.strip())
    except MoneyError as exc:
        raise ConfigError(f"PAYMENTS_CURRENCIES: {exc}") from None
    if not codes:
        raise ConfigError("PAYMENTS_CURRENCIES must name at least one ISO 4217 currency, e.g. CNY")
    return codes


def init_app(app: Flask) -> None:
    """Give every ``ctx`` its ``payments``, register the payment routes, deliver events after requests."""
    from ..db import get_database
    from ..events import init_app as init_events
    from ..runtime import get_runtime
    from .api import bp as api_bp
    from .confirm import bp as confirm_bp
    from .context import HostPayments

    accepted = currencies(app.config)
    app.extensions["canopy.payments.currencies"] = accepted
    runtime = get_runtime(app)
    database = get_database(app)

    def payments_for(ctx, customer_id):
        return HostPayments(database=database, plugin_id=ctx.plugin_id, customer_id=customer_id,
                            branch_code=ctx.branch.code, require=ctx.require, currencies=accepted,
                            on_events=runtime.note_events)

    runtime.payments_factory = payments_for

    from canopy_sdk.errors import PaymentError

    from ..problems import respond
    from .api import payment_problem

    @app.errorhandler(PaymentError)
    def _refused(error: PaymentError):
        return respond(payment_problem(error))

    init_events(app)
    for blueprint in (api_bp, confirm_bp):
        app.register_blueprint(blueprint)
