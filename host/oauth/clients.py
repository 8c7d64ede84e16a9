"""Plugins as OAuth clients: registration, key and redirect URI checks, allowed scopes.

A client's id is its plugin id. It authenticates only with ``private_key_jwt``: it
registers public keys (a JWKS), never a secret. Head office registers a client with
``canopy oauth register-client``; the client then rotates its own keys and redirect URIs
with ``PUT /api/v1/clients/<plugin_id>`` (a ``client:manage`` token of its own).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from ..publishing.releases import suspended as plugin_suspended
from ..runtime.models import PluginRecord
from ..runtime.registry import UnknownPlugin, get_version
from . import clock, jose
from .models import OAuthClient

GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
#: The scope with which a client manages its own registration (client credentials only).
CLIENT_MANAGE = "client:manage"
MAX_KEYS = 10
MAX_REDIRECT_URIS = 10
MAX_URI_LENGTH = 500
#: Largest JWKS accepted, as compact JSON (ten RSA-4096 keys take about 8 KiB).
MAX_JWKS_BYTES = 32 * 1024
#: Largest RSA modulus accepted, in bits.
MAX_RSA_BITS = 8192
LOOPBACK = ("127.0.0.1", "::1", "localhost")
#: The characters of a URI (RFC 3986: unreserved, reserved and '%'); others must be percent-encoded.
URI_CHARACTERS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")


class ClientRegistrationError(ValueError):
    """A registration value is wrong; ``errors`` maps each field to its messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{field}: {' '.join(messages)}" for field, messages in errors.items()))


def check_jwks(value: Any) -> dict[str, Any]:
    """Return ``value`` as a JWKS of public signing keys, each with a unique ``kid``."""
    if not isinstance(value, dict) or not isinstance(value.get("keys"), list):
        raise ClientRegistrationError({"jwks": ['must be a JWK Set: {"keys": [...]}']})
    keys = value["keys"]
    try:
        size = len(json.dumps(value, separators=(",", ":")).encode("utf-8"))
    except (TypeError, ValueError, RecursionError):
        raise ClientRegistrationError({"jwks": ["must be plain JSON"]}) from None
    if size > MAX_JWKS_BYTES:
        raise ClientRegistrationError({"jwks": [f"must be at most {MAX_JWKS_BYTES} bytes of JSON"]})
    if not 1 <= len(keys) <= MAX_KEYS:
        raise ClientRegistrationError({"jwks": [f"must hold 1 to {MAX_KEYS} keys"]})
    checked, errors, kids = [], {}, set()
    for index, item in enumerate(keys):
        field = f"jwks.keys[{index}]"
        try:
            key = jose.public_key(item)
        except jose.JoseProblem as exc:
            errors[field] = [str(exc)]
            continue
        kid = item.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > 64:
            errors[field] = ["needs a kid of 1-64 characters"]
        elif kid in kids:
            errors[field] = [f"kid {kid!r} is used twice"]
        elif item.get("use") not in (None, "sig"):
            errors[field] = ['use must be "sig"']
        elif item.get("alg") is not None and item.get("alg") not in jose.ALGORITHMS:
            errors[field] = [f"alg must be one of {', '.join(jose.ALGORITHMS)}"]
        elif not any(jose.fits(key, alg) for alg in jose.ALGORITHMS):
            errors[field] = ["must be an RSA key of 2048 bits or more, an EC P-256 key or an Ed25519 key"]
        elif item.get("alg") is not None and not jose.fits(key, item["alg"]):
            errors[field] = [f"alg {item['alg']} does not fit this kind of key"]
        elif item["kty"] == "RSA" and key.raw_value.key_size > MAX_RSA_BITS:
            errors[field] = [f"RSA keys may have at most {MAX_RSA_BITS} bits"]
        else:
            kids.add(kid)
            public = key.as_dict(private=False)
            public.update({k: item[k] for k in ("kid", "use", "alg") if k in item})
            checked.append(public)
    if errors:
        raise ClientRegistrationError(errors)
    return {"keys": checked}


def check_redirect_uris(values: Any, *, loopback_http: bool = True) -> list[str]:
    """Return ``values`` as a list of exact redirect URIs: https, or http on loopback for
    development (only when ``loopback_http``); no fragment, no user info, no wildcard."""
    if not isinstance(values, list) or not 1 <= len(values) <= MAX_REDIRECT_URIS:
        raise ClientRegistrationError({"redirect_uris": [f"must be a list of 1 to {MAX_REDIRECT_URIS} URIs"]})
    errors = {}
    for index, uri in enumerate(values):
        field = f"redirect_uris[{index}]"
        problem = _redirect_uri_problem(uri, loopback_http)
        if problem:
            errors[field] = [problem]
    if errors:
        raise ClientRegistrationError(errors)
    return list(dict.fromkeys(values))


