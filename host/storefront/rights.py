"""Who may change what on the storefronts: operating rights, and the checks that decide.

Head office owns the bank-wide slots and grants each branch rights over its own storefront
(:data:`RIGHTS`). A member of staff may make a change when their role allows that kind of
change **and**, for branch staff, the change is to their own branch **and** head office granted
that branch the right (customer tags excepted: a branch's staff look after the tags of the
branch's own customers without a grant). Each check answers :class:`Allowed` or :class:`Denied` with a reason
(never a bare bool), and :func:`authorize` is the one place the storefront services enforce
them; the refusal names its reason and is written to the audit log.

=================  ==========  ===========  ===============  ================
action             hq_admin    hq_reviewer  branch_admin     branch_operator
=================  ==========  ===========  ===============  ================
view               every       every        own branch       own branch
banners, feed      every       —            own, if granted  own, if granted
grid (order)       every       —            own, if granted  own, if granted
installs           every       —            own, if granted  —
customer tags      every       —            own              own
bank-wide slots    yes         —            —                —
rights, branches   yes         —            —                —
=================  ==========  ===========  ===============  ================
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Collection

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import audit
from ..identity.models import Staff, StaffRole
from .errors import InvalidChange, NotAllowed
from .models import OperatingRight


class Action(str, Enum):
    """What a member of staff wants to do to a storefront."""

    VIEW = "view"  #: look at a storefront's slots, grid and installs in the console
    BANNERS = "banners"  #: add, change or remove the branch's own banners
    FEED = "feed"  #: add, change or remove the branch's own feed cards
    GRID = "grid"  #: order the branch's icon grid
    INSTALLS = "installs"  #: install and uninstall mini-programs in the branch's storefront
    TAGS = "tags"  #: add and remove tags of the branch's customers (what banners and feed cards target)
    BANK_SLOTS = "bank_slots"  #: the bank-wide banners and feed cards (every storefront)
    RIGHTS = "rights"  #: grant and revoke branches' operating rights
    BRANCHES = "branches"  #: add branches and rename them


#: The rights head office can grant a branch; each is the branch action of the same name.
RIGHTS = (Action.BANNERS.value, Action.FEED.value, Action.GRID.value, Action.INSTALLS.value)

#: What each branch-bound role may do to its own branch, once head office granted the right.
BRANCH_ROLE_ACTIONS = {
    StaffRole.BRANCH_ADMIN: frozenset({Action.BANNERS, Action.FEED, Action.GRID, Action.INSTALLS, Action.TAGS}),
    StaffRole.BRANCH_OPERATOR: frozenset({Action.BANNERS, Action.FEED, Action.GRID, Action.TAGS}),
}
HEAD_OFFICE_ONLY = frozenset({Action.BANK_SLOTS, Action.RIGHTS, Action.BRANCHES})
#: Branch actions that need no right from head office: the branch's own customers are its business.
UNGRANTED = frozenset({Action.TAGS})


@dataclass(frozen=True)
class Allowed:
    """The check passed; ``reason`` says why."""

    reason: str

    def __bool__(self) -> bool:
        return True


@dataclass(frozen=True)
class Denied:
    """The check failed; ``reason`` says why, in words the member of staff can act on."""

    reason: str

    def __bool__(self) -> bool:
        return False


Verdict = Allowed | Denied


def check(staff: Staff | None, action: Action, branch_code: str | None, granted: Collection[str] = ()) -> Verdict:
    """May ``staff`` do ``action`` to the storefront of ``branch_code`` (None: bank-wide), the
    branch having been granted ``granted``? Pure: the caller reads the granted rights."""
    if staff is None:
        return Denied(_("Sign in as staff first."))
    if staff.role == StaffRole.HQ_ADMIN:
        return Allowed(_("Head office administers every storefront."))
    if action == Action.VIEW:
        if staff.role == StaffRole.HQ_REVIEWER:
            return Allowed(_("Head office reviewers may look at every storefront."))
        if staff.role in BRANCH_ROLE_ACTIONS and staff.branch_code and branch_code in (staff.branch_code, None):
            return Allowed(_("Branch staff may look at their own storefront and the bank-wide slots."))
        return Denied(_("You may look at your own branch's storefront only."))
    if staff.role == StaffRole.HQ_REVIEWER:
        return Denied(_("Reviewers look but do not change storefronts."))
    if action in HEAD_OFFICE_ONLY or branch_code is None:
        return Denied(_("Only a head office administrator may do this."))
    actions = BRANCH_ROLE_ACTIONS.get(staff.role)
    if actions is None or not staff.branch_code:
        return Denied(_("Your role may not change storefronts."))
    if branch_code != staff.branch_code:
        if action == Action.TAGS:
            return Denied(_("You may change the tags of your own branch's customers (%(branch)s) only.",
                            branch=staff.branch_code))
        return Denied(_("You may change the storefront of your own branch (%(branch)s) only.", branch=staff.branch_code))
    if action not in actions:
        return Denied(_("Your role (%(role)s) may not do this: %(action)s.", role=staff.role, action=action.value))
    if action in UNGRANTED:
        return Allowed(_("Branch staff look after the tags of their own branch's customers."))
    if action.value not in granted:
        return Denied(_("Head office has not granted branch %(branch)s the right: %(right)s.",
                        branch=branch_code, right=action.value))
    return Allowed(_("Head office granted branch %(branch)s the right: %(right)s.", branch=branch_code, right=action.value))


def is_head_office(staff: Staff | None) -> bool:
    """Whether ``staff`` works at head office (administrator or reviewer)."""
    return staff is not None and staff.role in (StaffRole.HQ_ADMIN, StaffRole.HQ_REVIEWER)


def granted_rights(session: Session, branch_code: str | None) -> frozenset[str]:
    """The rights head office granted ``branch_code`` (none for bank-wide)."""
    if branch_code is None:
        return frozenset()
    return frozenset(session.scalars(select(OperatingRight.right).where(OperatingRight.branch_code == branch_code)))


def verdict(session: Session, staff: Staff | None, action: Action, branch_code: str | None) -> Verdict:
    """:func:`check` with the branch's granted rights read (only when they can matter)."""
    needs_rights = (staff is not None and staff.role in BRANCH_ROLE_ACTIONS and action not in HEAD_OFFICE_ONLY
                    and action != Action.VIEW and action not in UNGRANTED and branch_code is not None
                    and branch_code == staff.branch_code)
    return check(staff, action, branch_code, granted_rights(session, branch_code) if needs_rights else ())


