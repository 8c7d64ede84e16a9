"""``/api/v1/payments``: payment intents and refunds for partner back ends (OAuth, DPoP).

* ``POST /api/v1/payments/intents`` (scope ``payments:create``, ``Idempotency-Key`` header): with a
  customer's token the intent is the customer's to confirm; with a client-credentials token it is
  bound to whoever signs in to confirm it.
* ``GET /api/v1/payments/intents/<id>`` (``payments:read``): the client's own intents only.
* ``POST /api/v1/payments/intents/<id>/cancel`` (``payments:create``).
* ``POST /api/v1/payments/intents/<id>/refunds`` (``refunds:create``, ``Idempotency-Key``).

Bodies are JSON objects; refusals are RFC 9457 problems naming the field (``errors``).
"""

from __future__ import annotations

import json
from typing import Any

from canopy_sdk.errors import PaymentError
from flask import Blueprint, current_app, jsonify, request

from .. import db
from ..events import note_emitted
from ..identity.csrf import exempt
from ..oauth.resource import current_grant, require_token
from ..problems import Problem
from . import idempotency, intents

bp = Blueprint("payments_api", __name__, url_prefix="/api/v1/payments")
MAX_BODY = 16 * 1024


def payment_problem(error: PaymentError) -> Problem:
    """A refused payment operation as an RFC 9457 problem naming the field at fault."""
    extra = {"errors": {error.field: [str(error)]}} if error.field else {}
    return Problem(error.status, error.title, str(error), **extra)


def _body(allowed: set[str], required: set[str]) -> dict[str, Any]:
    if request.mimetype != "application/json":
        raise Problem(415, "Unsupported media type", "Send the body as application/json.")
    if (request.content_length or 0) > MAX_BODY:
        raise Problem(413, "Body too large", f"The body must be at most {MAX_BODY} bytes.")
    raw = request.get_data(cache=False)
    if len(raw) > MAX_BODY:
        raise Problem(413, "Body too large", f"The body must be at most {MAX_BODY} bytes.")
    try:
        data = json.loads(raw or b"null")
    except (ValueError, RecursionError) as exc:
        raise Problem(400, "Malformed JSON", f"The body is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(data, dict):
        raise Problem(422, "Invalid request", "The body must be a JSON object.", errors={"_schema": ["must be an object"]})
    problems = {name: ["Unknown field."] for name in sorted(set(data) - allowed)[:20]}
    problems.update({name: ["Missing data for required field."] for name in sorted(required - set(data))})
    if problems:
        raise Problem(422, "Invalid request", "The request has invalid fields; see 'errors'.", errors=problems)
    return data


def _key() -> str:
    values = request.headers.getlist("Idempotency-Key")
    if len(values) != 1:
        raise Problem(400, "Idempotency-Key required",
                      "Send exactly one Idempotency-Key header (1-255 printable ASCII characters) with this request.",
                      errors={"Idempotency-Key": ["required, once"]})
    return idempotency.check_key(values[0])


def _caller() -> str:
    return f"client:{current_grant().client_id}"


def _answer(status: int, body: dict[str, Any]):
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/intents")
@exempt  # authenticated by the DPoP-bound token, never by a cookie
@require_token("payments:create")
def create_intent():
    """Create a payment intent (idempotent per key)."""
    key = _key()
    data = _body({"amount", "currency", "description", "metadata"}, {"amount", "currency", "description"})
    grant = current_grant()
    asked = intents.IntentRequest.check(data["amount"], data["currency"], data["description"], data.get("metadata"),
                                           current_app.extensions["canopy.payments.currencies"])
    session = db.session()

    def run():
        intent = intents.create(session, plugin_id=grant.client_id, request=asked, customer_id=grant.customer_id,
                                actor=f"client:{grant.client_id}")
        return 201, intents.view(intent).to_wire()

    params = {**asked.params(), "customer": grant.customer_id}
    return _answer(*idempotency.once(session, _caller(), key, "create_intent", params, run))


@bp.get("/intents/<intent_id>")
@require_token("payments:read")
def get_intent(intent_id: str):
    """The client's intent as it stands."""
    intent = intents.find(db.session(), current_grant().client_id, intent_id)
    return _answer(200, intents.view(intent).to_wire())


@bp.post("/intents/<intent_id>/cancel")
@exempt  # authenticated by the DPoP-bound token, never by a cookie
@require_token("payments:create")
def cancel_intent(intent_id: str):
    """Withdraw an intent that waits for confirmation."""
    intent = intents.cancel(db.session(), current_grant().client_id, intent_id)
    note_emitted()
    return _answer(200, intents.view(intent).to_wire())


@bp.post("/intents/<intent_id>/refunds")
@exempt  # authenticated by the DPoP-bound token, never by a cookie
@require_token("refunds:create")
def refund_intent(intent_id: str):
    """Refund part or all of a succeeded intent (idempotent per key)."""
    key = _key()
    data = _body({"amount", "reason"}, {"amount"})
    session = db.session()
    client = current_grant().client_id

    def run():
        return 201, intents.refund_view(intents.refund(session, client, intent_id, data["amount"], data.get("reason", ""))).to_wire()

    answer = idempotency.once(session, _caller(), key, "refund", {"intent": intent_id, **data}, run)
    note_emitted()
    return _answer(*answer)