def _redirect_uri_problem(uri: Any, loopback_http: bool = True) -> str | None:
    if not isinstance(uri, str) or not uri or len(uri) > MAX_URI_LENGTH or not uri.isprintable() or " " in uri:
        return f"must be a URI of at most {MAX_URI_LENGTH} printable characters"
    if not URI_CHARACTERS.fullmatch(uri):
        return "must hold only URI characters (RFC 3986); percent-encode any other"
    try:
        parts = urlsplit(uri)
        parts.port
    except ValueError:
        return "is not a valid URI"
    if parts.fragment or "#" in uri:
        return "must not have a fragment"
    if parts.username or parts.password:
        return "must not hold user information"
    if "*" in uri:
        return "must be exact: no wildcards"
    if not parts.hostname:
        return "must be an absolute URI with a host"
    if parts.scheme == "https" or (loopback_http and parts.scheme == "http" and parts.hostname in LOOPBACK):
        return None
    if not loopback_http:
        return "must use https"
    return "must use https (http only for loopback addresses in development)"


def check_grant_types(values: Any) -> list[str]:
    """Return ``values`` as a list of supported grant types."""
    if not isinstance(values, list) or not values or any(v not in GRANT_TYPES for v in values):
        raise ClientRegistrationError({"grant_types": [f"must be a list of: {', '.join(GRANT_TYPES)}"]})
    return list(dict.fromkeys(values))


def register_client(
    session: Session, plugin_id: str, *, jwks: Any, redirect_uris: Any, grant_types: Any = None
) -> OAuthClient:
    """Create or replace the OAuth client of a registered plugin (head office's action)."""
    if session.get(PluginRecord, plugin_id) is None:
        raise ClientRegistrationError({"plugin_id": [f"no plugin {plugin_id[:64]!r} is registered"]})
    values = {
        "jwks": check_jwks(jwks),
        "redirect_uris": check_redirect_uris(redirect_uris),
        "grant_types": check_grant_types(list(grant_types) if grant_types is not None else list(GRANT_TYPES)),
    }
    client = session.get(OAuthClient, plugin_id)
    if client is None:
        client = OAuthClient(client_id=plugin_id, **values)
        session.add(client)
    else:
        for name, value in values.items():
            setattr(client, name, value)
        client.updated_at = clock.now()
        client.disabled_at = None
    session.flush()
    return client


def update_client(
    session: Session, client: OAuthClient, *, jwks: Any = None, redirect_uris: Any = None, loopback_http: bool = True
) -> OAuthClient:
    """Replace a client's keys and/or redirect URIs (what a client may change itself).
    ``loopback_http=False`` refuses ``http://localhost`` redirect URIs (outside development)."""
    errors: dict[str, list[str]] = {}
    changes: dict[str, Any] = {}
    uris = lambda value: check_redirect_uris(value, loopback_http=loopback_http)  # noqa: E731
    for name, value, check in (("jwks", jwks, check_jwks), ("redirect_uris", redirect_uris, uris)):
        if value is None:
            continue
        try:
            changes[name] = check(value)
        except ClientRegistrationError as exc:
            errors.update(exc.errors)
    if errors:
        raise ClientRegistrationError(errors)
    if not changes:
        raise ClientRegistrationError({"_schema": ["send jwks, redirect_uris or both"]})
    for name, value in changes.items():
        setattr(client, name, value)
    client.updated_at = clock.now()
    session.flush()
    return client


def active_client(session: Session, client_id: str) -> OAuthClient | None:
    """The client with ``client_id`` unless it is unknown or disabled, or head office has
    suspended its plugin (the kill switch, docs/publishing.md): the one check of every token,
    authorization request and client authentication."""
    if not isinstance(client_id, str) or not client_id or len(client_id) > 64:
        return None
    client = session.get(OAuthClient, client_id)
    if client is None or client.disabled_at is not None or plugin_suspended(session, client_id):
        return None
    return client


@dataclass(frozen=True)
class ClientScopes:
    """What a client may ask for: scopes its manifest requests and head office approved."""

    approved: frozenset[str]

    def for_customer(self) -> frozenset[str]:
        """Scopes an authorization request may carry."""
        return self.approved

    def for_client_credentials(self, catalog) -> frozenset[str]:
        """Scopes a token without a customer may carry: none that needs a customer's consent."""
        return frozenset(s for s in self.approved if s in catalog and not catalog.needs_consent(s)) | {CLIENT_MANAGE}


def client_scopes(session: Session, client_id: str) -> ClientScopes:
    """The scopes of the plugin's newest registered version that head office approved."""
    try:
        version = get_version(session, client_id)
    except UnknownPlugin:
        return ClientScopes(frozenset())
    if version.state != "active":
        return ClientScopes(frozenset())
    requested = set(version.manifest.get("scopes", []))
    return ClientScopes(frozenset(s for s in version.approved_scopes if s in requested))
