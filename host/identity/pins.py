"""Payment PINs: checked with a keyed HMAC, not hashed like passwords.

A six-digit PIN has 10^6 values, so no hashing cost makes a leaked table safe: every PIN
of one customer is tried offline in about a day of one core against Argon2id. What
protects a PIN is a secret key kept apart from the data, as a bank's PIN verification key
is (ISO 9564, PVV): the stored value is ``HMAC-SHA256(key, salt ‖ customer id ‖ PIN)``,
worthless without the key, and online guessing is stopped by the lockout in
:mod:`.services`. The salt is random per PIN and the customer id is bound in too, so equal
PINs never give equal values and one customer's value does not work for another.

Stored as ``hmac-sha256$<key id>$<salt>$<mac>`` (base64url, no padding). The key id is a
short digest of the key, so a value made with a key this host does not have is recognised,
logged with its cause and refused. Keys rotate through ``PIN_KEYS_OLD``; Argon2 hashes
stored by earlier versions are still accepted. A right PIN checked with either comes back
with its value made again with the current key, for the caller to store in the same
transaction.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..config import pin_key_settings, require_secret
from .passwords import Hasher

log = logging.getLogger("canopy.identity")

SCHEME = "hmac-sha256"
#: The policy for a new PIN. Checking accepts any PIN up to ``MAX_PIN_LENGTH`` characters.
PIN_DIGITS = 6
#: The longest PIN (ISO 9564); longer input is refused without being read.
MAX_PIN_LENGTH = 12
SALT_BYTES = 16
#: HKDF ``info`` of the key derived from ``SECRET_KEY`` when ``PIN_KEY`` is unset.
DERIVATION_INFO = b"canopy payment PIN key"
LEGACY_PREFIX = "$argon2"

#: Why a stored value cannot be checked at all (nothing can match it).
UNKNOWN_KEY = "unknown_key"
MALFORMED = "malformed"

_KEY_ID_LABEL = b"canopy payment PIN key id"
_NEW_PIN = re.compile(r"[0-9]{%d}" % PIN_DIGITS)
_STORED = re.compile(r"hmac-sha256\$([0-9a-f]{12})\$([A-Za-z0-9_-]{22})\$([A-Za-z0-9_-]{43})")


class InvalidPin(ValueError):
    """A new payment PIN that breaks the policy: it must be six digits."""


def derive_key(secret: bytes) -> bytes:
    """The PIN key derived from ``secret`` with HKDF-SHA256 (32 bytes)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=DERIVATION_INFO).derive(secret)


def key_id(key: bytes) -> str:
    """A short name of ``key`` (12 hex digits) that says nothing about the key itself."""
    return hmac.new(key, _KEY_ID_LABEL, hashlib.sha256).hexdigest()[:12]


class PinKeyring:
    """The current PIN key, which makes every new value, and the old ones still accepted.

    An old key may be given as the key itself or as the ``SECRET_KEY`` it was derived
    from (before ``PIN_KEY`` was set, or before ``SECRET_KEY`` changed): both are tried
    by key id, so a value is only ever checked with the one key that made it.
    """

    def __init__(self, current: bytes, old: Iterable[bytes] = ()) -> None:
        self.current = current
        self.current_id = key_id(current)
        keys: dict[str, bytes] = {}
        for entry in old:
            for candidate in (entry, derive_key(entry)):
                keys.setdefault(key_id(candidate), candidate)
        keys[self.current_id] = current
        self._keys = keys

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> PinKeyring:
        """``PIN_KEY``, or a key derived from ``SECRET_KEY`` when it is unset, and ``PIN_KEYS_OLD``.
        Raises :class:`~host.config.ConfigError` when neither key is there or one is wrong."""
        current, old = pin_key_settings(config)
        keyring = cls(current if current is not None else derive_key(require_secret(config)), old)
        log.info("payment PIN key %s (%s), %d old keys accepted", keyring.current_id,
                 "PIN_KEY" if current is not None else "derived from SECRET_KEY", len(old))
        return keyring

    def get(self, wanted: str) -> bytes | None:
        """The key with id ``wanted``, or None when this host does not have it."""
        return self._keys.get(wanted)


