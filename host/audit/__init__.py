"""The audit log: every sign-in, failed authorisation, consent change and admin action.

:func:`record` writes one append-only row (UTC, who, what, where, outcome) in its own
transaction, so an audited failure is kept even when the request's own work rolls back.
Details must never hold a password, PIN, token, key or card number: :func:`record`
refuses detail keys that name one.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from flask import current_app, has_request_context, request
from sqlalchemy.orm import Session

from ..db import get_database
from ..observability import current_request_id
from .models import AuditEvent

log = logging.getLogger("canopy.audit")

SUCCESS = "success"
FAILURE = "failure"
DENIED = "denied"

#: Words that, standing as a word of a detail key (``new_pin``, ``apiKey``, ``access-token``),
#: mark the value as a secret. Matched by whole words, so ``shipping`` and ``keyboard`` pass.
_SECRET_WORDS = frozenset(
    {"password", "passwd", "pin", "token", "secret", "key", "card", "pan", "cvv", "assertion", "verifier", "otp"}
)


class SecretInAudit(ValueError):
    """An audit detail named something secret."""


def _check_detail(detail: dict[str, Any]) -> dict[str, Any]:
    for key in detail:
        words = re.split(r"[^a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", str(key)).lower())
        if _SECRET_WORDS.intersection(words):
            raise SecretInAudit(f"audit detail {key!r} looks like a secret; audit entries never hold secrets")
    return detail


def _fit(value: str | None, size: int) -> str | None:
    """``value`` cut to its column, with what no database stores (NUL, lone surrogates)
    replaced: an audited failure often carries hostile input, and must still be written."""
    if value is None:
        return None
    return value[:size].replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


def record(
    action: str,
    *,
    outcome: str,
    actor: str | None = None,
    subject: str | None = None,
    plugin_id: str | None = None,
    branch: str | None = None,
    detail: dict[str, Any] | None = None,
    session: Session | None = None,
) -> None:
    """Append one audit event and log it: in a transaction of its own, or in ``session`` when
    the event must stand or fall with the change it records (the caller commits)."""
    detail = _check_detail(dict(detail or {}))
    ip = request.remote_addr if has_request_context() else None
    event = AuditEvent(
        action=_fit(action, 64),
        outcome=_fit(outcome, 16),
        actor=_fit(actor or None, 128),
        subject=_fit(subject or None, 128),
        plugin_id=_fit(plugin_id or None, 64),
        branch=_fit(branch or None, 16),
        ip=_fit(ip or None, 64),
        request_id=current_request_id(),
        detail=detail,
    )
    if session is not None:
        session.add(event)
    else:
        with get_database(current_app).transaction(write=True) as own:
            own.add(event)
    log.info(
        "%s %s", action, outcome,
        extra={"audit_action": action, "outcome": outcome, "actor": actor, "subject": subject,
               "plugin": plugin_id, "branch": branch},
    )


__all__ = ["DENIED", "FAILURE", "SUCCESS", "AuditEvent", "SecretInAudit", "record"]
