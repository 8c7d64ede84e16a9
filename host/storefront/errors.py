"""Why a change to a storefront was not made."""

from __future__ import annotations


class NotAllowed(Exception):
    """This member of staff may not make this change (the message says why).

    ``action`` and ``branch`` say what was refused where, for the audit entry that the caller
    writes once its transaction has rolled back (:func:`host.storefront.rights.audit_denial`)."""

    def __init__(self, reason: str, *, action: str = "", branch: str | None = None, actor: str | None = None) -> None:
        self.reason, self.action, self.branch, self.actor = reason, action, branch, actor
        super().__init__(reason)


class InvalidChange(ValueError):
    """The change is not valid; ``errors`` maps each field to its messages. Nothing was changed."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = {field: [str(message) for message in messages] for field, messages in errors.items()}
        super().__init__("; ".join(f"{field}: {' '.join(texts)}" for field, texts in self.errors.items()))


class NotFound(LookupError):
    """The slot, branch or installation named does not exist."""
