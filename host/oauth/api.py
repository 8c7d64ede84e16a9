"""``/api/v1`` routes of the OAuth package: the customer's profile as a token allows
(``GET /api/v1/me``) and a client's own registration (``PUT /api/v1/clients/<id>``)."""

from __future__ import annotations

import json

from flask import Blueprint, jsonify, request

from .. import db
from ..problems import Problem, validation_problem
from ..runtime.context import PROFILE_FIELDS
from .clients import CLIENT_MANAGE, ClientRegistrationError, active_client, update_client
from .resource import current_grant, require_token
from .web import audit_later

bp = Blueprint("oauth_api", __name__, url_prefix="/api/v1")


@bp.get("/me")
@require_token(*PROFILE_FIELDS, any_scope=True)
def me():
    """The customer behind the token: their pairwise ``sub`` and the profile fields the token's scopes allow."""
    grant = current_grant()
    if grant.customer_id is None:
        raise Problem(403, "No customer", "This token was issued without a customer (client credentials).")
    if grant.profile is None:
        raise Problem(404, "No such customer", "The customer of this token no longer exists.")
    body = {"sub": grant.subject, **grant.profile}
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response


def _json_object() -> dict:
    if request.mimetype != "application/json":
        raise Problem(415, "Unsupported media type", "Send the body as application/json.")
    try:
        data = json.loads(request.get_data(cache=False) or b"null")
    except (ValueError, RecursionError) as exc:
        raise Problem(400, "Malformed JSON", f"The body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise validation_problem({"_schema": ["The body must be a JSON object."]})
    unknown = sorted(set(data) - {"jwks", "redirect_uris"})
    if unknown:
        raise validation_problem({name: ["Unknown field."] for name in unknown})
    return data


@bp.put("/clients/<plugin_id>")
@require_token(CLIENT_MANAGE)
def put_client(plugin_id: str):
    """Replace the calling client's own JWKS and/or redirect URIs."""
    grant = current_grant()
    if grant.client_id != plugin_id or grant.customer_id is not None:
        raise Problem(403, "Not your client", "A client manages only its own registration, with a client credentials token.")
    client = active_client(db.session(), plugin_id)
    if client is None:
        raise Problem(404, "No such client", f"No client {plugin_id[:64]!r} is registered.")
    data = _json_object()
    try:
        update_client(db.session(), client, jwks=data.get("jwks"), redirect_uris=data.get("redirect_uris"))
    except ClientRegistrationError as exc:
        raise validation_problem(exc.errors) from None
    audit_later("oauth.client_updated", outcome="success", actor=plugin_id, plugin_id=plugin_id,
                detail={"changed": sorted(data), "jwks_size": len(client.jwks["keys"]), "redirect_uris": len(client.redirect_uris)})
    return jsonify({"client_id": client.client_id, "redirect_uris": client.redirect_uris, "jwks": client.jwks,
                    "grant_types": client.grant_types})
