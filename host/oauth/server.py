"""The authorization server: Authlib's, with Canopy's storage, ``private_key_jwt``, PKCE
S256 only, DPoP-bound tokens, ``iss`` in authorization responses and 303 redirects.

Grants: authorization code (PKCE S256, DPoP, codes single use and 60 s), refresh token
(bound to the client, not rotated, as FAPI 2.0 prefers), client credentials (no customer).
No implicit and no password grant is registered, so neither can be used.
"""

from __future__ import annotations

from datetime import timedelta

from authlib.oauth2.rfc6749 import AuthorizationServer, ClientMixin, OAuth2Request, grants
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc9207 import IssuerParameter
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Request
from flask import Flask, Response, current_app, g, json
from flask import request as flask_request
from sqlalchemy import select, update

from .. import db
from ..identity.models import Customer
from ..identity.pairwise import pairwise_subject
from ..config import require_secret
from ..runtime import get_runtime
from . import clock, pkce, tokens
from .client_assertion import read_client_id, verify_client_assertion
from .clients import ClientScopes, active_client, client_scopes
from .consent import effective_scopes
from .errors import InvalidClient, InvalidGrant, InvalidScope
from .models import AuthorizationCode, OAuthClient, OAuthToken, TokenKind
from .web import audit_later, issuer, public_url, replay_cache

AUTH_METHOD = "private_key_jwt"
CODE_SECONDS = 60


class Client(ClientMixin):
    """A registered client as Authlib sees it."""

    def __init__(self, record: OAuthClient, scopes: ClientScopes) -> None:
        self.record = record
        self.client_id = record.client_id
        self.scopes = scopes

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        return None  # redirect_uri is always required (FAPI 2.0)

    def get_allowed_scope(self, scope: str | None) -> str | None:
        requested = set((scope or "").split())
        return " ".join(sorted(requested)) if requested and requested <= self.scopes.for_customer() else None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.record.redirect_uris  # exact match, never a prefix

    def check_client_secret(self, client_secret: str) -> bool:
        return False

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == AUTH_METHOD

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.record.grant_types


def authenticate_private_key_jwt(query_client, request: OAuth2Request) -> Client:
    """Authlib client authentication method ``private_key_jwt`` (see :mod:`.client_assertion`)."""
    form = request.form
    client_id = read_client_id(form)
    client = query_client(client_id)
    if client is None:
        raise InvalidClient("the client is unknown or disabled")
    g.oauth_client_id = client_id
    verify_client_assertion(form["client_assertion"], client_id=client_id, jwks=client.record.jwks, issuer=issuer(),
                            replay=replay_cache(), now=clock.epoch())
    return client


