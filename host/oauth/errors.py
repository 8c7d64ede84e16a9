"""OAuth errors as small types: each carries its RFC ``error`` code and a description.

They are Authlib :class:`~authlib.oauth2.base.OAuth2Error` subclasses, so an error raised
inside one of Authlib's grants or endpoints becomes the right JSON (or redirect) answer
without translation. Descriptions are made safe for the ``error_description`` character
set of RFC 6749 §5.2 (printable ASCII without ``"`` and ``\\``), so input echoed in a
message can never turn an error into a crash.
"""

from __future__ import annotations

from authlib.oauth2.base import OAuth2Error

_ALLOWED = {chr(c) for c in range(0x20, 0x7F)} - {'"', "\\"}


def safe_description(text: str, limit: int = 300) -> str:
    """``text`` reduced to the characters an ``error_description`` may hold."""
    cleaned = "".join(ch if ch in _ALLOWED else "?" for ch in str(text))
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 3] + "..."


class OAuthError(OAuth2Error):
    """Base of Canopy's OAuth errors."""

    error = "server_error"
    status_code = 400

    def __init__(self, description: str | None = None, *, status_code: int | None = None, **kwargs) -> None:
        super().__init__(
            description=safe_description(description) if description else None, status_code=status_code, **kwargs
        )


class InvalidRequest(OAuthError):
    """A parameter is missing, repeated, malformed or not allowed (RFC 6749 §5.2)."""

    error = "invalid_request"


class InvalidClient(OAuthError):
    """Client authentication failed (RFC 6749 §5.2)."""

    error = "invalid_client"


class InvalidGrant(OAuthError):
    """The code or refresh token is invalid, expired, used, revoked or another client's."""

    error = "invalid_grant"


class InvalidScope(OAuthError):
    """A requested scope is unknown or not allowed for the client."""

    error = "invalid_scope"


class UnauthorizedClient(OAuthError):
    """The client may not use this grant type."""

    error = "unauthorized_client"


class AccessDenied(OAuthError):
    """The customer declined."""

    error = "access_denied"


class InvalidDPoPProof(OAuthError):
    """The DPoP proof is missing or invalid (RFC 9449 §5, §7.1)."""

    error = "invalid_dpop_proof"


class UseDPoPNonce(OAuthError):
    """The server wants a fresh nonce in the DPoP proof (RFC 9449 §8); ``nonce`` is the one to use."""

    error = "use_dpop_nonce"

    def __init__(self, nonce: str, description: str = "Resend the request with the nonce in DPoP-Nonce.") -> None:
        super().__init__(description)
        self.nonce = nonce

    def get_headers(self):
        return super().get_headers() + [("DPoP-Nonce", self.nonce)]


class InvalidToken(OAuthError):
    """The access token is missing, unknown, expired, revoked or not bound to the proof (RFC 6750 §3.1)."""

    error = "invalid_token"
    status_code = 401


class InsufficientScope(OAuthError):
    """The access token lacks a scope the resource needs (RFC 6750 §3.1)."""

    error = "insufficient_scope"
    status_code = 403
