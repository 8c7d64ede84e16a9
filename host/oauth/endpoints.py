"""The token, introspection and revocation endpoints, the server's metadata (RFC 8414)
and its JWKS."""

from __future__ import annotations

from authlib.oauth2.base import OAuth2Error
from flask import Blueprint, g, jsonify

from ..identity.csrf import exempt
from ..runtime import get_runtime
from .clients import CLIENT_MANAGE
from .jose import ALGORITHMS
from .server import AUTH_METHOD, get_server
from .web import check_dpop, issuer, transactional

bp = Blueprint("oauth_endpoints", __name__)


@bp.post("/oauth/token")
@exempt
@transactional
def token():
    """The token endpoint: every token is DPoP-bound, so a DPoP proof is required."""
    server = get_server()
    try:
        g.oauth_dpop = check_dpop(nonces=True)
    except OAuth2Error as error:
        return server.handle_error_response(None, error)
    return server.create_token_response()


@bp.post("/oauth/introspect")
@exempt
@transactional
def introspect():
    """RFC 7662 token introspection, for the client the token was issued to."""
    return get_server().create_endpoint_response("introspection")


@bp.post("/oauth/revoke")
@exempt
@transactional
def revoke():
    """RFC 7009 token revocation."""
    return get_server().create_endpoint_response("revocation")


def metadata() -> dict:
    """The authorization server metadata (RFC 8414)."""
    base = issuer()
    catalog = get_runtime().catalog
    return {
        "issuer": base,
        "authorization_endpoint": f"{base}/oauth/authorize",
        "token_endpoint": f"{base}/oauth/token",
        "pushed_authorization_request_endpoint": f"{base}/oauth/par",
        "require_pushed_authorization_requests": True,
        "introspection_endpoint": f"{base}/oauth/introspect",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "jwks_uri": f"{base}/oauth/jwks",
        "scopes_supported": sorted([d.name for d in catalog] + [CLIENT_MANAGE]),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": [AUTH_METHOD],
        "token_endpoint_auth_signing_alg_values_supported": list(ALGORITHMS),
        "introspection_endpoint_auth_methods_supported": [AUTH_METHOD],
        "introspection_endpoint_auth_signing_alg_values_supported": list(ALGORITHMS),
        "revocation_endpoint_auth_methods_supported": [AUTH_METHOD],
        "revocation_endpoint_auth_signing_alg_values_supported": list(ALGORITHMS),
        "dpop_signing_alg_values_supported": list(ALGORITHMS),
        "authorization_response_iss_parameter_supported": True,
        "service_documentation": f"{base}/api/v1/docs",
    }


@bp.get("/.well-known/oauth-authorization-server")
def server_metadata():
    """RFC 8414 metadata."""
    response = jsonify(metadata())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/oauth/jwks")
def jwks():
    """The host's public signing keys. It signs nothing yet (tokens are opaque and
    introspected), so the set is honestly empty."""
    return jsonify({"keys": []})
