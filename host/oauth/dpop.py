"""DPoP proof verification (RFC 9449 §4.3) and server nonces (§8).

:func:`verify_proof` checks one ``DPoP`` header for one HTTP request and returns the
proof's key thumbprint (``jkt``), to which tokens are bound (``cnf.jkt``). It is
:func:`check_proof` (everything but the one-time use) followed by :func:`spend`; the
resource server calls the two apart so that spending the ``jti`` and reading the token
cache share one Redis round trip.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence
from urllib.parse import urlsplit, urlunsplit

from . import jose
from .errors import InvalidDPoPProof, UseDPoPNonce
from .replay import ReplayCache

TYP = "dpop+jwt"
#: How old a proof's ``iat`` may be, and how far in the future (clock skew), in seconds.
MAX_AGE = 60
LEEWAY = 5
MAX_JTI = 128
#: A server nonce is good for this window and the one before it.
NONCE_WINDOW = 300
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class DPoPProof:
    """A verified proof."""

    jkt: str  #: the RFC 7638 SHA-256 thumbprint of the proof's public key
    jti: str
    iat: int
    htm: str
    htu: str

    @property
    def replay_key(self) -> str:
        """The key under which this proof's one-time use is recorded."""
        return f"dpop:{self.jkt}:{self.jti}"

    @property
    def replay_until(self) -> int:
        """Until when (epoch seconds) the proof could be accepted, so must stay recorded."""
        return self.iat + MAX_AGE + LEEWAY + 1


def thumbprint(key) -> str:
    """The RFC 7638 SHA-256 thumbprint of a joserfc key."""
    return key.thumbprint()


@lru_cache(maxsize=1024)
def _imported(members: tuple[tuple[str, str], ...]):
    key = jose.public_key(dict(members))
    return key, thumbprint(key)


def proof_key(jwk: object):
    """The proof's ``jwk`` header as a joserfc public key and its thumbprint.

    A client signs every proof with the same key, so imported keys are kept (at most 1,024,
    keyed by the JWK's members): importing and hashing one costs more than the signature
    check itself. Raises :class:`~host.oauth.jose.JoseProblem` for an unacceptable key.
    """
    if isinstance(jwk, dict) and len(jwk) <= 16 and all(isinstance(v, str) for v in jwk.values()):
        return _imported(tuple(sorted(jwk.items())))
    key = jose.public_key(jwk)  # refuses it, or imports an odd but acceptable key without caching it
    return key, thumbprint(key)


