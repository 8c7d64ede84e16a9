"""JOSE helpers shared by DPoP proofs and client assertions.

Only asymmetric algorithms of the FAPI 2.0 profile are accepted: PS256, ES256 and EdDSA
(Ed25519). ``none`` and every HMAC algorithm are refused before any key is looked at.
Keys are read with joserfc; signatures are checked with ``cryptography`` directly on the
compact JWS's signing input (RFC 7515 §5.2), as RFC 7518 §3.4–3.5 and RFC 8037 §3.1 define
them: this runs on every API request, and it is a third of the cost of a full re-parse.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, JWKRegistry, Key, OKPKey, RSAKey
from joserfc.util import json_b64decode

#: Signing algorithms accepted from clients.
ALGORITHMS = ("PS256", "ES256", "EdDSA")
#: JWK members that only a private key has; a public key carrying one is refused.
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
#: Header members that would change how the token is read; never needed here.
REFUSED_HEADERS = frozenset({"crit", "b64"})
MAX_TOKEN_LENGTH = 8192


class JoseProblem(ValueError):
    """A JWT that cannot be accepted; the message says why."""


_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
_ES256 = ec.ECDSA(hashes.SHA256())
_PS256 = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)


def split(token: object) -> tuple[dict[str, Any], dict[str, Any]]:
    """The unverified header and claims of a compact JWS, refusing anything malformed.

    The ``alg`` is checked here, before any key is chosen: ``none`` and HS* never get further.
    """
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise JoseProblem("not a JWT")
    parts = token.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        raise JoseProblem("not a compact JWS (header.payload.signature)")
    try:
        header = json_b64decode(parts[0].encode("ascii"))
        claims = json_b64decode(parts[1].encode("ascii"))
    except (TypeError, ValueError, UnicodeError, RecursionError, binascii.Error):
        raise JoseProblem("the header or payload is not base64url-encoded JSON") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise JoseProblem("the header and payload must be JSON objects")
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        shown = alg if isinstance(alg, str) else type(alg).__name__
        raise JoseProblem(f"alg {str(shown)[:20]!r} is not allowed; use one of {', '.join(ALGORITHMS)}")
    refused = REFUSED_HEADERS & set(header)
    if refused:
        raise JoseProblem(f"header member {sorted(refused)[0]!r} is not supported")
    return header, claims


def public_key(value: object) -> Key:
    """Import a public JWK (a dict), refusing private members and unusable keys."""
    if not isinstance(value, dict):
        raise JoseProblem("the key must be a JSON object (a JWK)")
    private = PRIVATE_MEMBERS & set(value)
    if private:
        raise JoseProblem("the key holds private or symmetric key material; send only the public key")
    if value.get("kty") not in ("RSA", "EC", "OKP"):
        raise JoseProblem("kty must be RSA, EC or OKP")
    try:
        key = JWKRegistry.import_key(value)
    except (JoseError, ValueError, TypeError) as exc:
        raise JoseProblem(f"the key cannot be read: {exc}") from None
    if key.is_private:
        raise JoseProblem("the key is a private key; send only the public key")
    return key


def fits(key: Key, alg: str) -> bool:
    """Whether ``key`` is the right kind of key for ``alg``."""
    if alg == "PS256":
        return isinstance(key, RSAKey) and key.raw_value.key_size >= 2048
    if alg == "ES256":
        return isinstance(key, ECKey) and key.curve_name == "P-256"
    if alg == "EdDSA":
        return isinstance(key, OKPKey) and key.curve_name == "Ed25519"
    return False


def _signature(segment: str) -> bytes | None:
    """The bytes of a base64url segment without padding, or None if it is not one."""
    if len(segment) % 4 == 1 or not _BASE64URL.fullmatch(segment):
        return None
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def verify(token: str, key: Key, alg: str) -> bool:
    """Whether the compact JWS ``token``'s signature verifies with ``key`` under ``alg``
    (``token`` as :func:`split` accepted it)."""
    if not fits(key, alg):
        return False
    signing_input, _, encoded = token.rpartition(".")
    signature = _signature(encoded)
    if signature is None:
        return False
    data = signing_input.encode("ascii")
    public = key.raw_value
    try:
        if alg == "ES256":
            if len(signature) != 64:
                return False
            r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            public.verify(encode_dss_signature(r, s), data, _ES256)
        elif alg == "PS256":
            public.verify(signature, data, _PS256, hashes.SHA256())
        else:  # EdDSA with an Ed25519 key (fits() said so)
            public.verify(signature, data)
    except (InvalidSignature, ValueError, UnicodeError):
        return False
    return True


def is_number(value: object) -> bool:
    """Whether ``value`` is a JSON number usable as a NumericDate (not a bool, not NaN)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value and abs(value) < 1e11
