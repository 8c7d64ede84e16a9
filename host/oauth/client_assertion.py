"""``private_key_jwt`` client authentication (RFC 7523 §2.2 and §3, OpenID Connect Core §9,
as the FAPI 2.0 profile tightens it).

The client signs a short-lived JWT with a key from the JWKS it registered: ``iss`` and
``sub`` are its client id, ``aud`` is this server's issuer identifier, ``exp`` is within
:data:`MAX_LIFETIME` seconds, and ``jti`` is never seen twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from joserfc.jwk import Key

from . import jose
from .errors import InvalidClient
from .replay import ReplayCache

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: The longest an assertion may live, from now to its ``exp``, in seconds.
MAX_LIFETIME = 300
LEEWAY = 5
MAX_JTI = 128


@dataclass(frozen=True, slots=True)
class ClientAssertion:
    """A verified assertion."""

    client_id: str
    jti: str
    exp: int
    kid: str | None


def read_client_id(form: Mapping[str, Any]) -> str:
    """The client id a token-endpoint-style form claims, from its assertion's (unverified)
    ``sub``, checked against ``client_id`` when both are sent. Refuses forms without a
    ``private_key_jwt`` assertion."""
    if form.get("client_assertion_type") != ASSERTION_TYPE or not form.get("client_assertion"):
        raise InvalidClient(
            "authenticate with private_key_jwt: send client_assertion_type="
            f"{ASSERTION_TYPE} and a signed client_assertion"
        )
    if form.get("client_secret"):
        raise InvalidClient("client secrets are not accepted; use private_key_jwt")
    try:
        _, claims = jose.split(form["client_assertion"])
    except jose.JoseProblem as exc:
        raise InvalidClient(f"the client assertion is not acceptable: {exc}") from None
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise InvalidClient("the client assertion needs sub, the client id")
    claimed = form.get("client_id")
    if claimed is not None and claimed != subject:
        raise InvalidClient("client_id does not match the client assertion's sub")
    return subject


def _keys_for(jwks: Mapping[str, Any], kid: object, alg: str) -> list[Key]:
    keys = []
    for item in jwks.get("keys", []) if isinstance(jwks, Mapping) else []:
        if kid is not None and (not isinstance(item, dict) or item.get("kid") != kid):
            continue
        if isinstance(item, dict) and item.get("use") not in (None, "sig"):
            continue
        if isinstance(item, dict) and item.get("alg") not in (None, alg):
            continue
        try:
            key = jose.public_key(item)
        except jose.JoseProblem:
            continue
        if jose.fits(key, alg):
            keys.append(key)
    return keys


def verify_client_assertion(
    assertion: str,
    *,
    client_id: str,
    jwks: Mapping[str, Any],
    issuer: str,
    replay: ReplayCache,
    now: int,
) -> ClientAssertion:
    """Verify ``assertion`` as ``client_id``'s authentication with the keys of ``jwks``.

    Raises :class:`InvalidClient` with the reason: the description names the check that
    failed but never echoes the key or the assertion.
    """
    try:
        header, claims = jose.split(assertion)
    except jose.JoseProblem as exc:
        raise InvalidClient(f"the client assertion is not acceptable: {exc}") from None
    alg = header["alg"]
    if {"jwk", "jku", "x5u", "x5c"} & set(header):
        raise InvalidClient("the client assertion must be verified with the registered JWKS; remove jwk/jku/x5u/x5c")
    candidates = _keys_for(jwks, header.get("kid"), alg)
    if not candidates:
        raise InvalidClient(f"no registered key of the client fits kid {str(header.get('kid'))[:64]!r} and alg {alg}")
    if not any(jose.verify(assertion, key, alg) for key in candidates):
        raise InvalidClient("the client assertion's signature does not verify with the registered keys")

    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise InvalidClient("iss and sub of the client assertion must both be the client id")
    aud = claims.get("aud")
    if not (aud == issuer or aud == [issuer]):
        raise InvalidClient(f"aud of the client assertion must be the issuer identifier {issuer}")
    exp = claims.get("exp")
    if not jose.is_number(exp):
        raise InvalidClient("the client assertion needs exp")
    if exp <= now - LEEWAY:
        raise InvalidClient("the client assertion has expired")
    if exp > now + MAX_LIFETIME:
        raise InvalidClient(f"the client assertion lives too long: exp must be within {MAX_LIFETIME} seconds")
    for name in ("iat", "nbf"):
        value = claims.get(name)
        if value is not None and (not jose.is_number(value) or value > now + LEEWAY):
            raise InvalidClient(f"{name} of the client assertion must be a time that is not in the future")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI:
        raise InvalidClient(f"the client assertion needs a jti of 1-{MAX_JTI} characters")
    if not replay.first_use(f"assertion:{client_id}:{jti}", int(exp) + LEEWAY + 1):
        raise InvalidClient("this client assertion was used before; sign a new one (new jti) for each request")
    return ClientAssertion(client_id=client_id, jti=jti, exp=int(exp), kid=header.get("kid"))