@dataclass(frozen=True)
class PinVerification:
    """The outcome of one check. ``rehashed``: after a right PIN checked with an old key or
    an Argon2 hash, its value made with the current key, to store. ``problem``: why the
    stored value could not be checked (``UNKNOWN_KEY``, ``MALFORMED``); it has been logged."""

    matches: bool
    rehashed: str | None = None
    problem: str | None = None


class PinHasher:
    """Makes and checks stored payment PIN values with a :class:`PinKeyring`.

    ``legacy`` gives the password hasher that checks Argon2 PIN hashes of earlier versions;
    it is asked for only when such a hash is met.
    """

    def __init__(self, keyring: PinKeyring, legacy: Callable[[], Hasher] | None = None) -> None:
        self.keyring = keyring
        self._legacy = legacy

    def hash(self, customer_id: str, pin: str) -> str:
        """The value to store for a new ``pin`` of ``customer_id``; raise :class:`InvalidPin`
        unless it is six digits."""
        if not isinstance(pin, str) or not _NEW_PIN.fullmatch(pin):
            raise InvalidPin(f"a payment PIN is {PIN_DIGITS} digits")
        return self._seal(customer_id, pin)

    def verify(self, customer_id: str, stored: str | None, pin: object) -> PinVerification:
        """Check ``pin`` against ``customer_id``'s ``stored`` value. Never raises for what is
        stored or entered: a missing or unusable value, or a PIN that is not a string of at
        most ``MAX_PIN_LENGTH`` characters, does not match."""
        if not isinstance(pin, str) or not 0 < len(pin) <= MAX_PIN_LENGTH or not _encodable(pin) or not stored:
            return PinVerification(False)
        if not isinstance(stored, str):
            return self._unusable(customer_id, MALFORMED)
        if stored.startswith(LEGACY_PREFIX) and self._legacy is not None:
            matches = self._legacy().verify(stored, pin)[0]
            return PinVerification(matches, rehashed=self._seal(customer_id, pin) if matches else None)
        found = _STORED.fullmatch(stored)
        if found is None:
            return self._unusable(customer_id, MALFORMED)
        made_with, salt_text, mac_text = found.groups()
        key = self.keyring.get(made_with)
        if key is None:
            return self._unusable(customer_id, UNKNOWN_KEY, made_with)
        try:
            salt, mac = _decode(salt_text), _decode(mac_text)
        except (binascii.Error, ValueError):
            return self._unusable(customer_id, MALFORMED)
        matches = hmac.compare_digest(_mac(key, salt, customer_id, pin), mac)
        stale = matches and made_with != self.keyring.current_id
        return PinVerification(matches, rehashed=self._seal(customer_id, pin) if stale else None)

    def _seal(self, customer_id: str, pin: str) -> str:
        salt = secrets.token_bytes(SALT_BYTES)
        mac = _mac(self.keyring.current, salt, customer_id, pin)
        return f"{SCHEME}${self.keyring.current_id}${_encode(salt)}${_encode(mac)}"

    def _unusable(self, customer_id: str, problem: str, made_with: str | None = None) -> PinVerification:
        # Never the stored value or the PIN: the customer and the cause are enough to act on.
        if problem == UNKNOWN_KEY:
            log.error(
                "payment PIN of customer %s cannot be checked: it was made with PIN key %s, which this host "
                "does not have (its current key is %s). Put that key in PIN_KEYS_OLD, or, if it is lost, "
                "the customer must set a new PIN", customer_id, made_with, self.keyring.current_id)
        else:
            log.error(
                "payment PIN of customer %s cannot be checked: the stored value is malformed (neither "
                "hmac-sha256$<key id>$<salt>$<mac> nor an Argon2 hash); the customer must set a new PIN", customer_id)
        return PinVerification(False, problem=problem)


def _mac(key: bytes, salt: bytes, customer_id: str, pin: str) -> bytes:
    if not isinstance(customer_id, str) or not customer_id:
        raise TypeError("a payment PIN belongs to a customer id")
    customer = customer_id.encode("utf-8")
    # Lengths fixed or prefixed, so no two (salt, customer, PIN) give the same message.
    message = salt + len(customer).to_bytes(2, "big") + customer + pin.encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).digest()


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, e.g. from a JSON body's "\ud800"
        return False
    return True


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
