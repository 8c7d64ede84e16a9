"""PKCE (RFC 7636), ``S256`` only as the FAPI 2.0 profile requires.

``plain`` is refused (it protects nothing once the request leaks), and so is a request
without a method: RFC 7636 would default to ``plain``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from .errors import InvalidGrant, InvalidRequest

METHOD = "S256"
#: RFC 7636 §4.1: 43–128 characters of the unreserved set.
VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}\Z")
#: BASE64URL(SHA-256(verifier)) without padding is always 43 characters.
CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}\Z")


def s256(verifier: str) -> str:
    """The ``S256`` challenge of ``verifier``."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def check_challenge(challenge: object, method: object) -> None:
    """Refuse a missing, malformed or non-``S256`` challenge of an authorization request."""
    if not challenge:
        raise InvalidRequest("code_challenge is required (PKCE with S256)")
    if not isinstance(challenge, str) or not CHALLENGE.match(challenge):
        raise InvalidRequest("code_challenge must be 43 base64url characters: BASE64URL(SHA256(code_verifier))")
    if not method:
        raise InvalidRequest("code_challenge_method is required and must be S256")
    if method != METHOD:
        raise InvalidRequest(f"code_challenge_method {str(method)[:20]!r} is not supported; use S256")


def verify(verifier: object, challenge: str) -> None:
    """Check the token request's ``code_verifier`` against the stored challenge."""
    if not verifier:
        raise InvalidRequest("code_verifier is required")
    if not isinstance(verifier, str) or not VERIFIER.match(verifier):
        raise InvalidRequest("code_verifier must be 43-128 characters of A-Z a-z 0-9 - . _ ~")
    if not hmac.compare_digest(s256(verifier), challenge):
        raise InvalidGrant("code_verifier does not match the code_challenge")
