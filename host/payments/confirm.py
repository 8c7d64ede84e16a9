"""The host's confirmation sheet: ``/pay/<intent_id>``. Only here does money move for a payment.

GET shows the merchant, amount, description and paying account; POST takes the payment PIN
(the identity package's step-up, with its lockout), runs the risk centre, then — in **one**
database transaction — locks the intent, posts the transfer and moves the intent to
``succeeded`` with its outbox event. A plugin can never confirm: this page belongs to the host
(``frame-ancestors 'self'``: only the host's shell may show it, as a sheet; no mini-program can frame it), needs the customer's own session and
their PIN. Confirming twice never pays twice: the second finds the intent already succeeded.
"""

from __future__ import annotations

import hashlib
import secrets

from canopy_sdk.errors import UnknownIntent
from flask import Blueprint, current_app, render_template, request
from flask_babel import gettext, ngettext

from .. import audit, db
from ..events import note_emitted
from ..i18n import pick, request_locale
from ..identity.services import verify_payment_pin
from ..identity.sessions import current_customer, login_customer_required
from ..oauth.web import begin_write
from ..problems import Problem
from ..runtime.models import PluginRecord
from . import confirmation, intents, ledger
from .models import AccountKind, IntentState
from .money import format_amount

bp = Blueprint("payments_confirm", __name__, template_folder="templates")
DEVICE_COOKIE = "canopy_device"


def _device() -> tuple[str, str | None]:
    """A digest of this browser's device cookie, and a new cookie value when it had none."""
    value = request.cookies.get(DEVICE_COOKIE, "")
    fresh = None
    if not (16 <= len(value) <= 64 and value.isalnum()):
        value = fresh = secrets.token_hex(16)
    return hashlib.sha256(value.encode()).hexdigest(), fresh


def _intent_for(customer_id: str, intent_id: str, *, lock: bool = False):
    session = db.session()
    try:
        intent = intents.find(session, None, intent_id, lock=lock)
    except UnknownIntent:
        raise Problem(404, "No such payment", "This payment does not exist.") from None
    if intent.customer_id not in (None, customer_id):
        raise Problem(404, "No such payment", "This payment does not exist.")  # another customer's: never told apart
    return intent


def _page(intent, customer_id: str, *, status: int = 200, message: str | None = None, challenge: str | None = None):
    session = db.session()
    locale = request_locale()
    plugin = session.get(PluginRecord, intent.plugin_id)
    account = ledger.find_account(session, AccountKind.CUSTOMER, customer_id, intent.currency)
    html = render_template(
        "payments/confirm.html", locale=locale, intent=intent, message=message, challenge=challenge,
        merchant=pick(locale, plugin.name) if plugin else intent.plugin_id,
        publisher=f"{plugin.publisher_kind} {plugin.publisher_id}" if plugin else "",
        amount=format_amount(intent.amount, intent.currency),
        balance=format_amount(account.balance if account else 0, intent.currency), state=intent.state,
    )
    response = current_app.response_class(html, status=status, mimetype="text/html")
    # Framed only by the host's own pages (the mini-program shell shows it as a sheet above the
    # plugin's frame); a mini-program's origin can never frame it (docs/bridge.md).
    response.headers["Content-Security-Policy"] = "frame-ancestors 'self'"
    response.headers["Cache-Control"] = "no-store"
    digest, fresh = _device()
    if fresh:
        response.set_cookie(DEVICE_COOKIE, fresh, max_age=400 * 86400, secure=current_app.config["SESSION_COOKIE_SECURE"],
                            httponly=True, samesite="Lax")
    return response


@bp.get("/pay/<intent_id>")
@login_customer_required
def show(intent_id: str):
    """The confirmation sheet."""
    customer_id = current_customer().id
    intent = _intent_for(customer_id, intent_id)
    if intents.is_due(intent):  # its time ran out: record the expiry (a write, so take the lock first)
        begin_write()
        intent = _intent_for(customer_id, intent_id, lock=True)
        if intents.expire_if_due(db.session(), intent):
            db.session().commit()
            note_emitted()
    return _page(intent, customer_id)


@bp.post("/pay/<intent_id>")
@login_customer_required
def confirm(intent_id: str):
    """Check the PIN, then pay (:func:`confirmation.confirm`) — all or nothing."""
    customer = current_customer()
    customer_id, home_branch = customer.id, customer.branch_code
    request_locale()  # chosen now, while the customer is loaded: the commits below expire it
    intent = _intent_for(customer_id, intent_id)
    if intent.state != IntentState.REQUIRES_CONFIRMATION:
        return _page(intent, customer_id, status=409 if intent.state != IntentState.SUCCEEDED else 200)
    db.session().rollback()  # the PIN check has a transaction of its own (its lockout must stay)

    pin = request.form.get("pin", "")
    check = verify_payment_pin(customer_id, pin if isinstance(pin, str) and len(pin) <= 32 else "")
    if not check.ok:
        message = (gettext("Payments are locked for 30 minutes after too many wrong PINs.") if check.locked else
                   ngettext("Wrong payment PIN; %(num)d attempt left.", "Wrong payment PIN; %(num)d attempts left.",
                            check.attempts_left))
        return _page(_intent_for(customer_id, intent_id), customer_id, status=403 if check.locked else 400, message=message)

    begin_write()
    session = db.session()
    intent = _intent_for(customer_id, intent_id, lock=True)  # the intent first, then accounts in id order
    device, _ = _device()
    try:
        done = confirmation.confirm(session, intent, customer_id=customer_id, home_branch=home_branch, device=device,
                                    acknowledged=request.form.get("acknowledge") == "yes")
    except ledger.InsufficientFunds:
        session.rollback()
        return _page(_intent_for(customer_id, intent_id), customer_id, status=402,
                     message=gettext("Your balance is not enough for this payment."))
    detail = {"intent": intent.id, "amount": intent.amount, "currency": intent.currency}
    if done.outcome == confirmation.DENIED:  # audited in the payment's own transaction: both or neither
        audit.record("payment.denied", outcome=audit.DENIED, actor=customer_id, plugin_id=intent.plugin_id,
                     detail={"intent": intent.id, "rule": done.rule}, session=session)
    elif done.outcome == confirmation.PAID:
        audit.record("payment.confirmed", outcome=audit.SUCCESS, actor=customer_id, plugin_id=intent.plugin_id,
                     detail=detail, session=session)
    session.commit()  # a denial, a challenge's verdicts and an expiry are kept too
    note_emitted()
    if done.outcome == confirmation.CLOSED:
        return _page(intent, customer_id, status=200 if intent.state == IntentState.SUCCEEDED else 409)
    if done.outcome == confirmation.CHALLENGED:
        return _page(intent, customer_id, status=200, challenge=done.reason)
    if done.outcome == confirmation.DENIED:
        return _page(intent, customer_id, status=403, message=done.reason)
    return _page(intent, customer_id)