def authorize(session: Session, staff: Staff | None, action: Action, branch_code: str | None) -> Allowed:
    """Return the :class:`Allowed` verdict, or raise :class:`NotAllowed` with the reason.

    Every storefront change calls this first. The caller audits the refusal with
    :func:`audit_denial` after its transaction rolled back (an audit entry of its own
    transaction cannot be written while the change's holds SQLite's write lock)."""
    found = verdict(session, staff, action, branch_code)
    if isinstance(found, Denied):
        raise NotAllowed(found.reason, action=action.value, branch=branch_code,
                         actor=staff.username if staff is not None else None)
    return found


def audit_denial(refused: NotAllowed) -> None:
    """Write the audit entry of a refused change (in a transaction of its own)."""
    audit.record(f"storefront.{refused.action or 'change'}", outcome=audit.DENIED, actor=refused.actor,
                 branch=refused.branch or "*", detail={"reason": refused.reason})


def set_rights(session: Session, staff: Staff, branch_code: str, rights: Collection[str]) -> frozenset[str]:
    """Grant ``branch_code`` exactly ``rights`` (revoking the others); audited. Head office only."""
    from .services import UnknownBranch, get_branch  # the services use these checks

    authorize(session, staff, Action.RIGHTS, branch_code)
    try:
        branch = get_branch(session, branch_code)
    except UnknownBranch:
        raise InvalidChange({"branch": [_("there is no branch with this code")]}) from None
    wanted = [right for right in rights if isinstance(right, str)]
    unknown = sorted({right[:32] for right in wanted if right not in RIGHTS})
    if len(wanted) != len(rights) or len(wanted) > len(RIGHTS) * 4:
        unknown.append("?")
    if unknown:
        raise InvalidChange({"rights": [_("unknown rights: %(rights)s; known: %(known)s",
                                          rights=", ".join(unknown), known=", ".join(RIGHTS))]})
    before = granted_rights(session, branch.code)
    after = frozenset(wanted)
    for right in before - after:
        session.delete(session.get(OperatingRight, (branch.code, right)))
    for right in sorted(after - before):
        session.add(OperatingRight(branch_code=branch.code, right=right, granted_by=staff.username))
    session.flush()
    audit.record("storefront.rights_changed", outcome=audit.SUCCESS, actor=staff.username, branch=branch.code,
                 detail={"granted": sorted(after - before), "revoked": sorted(before - after), "now": sorted(after)},
                 session=session)
    return after