class S256Only(CodeChallenge):
    """Authlib's PKCE extension, required for every client and with ``S256`` only."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        pkce.check_challenge(data.get("code_challenge"), data.get("code_challenge_method"))

    def validate_code_verifier(self, grant, result):
        code = grant.request.authorization_code
        pkce.verify(grant.request.form.get("code_verifier"), code.code_challenge)


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    """Codes stored as digests, single use, at most 60 s, bound to the DPoP key asked for."""

    TOKEN_ENDPOINT_AUTH_METHODS = [AUTH_METHOD]

    def save_authorization_code(self, code: str, request) -> None:
        data = request.payload.data
        now = clock.now()
        db.session().add(AuthorizationCode(
            digest=tokens.digest(code), client_id=request.client.client_id, customer_id=request.user.id,
            branch_code=request.user.branch_code, redirect_uri=data["redirect_uri"], scope=request.scope,
            code_challenge=data["code_challenge"], code_challenge_method=data["code_challenge_method"],
            dpop_jkt=data.get("dpop_jkt"), issued_at=now, expires_at=now + timedelta(seconds=CODE_SECONDS),
        ))
        db.session().flush()

    def query_authorization_code(self, code: str, client: Client):
        session = db.session()
        found = session.scalar(select(AuthorizationCode).where(AuthorizationCode.digest == tokens.digest(code)))
        if found is None or found.client_id != client.client_id:
            return None
        now = clock.now()
        # Single use: mark it used in one statement, so two requests cannot both win.
        won = session.execute(
            update(AuthorizationCode).where(AuthorizationCode.id == found.id, AuthorizationCode.used_at.is_(None))
            .values(used_at=now)
        ).rowcount == 1
        if not won:
            revoked = tokens.revoke_from_code(session, found.id)
            audit_later("oauth.code_reused", outcome="denied", plugin_id=client.client_id, subject=found.customer_id,
                        detail={"revoked": revoked})
            raise InvalidGrant("the authorization code was used before; the tokens issued from it are revoked")
        if found.expires_at <= now:
            raise InvalidGrant("the authorization code has expired; start the authorization again")
        proof = g.get("oauth_dpop")
        if found.dpop_jkt and (proof is None or proof.jkt != found.dpop_jkt):
            raise InvalidGrant("the DPoP key does not match the dpop_jkt of the authorization request")
        return found

    def delete_authorization_code(self, authorization_code) -> None:
        pass  # marked used when it was looked up

    def authenticate_user(self, authorization_code):
        return db.session().get(Customer, authorization_code.customer_id)


class RefreshTokenGrant(grants.RefreshTokenGrant):
    """Refresh tokens are bound to the client (which must authenticate) and not rotated."""

    TOKEN_ENDPOINT_AUTH_METHODS = [AUTH_METHOD]
    INCLUDE_NEW_REFRESH_TOKEN = False

    def authenticate_refresh_token(self, refresh_token: str):
        token = tokens.find(db.session(), refresh_token, TokenKind.REFRESH)
        return token if tokens.is_active(token) else None

    def authenticate_user(self, refresh_token):
        return db.session().get(Customer, refresh_token.customer_id)

    def issue_token(self, user, refresh_token):
        requested = self.request.payload.scope
        scope = requested or refresh_token.get_scope()
        live = effective_scopes(db.session(), get_runtime().catalog, scope.split(), user.id, refresh_token.client_id)
        if not live.scopes:
            raise InvalidGrant("the customer has withdrawn consent for every scope of this grant")
        self.request.refresh_code_id = refresh_token.code_id
        return self.generate_token(user=user, scope=" ".join(sorted(live.scopes)), include_refresh_token=False)

    def revoke_old_credential(self, refresh_token) -> None:
        pass  # no rotation (FAPI 2.0 §5.3.2.1); revoked with the grant, by the customer or by the client


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    """A partner's back end acting for itself: only scopes that need no customer."""

    TOKEN_ENDPOINT_AUTH_METHODS = [AUTH_METHOD]

    def validate_token_request(self):
        super().validate_token_request()
        requested = set((self.request.payload.scope or "").split())
        if not requested:
            raise InvalidScope("name the scopes you need in scope")
        allowed = self.client.scopes.for_client_credentials(get_runtime().catalog)
        if not requested <= allowed:
            extra = ", ".join(sorted(requested - allowed))
            raise InvalidScope(f"not allowed without a customer or not approved for this client: {extra}")


class Introspection(IntrospectionEndpoint):
    """RFC 7662 for the token's own client; ``active`` reflects revocation and withdrawn consent."""

    CLIENT_AUTH_METHODS = [AUTH_METHOD]

    def query_token(self, token_string, token_type_hint):
        return tokens.find(db.session(), token_string)

    def check_permission(self, token, client, request) -> bool:
        return token.client_id == client.client_id

    def introspect_token(self, token: OAuthToken) -> dict:
        live = effective_scopes(db.session(), get_runtime().catalog, token.scopes, token.customer_id, token.client_id)
        if token.customer_id and token.scopes and not live.scopes:
            return {"active": False}
        payload = {
            "active": True, "client_id": token.client_id, "scope": " ".join(sorted(live.scopes)), "iss": issuer(),
            "token_type": {"access": "DPoP", "refresh": "refresh_token", "session": "session"}[token.kind],
            "iat": int(token.issued_at.timestamp()), "exp": int(token.expires_at.timestamp()),
        }
        if token.customer_id:
            payload["sub"] = pairwise_subject(require_secret(current_app.config), token.client_id, token.customer_id)
        if token.jkt:
            payload["cnf"] = {"jkt": token.jkt}
        return payload


class Revocation(RevocationEndpoint):
    """RFC 7009: a client revokes its own access or refresh token."""

    CLIENT_AUTH_METHODS = [AUTH_METHOD]

    def query_token(self, token_string, token_type_hint):
        return tokens.find(db.session(), token_string)

    def authenticate_token(self, request, client):
        self.check_params(request, client)
        token = self.query_token(request.form["token"], request.form.get("token_type_hint"))
        # Another client's token is treated as unknown: nothing to revoke, nothing revealed.
        return token if token is not None and token.check_client(client) else None

    def revoke_token(self, token: OAuthToken, request) -> None:
        tokens.revoke(db.session(), token)


