"""Pairwise subject identifiers: each plugin sees its own stable id for a customer.

The id is an HMAC of the plugin id and the customer's internal id under the host's
secret, so it is stable for one plugin, different for every other, and no plugin
(or set of colluding plugins) can compute another's id or the internal one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def pairwise_subject(secret: bytes, plugin_id: str, customer_id: str) -> str:
    """Return the customer's subject id as ``plugin_id`` sees it (26 base32 characters)."""
    message = b"canopy-pairwise-v1\0" + plugin_id.encode("utf-8") + b"\0" + customer_id.encode("utf-8")
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return base64.b32encode(digest).decode("ascii").rstrip("=").lower()[:26]
