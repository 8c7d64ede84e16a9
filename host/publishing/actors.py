"""Who acts on a version: staff (by their roles), a partner's back end (by its organisation),
or the host itself (the automatic pre-review).

An :class:`Actor` holds a *set* of roles, so a person who holds several (a reviewer who is also
a branch's administrator) is one actor, and the rule "a publisher never reviews its own" is
checked against the person, not against the role they happen to use. :func:`publishes_for` is
the one answer to "may this actor publish for that publisher"; it says why either way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..identity.models import Staff, StaffRole

#: The role of a partner organisation's back end (an OAuth client with ``plugins:publish``).
PARTNER = "partner"
#: The role of the host's own automatic steps (the pre-review checks).
SYSTEM = "system"

#: Publisher kinds of a manifest (``publisher.kind``).
BANK, BRANCH = "bank", "branch"
#: The publisher id of the bank's own mini-programs.
BANK_PUBLISHER_ID = "HQ"


@dataclass(frozen=True)
class Actor:
    """Someone acting on versions: ``id`` is what history and the audit log record
    (``staff:<username>``, ``client:<client id>``, ``system:<step>``)."""

    id: str
    roles: frozenset[str]
    branch: str | None = None  #: the branch of branch-bound staff
    org: str | None = None  #: the partner organisation of a partner's back end

    @classmethod
    def staff(cls, staff: Staff) -> "Actor":
        """The actor a signed-in member of staff is."""
        return cls(f"staff:{staff.username}", frozenset({staff.role}),
                   branch=staff.branch_code if staff.role in StaffRole.BRANCH_BOUND else None)

    @classmethod
    def partner_client(cls, client_id: str, org_id: str) -> "Actor":
        """The actor a partner's back end is (its OAuth client acts for its organisation)."""
        return cls(f"client:{client_id}", frozenset({PARTNER}), org=org_id)

    def has(self, *roles: str) -> bool:
        """Whether the actor holds any of ``roles``."""
        return bool(self.roles.intersection(roles))


#: The host's automatic pre-review.
PRECHECK = Actor("system:precheck", frozenset({SYSTEM}))


@dataclass(frozen=True)
class Decision:
    """Allowed or not, and why (in words the caller can act on)."""

    allowed: bool
    reason: str = field(default="")

    def __bool__(self) -> bool:
        return self.allowed


def allow(reason: str) -> Decision:
    """An allowing :class:`Decision`."""
    return Decision(True, reason)


def deny(reason: str) -> Decision:
    """A refusing :class:`Decision`."""
    return Decision(False, reason)


def publishes_for(actor: Actor, kind: str, publisher_id: str) -> Decision:
    """Whether ``actor`` may upload and submit versions of publisher ``kind:publisher_id``.

    ============  =====================================================================
    publisher     who publishes
    ============  =====================================================================
    ``bank``      ``hq_admin``
    ``branch``    ``branch_admin`` and ``branch_operator`` of that branch
    ``partner``   the back ends (OAuth clients) of that organisation
    ============  =====================================================================
    """
    if kind == BANK and actor.has(StaffRole.HQ_ADMIN):
        return allow("head office publishes the bank's mini-programs")
    if kind == BRANCH and actor.has(*StaffRole.BRANCH_BOUND) and actor.branch == publisher_id:
        return allow(f"staff of branch {publisher_id} publish its mini-programs")
    if kind == PARTNER and actor.has(PARTNER) and actor.org == publisher_id:
        return allow(f"the back ends of {publisher_id} publish its mini-programs")
    return deny(f"you do not publish for {kind}:{publisher_id}")