class Issuer(IssuerParameter):
    """RFC 9207: ``iss`` in every authorization response, errors included."""

    def get_issuer(self) -> str:
        return issuer()


class CanopyAuthorizationServer(AuthorizationServer):
    """Authlib's server over Canopy's tables, for the current Flask request."""

    def __init__(self) -> None:
        super().__init__(scopes_supported=None)
        self.register_token_generator("default", self.generate_dpop_token)
        self.register_client_auth_method(AUTH_METHOD, authenticate_private_key_jwt)
        self.register_grant(AuthorizationCodeGrant, [S256Only(required=True)])
        self.register_grant(RefreshTokenGrant)
        self.register_grant(ClientCredentialsGrant)
        self.register_endpoint(Introspection)
        self.register_endpoint(Revocation)
        self.register_extension(Issuer())

    def query_client(self, client_id: str) -> Client | None:
        session = db.session()
        record = active_client(session, client_id)
        return Client(record, client_scopes(session, client_id)) if record is not None else None

    @staticmethod
    def generate_dpop_token(grant_type, client, user=None, scope=None, expires_in=None, include_refresh_token=True):
        """The token response: a DPoP-bound access token and, for a customer's grant, a refresh token."""
        token = {"token_type": "DPoP", "access_token": tokens.new_secret(),
                 "expires_in": int(current_app.config["OAUTH_ACCESS_TOKEN_SECONDS"]), "scope": scope or ""}
        if include_refresh_token and user is not None:
            token["refresh_token"] = tokens.new_secret()
        return token

    def save_token(self, token: dict, request) -> None:
        session = db.session()
        user = request.user
        code = request.authorization_code
        code_id = code.id if code is not None else getattr(request, "refresh_code_id", None)
        proof = g.get("oauth_dpop")
        common = {"client_id": request.client.client_id, "customer_id": user.id if user else None,
                  "branch_code": user.branch_code if user else None, "scope": token["scope"], "code_id": code_id}
        tokens.issue(session, kind=TokenKind.ACCESS, value=token["access_token"], jkt=proof.jkt if proof else None,
                     seconds=token["expires_in"], **common)
        if "refresh_token" in token:
            days = int(current_app.config["OAUTH_REFRESH_TOKEN_DAYS"])
            tokens.issue(session, kind=TokenKind.REFRESH, value=token["refresh_token"], seconds=days * 86400, **common)

    def create_oauth2_request(self, request) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        return PublicFlaskRequest(flask_request)

    def handle_response(self, status_code, payload, headers) -> Response:
        if isinstance(payload, dict):
            payload = json.dumps(payload)
        response = Response(payload, status=status_code, headers=headers)
        if status_code == 302:
            response.status_code = 303  # never let the browser re-send a POST body to the client
        response.headers["Cache-Control"] = "no-store"
        return response

    def handle_error_response(self, request, error):
        audit_later("oauth.error", outcome="failure", plugin_id=g.get("oauth_client_id"),
                    detail={"endpoint": flask_request.path, "error": error.error,
                            "description": (error.description or "")[:200]})
        return super().handle_error_response(request, error)

    def send_signal(self, name, *args, **kwargs) -> None:
        pass


class PublicFlaskRequest(FlaskOAuth2Request):
    """Authlib's Flask request, with the URL the client called (the issuer's origin)."""

    def __init__(self, request) -> None:
        super().__init__(request)
        self.uri = public_url()


class PushedRequest(OAuth2Request):
    """An authorization request rebuilt from pushed parameters (RFC 9126)."""

    def __init__(self, parameters: dict) -> None:
        super().__init__("GET", public_url("/oauth/authorize"), headers={})
        self.payload = BasicOAuth2Payload(dict(parameters))

    @property
    def args(self):
        return self.payload.data

    @property
    def form(self):
        return {}


def init_app(app: Flask) -> CanopyAuthorizationServer:
    """Create the app's authorization server (``app.extensions["canopy.oauth"]``)."""
    seconds = int(app.config["OAUTH_ACCESS_TOKEN_SECONDS"])
    if not 0 < seconds <= 600:
        from ..config import ConfigError

        raise ConfigError("OAUTH_ACCESS_TOKEN_SECONDS must be between 1 and 600")
    server = CanopyAuthorizationServer()
    app.extensions["canopy.oauth"] = server
    return server


def get_server() -> CanopyAuthorizationServer:
    """The app's authorization server."""
    return current_app.extensions["canopy.oauth"]