def access_token_hash(access_token: str) -> str:
    """The ``ath`` of ``access_token``: BASE64URL(SHA-256(token))."""
    digest = hashlib.sha256(access_token.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@lru_cache(maxsize=1024)
def normalize_htu(url: str) -> str:
    """``url`` without query and fragment, scheme and host in lower case, default port dropped
    (RFC 9449 §4.3 point 9, with RFC 3986 §6.2.2–6.2.3 normalisation)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidDPoPProof("htu is not a valid URL") from None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", "", ""))


class DPoPNonces:
    """Stateless server nonces: an HMAC of the time window under the host's secret, so
    every worker issues and accepts the same ones without shared storage."""

    def __init__(self, secret: bytes, window: int = NONCE_WINDOW) -> None:
        self._secret = secret
        self._window = window

    def _for(self, slot: int) -> str:
        mac = hmac.new(self._secret, b"canopy-dpop-nonce\0" + str(slot).encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac[:18]).decode("ascii")

    def current(self, now: int) -> str:
        """The nonce to hand out now."""
        return self._for(now // self._window)

    def accepts(self, nonce: object, now: int) -> bool:
        """Whether ``nonce`` is the current one or the one just before it."""
        slot = now // self._window
        return isinstance(nonce, str) and any(hmac.compare_digest(nonce, self._for(s)) for s in (slot, slot - 1))


def verify_proof(
    headers: Sequence[str],
    *,
    method: str,
    url: str,
    replay: ReplayCache,
    now: int,
    access_token: str | None = None,
    nonces: DPoPNonces | None = None,
) -> DPoPProof:
    """Verify the ``DPoP`` header values of one request (RFC 9449 §4.3) and spend its ``jti``.

    ``headers`` are all values of the request's ``DPoP`` header (exactly one is allowed);
    ``url`` is the request's public URL; ``access_token`` is given on resource requests
    and makes ``ath`` required; ``nonces`` makes a current server nonce required.
    Raises :class:`InvalidDPoPProof` (or :class:`UseDPoPNonce`) naming what is wrong.
    """
    proof = check_proof(headers, method=method, url=url, now=now, access_token=access_token, nonces=nonces)
    spend(proof, replay.first_use(proof.replay_key, proof.replay_until))
    return proof


def spend(proof: DPoPProof, first_use: bool) -> None:
    """Refuse ``proof`` unless recording its ``jti`` found it unused (``first_use``)."""
    if not first_use:
        raise InvalidDPoPProof("this DPoP proof was used before; make a fresh one (new jti) for each request")


def check_proof(
    headers: Sequence[str],
    *,
    method: str,
    url: str,
    now: int,
    access_token: str | None = None,
    nonces: DPoPNonces | None = None,
) -> DPoPProof:
    """Every check of :func:`verify_proof` except the one-time use of the ``jti``: the
    caller records it (:attr:`DPoPProof.replay_key`) and calls :func:`spend`."""
    if not headers:
        raise InvalidDPoPProof("a DPoP proof is required: send it in the DPoP header")
    if len(headers) != 1:
        raise InvalidDPoPProof("send exactly one DPoP header")
    proof = headers[0]
    try:
        header, claims = jose.split(proof)
    except jose.JoseProblem as exc:
        raise InvalidDPoPProof(f"the DPoP proof is malformed: {exc}") from None
    if header.get("typ") != TYP:
        raise InvalidDPoPProof("the DPoP proof's typ must be dpop+jwt")
    try:
        key, jkt = proof_key(header.get("jwk"))
    except jose.JoseProblem as exc:
        raise InvalidDPoPProof(f"the DPoP proof's jwk header is not acceptable: {exc}") from None
    alg = header["alg"]
    if not jose.fits(key, alg):
        raise InvalidDPoPProof(f"the jwk is not a key for {alg}")
    if not jose.verify(proof, key, alg):
        raise InvalidDPoPProof("the DPoP proof's signature does not verify with its jwk")

    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI:
        raise InvalidDPoPProof(f"the DPoP proof needs a jti of 1-{MAX_JTI} characters")
    htm = claims.get("htm")
    if htm != method:
        raise InvalidDPoPProof(f"htm does not match the request method {method}")
    htu = claims.get("htu")
    if not isinstance(htu, str) or normalize_htu(htu) != normalize_htu(url):
        raise InvalidDPoPProof("htu does not match the request URL")
    iat = claims.get("iat")
    if not jose.is_number(iat):
        raise InvalidDPoPProof("the DPoP proof needs iat, a number of seconds")
    if iat > now + LEEWAY:
        raise InvalidDPoPProof("the DPoP proof's iat is in the future")
    if iat < now - MAX_AGE:
        raise InvalidDPoPProof(f"the DPoP proof is older than {MAX_AGE} seconds; make a fresh one for each request")

    if access_token is not None:
        ath = claims.get("ath")
        if not isinstance(ath, str) or not hmac.compare_digest(ath, access_token_hash(access_token)):
            raise InvalidDPoPProof("ath does not match the access token")
    if nonces is not None:
        nonce = claims.get("nonce")
        if not nonces.accepts(nonce, now):
            raise UseDPoPNonce(nonces.current(now), "a fresh server nonce is required in the DPoP proof"
                               if nonce is None else "the DPoP nonce is stale; use the one in DPoP-Nonce")

    return DPoPProof(jkt=jkt, jti=jti, iat=int(iat), htm=htm, htu=htu)
