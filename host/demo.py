"""Demo data: head office, a branch tree and the bundled mini-programs installed.

Idempotent: running it again changes nothing that is already there.
"""

from __future__ import annotations

import secrets
import tomllib
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from .config import INSTANCE_FILE
from .runtime.models import PluginVersion
from .runtime.registry import approve_scopes
from .identity import services
from .identity.models import Customer, PartnerDeveloper, PartnerOrg, Staff, StaffRole, new_id
from .storefront.models import Branch, Installation

BRANCHES = [
    # code, Chinese name, English name, parent
    ("HQ", "总行", "Head Office", None),
    ("SH001", "上海分行", "Shanghai Branch", "HQ"),
    ("BJ001", "北京分行", "Beijing Branch", "HQ"),
    ("GZ001", "广州分行", "Guangzhou Branch", "HQ"),
    ("SH001-PD", "上海浦东支行", "Shanghai Pudong Sub-branch", "SH001"),
]

#: plugin id → branches whose storefront has it ("*" for every branch), in grid order.
INSTALLATIONS = [
    ("wealth.checkup", "*"),
    ("sh.deals", ["SH001", "SH001-PD"]),
    ("city.utilities", ["SH001", "BJ001"]),
]


#: Demo sign-ins. Development only: ``make run`` prints them; never seeded in production.
DEMO_PASSWORD = "canopy-demo"
CUSTOMERS = [
    # phone, password, payment PIN, nickname, locale, home branch
    ("13800000001", "canopy-demo-1", "147258", "林小姐", "zh-CN", "SH001"),
    ("13900000002", "canopy-demo-2", "258369", "Wang Fang", "en", "BJ001"),
]
STAFF = [
    # username, display name, role, branch
    ("hq.admin", "总行管理员 HQ Admin", StaffRole.HQ_ADMIN, None),
    ("hq.reviewer", "总行审核员 HQ Reviewer", StaffRole.HQ_REVIEWER, None),
    ("sh.admin", "上海分行管理员 Shanghai Admin", StaffRole.BRANCH_ADMIN, "SH001"),
    ("sh.operator", "上海分行运营 Shanghai Operator", StaffRole.BRANCH_OPERATOR, "SH001"),
    ("bj.operator", "北京分行运营 Beijing Operator", StaffRole.BRANCH_OPERATOR, "BJ001"),
]
PARTNERS = [("CITYPOWER", "城市电力", "City Power", "dev@citypower.example", "City Power Developer")]


def ensure_secret(instance: Path) -> bool:
    """Write a random ``SECRET_KEY`` into the instance file unless one is there; return
    whether one was written. Development only: production sets ``CANOPY_SECRET_KEY``."""
    instance.mkdir(parents=True, exist_ok=True)
    path = instance / INSTANCE_FILE
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if tomllib.loads(text).get("SECRET_KEY"):
        return False
    line = f'SECRET_KEY = "{secrets.token_urlsafe(48)}"\n'
    path.write_text(text + ("" if not text or text.endswith("\n") else "\n") + line, encoding="utf-8")
    path.chmod(0o600)
    return True


def seed(session: Session) -> dict[str, int]:
    """Create the demo branches, installations and people that are missing; return counts of
    what was added. Needs an app context (passwords are hashed with the app's settings)."""
    added = {"branches": 0, "installations": 0, "people": 0}
    for code, zh, en, parent in BRANCHES:
        if session.get(Branch, code) is None:
            session.add(Branch(code=code, name_zh=zh, name_en=en, parent_code=parent))
            session.flush()
            added["branches"] += 1
    codes = [code for code, *_ in BRANCHES]
    for position, (plugin_id, where) in enumerate(INSTALLATIONS):
        version = session.scalar(
            select(PluginVersion)
            .where(PluginVersion.plugin_id == plugin_id)
            .order_by(PluginVersion.registered_at.desc(), PluginVersion.pk.desc())
            .limit(1)
        )
        if version is None:
            continue  # not found on disk; nothing to install
        approve_scopes(session, plugin_id, version.version)
        for code in codes if where == "*" else where:
            exists = session.scalar(
                select(Installation).where(Installation.branch_code == code, Installation.plugin_id == plugin_id)
            )
            if exists is None:
                session.add(Installation(branch_code=code, plugin_id=plugin_id, version=version.version, position=position))
                added["installations"] += 1
    added["people"] = _seed_people(session)
    added["funded accounts"] = _fund_customers(session)
    return added


#: What each demo customer finds in their payment account (minor units of CNY: 10,000.00).
DEMO_BALANCE = 1_000_000


def _fund_customers(session: Session) -> int:
    """Top up each demo customer who has never been funded, through the rail (the simulated one, unless the bank registered its own)."""
    from .payments import rails
    from .payments.models import Account, AccountKind

    funded = 0
    session.flush()
    for phone, *_ in CUSTOMERS:
        customer = session.scalar(select(Customer).where(Customer.phone == phone))
        has_account = session.scalar(select(Account.id).where(Account.kind == AccountKind.CUSTOMER,
                                                              Account.owner == customer.id, Account.currency == "CNY"))
        if has_account is None:
            rails.top_up(session, customer.id, DEMO_BALANCE, "CNY")
            funded += 1
    return funded


def _seed_people(session: Session) -> int:
    hasher, pins = services.hasher(), services.pin_hasher()
    added = 0
    for phone, password, pin, nickname, locale, branch in CUSTOMERS:
        if session.scalar(select(Customer).where(Customer.phone == phone)) is None:
            customer_id = new_id()  # the PIN's value is bound to the customer's id
            session.add(Customer(id=customer_id, phone=phone, password_hash=hasher.hash(password),
                                 pin_hash=pins.hash(customer_id, pin), nickname=nickname, locale=locale,
                                 branch_code=branch))
            added += 1
    for username, name, role, branch in STAFF:
        if session.scalar(select(Staff).where(Staff.username == username)) is None:
            session.add(Staff(username=username, display_name=name, password_hash=hasher.hash(DEMO_PASSWORD),
                              role=role, branch_code=branch))
            added += 1
    for org_id, name_zh, name_en, email, developer in PARTNERS:
        if session.get(PartnerOrg, org_id) is None:
            session.add(PartnerOrg(id=org_id, name_zh=name_zh, name_en=name_en))
            session.flush()
        if session.scalar(select(PartnerDeveloper).where(PartnerDeveloper.email == email)) is None:
            session.add(PartnerDeveloper(org_id=org_id, email=email, display_name=developer,
                                         password_hash=hasher.hash(DEMO_PASSWORD)))
            added += 1
    return added


def sign_ins() -> list[str]:
    """The demo sign-ins, as ``make run`` prints them."""
    lines = [f"customer  {phone} / {password}  (payment PIN {pin}, {branch})"
             for phone, password, pin, _, _, branch in CUSTOMERS]
    lines += [f"staff     {username} / {DEMO_PASSWORD}  ({role}{', ' + branch if branch else ''})"
              for username, _, role, branch in STAFF]
    lines += [f"partner   {email} / {DEMO_PASSWORD}  ({org_id})" for org_id, _, _, email, _ in PARTNERS]
    return lines
