"""Head office's changes to the branch tree: adding a branch and renaming one (audited, checked
by :func:`host.storefront.rights.authorize`)."""

from __future__ import annotations

from typing import Any, Mapping

from flask_babel import gettext as _
from sqlalchemy.orm import Session

from .. import audit
from .errors import InvalidChange
from .models import BRANCH_CODE, Branch
from .rights import Action, authorize
from .services import get_branch



def _branch_names(data: Mapping[str, Any], errors: dict[str, list[str]]) -> tuple[str, str]:
    names = []
    for field in ("name_zh", "name_en"):
        value = data.get(field)
        value = value.strip() if isinstance(value, str) else ""
        if not value:
            errors[field] = [_("is required")]
        elif len(value) > 100:
            errors[field] = [_("must be at most %(count)d characters", count=100)]
        elif any(ord(ch) < 32 or ord(ch) == 127 or 0xD800 <= ord(ch) <= 0xDFFF for ch in value):
            errors[field] = [_("must not contain control characters")]
        names.append(value)
    return names[0], names[1]


def create_branch(session: Session, staff, data: Mapping[str, Any]) -> Branch:
    """Add a branch (``code``, ``name_zh``, ``name_en``, ``parent_code``) under an existing one; head office only."""
    authorize(session, staff, Action.BRANCHES, None)
    errors: dict[str, list[str]] = {}
    code, parent = data.get("code"), data.get("parent_code")
    if not isinstance(code, str) or not BRANCH_CODE.match(code):
        errors["code"] = [_("must be 2 to 16 capital letters, digits or '-', starting with a letter or digit")]
    elif session.get(Branch, code) is not None:
        errors["code"] = [_("there is a branch with this code already")]
    name_zh, name_en = _branch_names(data, errors)
    if not isinstance(parent, str) or len(parent) > 16 or "\x00" in parent or session.get(Branch, parent) is None:
        errors["parent_code"] = [_("must be the code of an existing branch")]
    if errors:
        raise InvalidChange(errors)
    branch = Branch(code=code, name_zh=name_zh, name_en=name_en, parent_code=parent)
    session.add(branch)
    session.flush()
    audit.record("storefront.branch_created", outcome=audit.SUCCESS, actor=staff.username, branch=code,
                 detail={"name_zh": name_zh, "name_en": name_en, "parent": parent}, session=session)
    return branch


def rename_branch(session: Session, staff, code: str, data: Mapping[str, Any]) -> Branch:
    """Change a branch's names; head office only."""
    authorize(session, staff, Action.BRANCHES, None)
    branch = get_branch(session, code)
    errors: dict[str, list[str]] = {}
    name_zh, name_en = _branch_names(data, errors)
    if errors:
        raise InvalidChange(errors)
    before = {"name_zh": branch.name_zh, "name_en": branch.name_en}
    branch.name_zh, branch.name_en = name_zh, name_en
    session.flush()
    audit.record("storefront.branch_renamed", outcome=audit.SUCCESS, actor=staff.username, branch=code,
                 detail={"old": before, "new": {"name_zh": name_zh, "name_en": name_en}}, session=session)
    return branch
