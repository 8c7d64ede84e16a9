"""Password hashing with Argon2id. (Payment PINs are keyed HMACs, :mod:`.pins`; this also
checks the Argon2 PIN hashes that earlier versions stored, until each is replaced.)

Parameters come from the configuration (``ARGON2_TIME_COST``, ``ARGON2_MEMORY_KIB``,
``ARGON2_PARALLELISM``; RFC 9106's low-memory profile by default). A stored hash
carries its own parameters, so raising them later only makes new hashes stronger;
:func:`verify` tells when a hash should be redone.
"""

from __future__ import annotations

from typing import Mapping

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

#: Hashed once so that checking an unknown account costs what checking a known one does.
_DUMMY_PASSWORD = "canopy-no-such-account"


class Hasher:
    """Hashes and verifies secrets with the configured Argon2id parameters."""

    def __init__(self, config: Mapping) -> None:
        self._hasher = PasswordHasher(
            time_cost=int(config.get("ARGON2_TIME_COST", 3)),
            memory_cost=int(config.get("ARGON2_MEMORY_KIB", 65536)),
            parallelism=int(config.get("ARGON2_PARALLELISM", 4)),
        )
        self._dummy = self._hasher.hash(_DUMMY_PASSWORD)

    def hash(self, secret: str) -> str:
        """Return the Argon2id hash of ``secret``."""
        return self._hasher.hash(secret)

    def verify(self, stored: str | None, secret: str) -> tuple[bool, bool]:
        """Return (matches, needs_rehash). A missing ``stored`` hash never matches, after
        the same work as a real check. A malformed hash, or a secret that is not valid
        Unicode (a lone surrogate from JSON), never matches either."""
        try:
            self._hasher.verify(stored or self._dummy, secret)
        except (VerifyMismatchError, VerificationError, InvalidHashError, UnicodeError):
            return False, False
        if not stored:  # "" too: the dummy's own secret must not match an empty hash
            return False, False
        return True, self._hasher.check_needs_rehash(stored)
