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
from .storefront.models import Branch, CustomerTag, Installation, OperatingRight, StorefrontSlot

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
    _seed_storefront(session)
    return added


#: Banners and feed cards: (branch or None for bank-wide, kind, zh, en, body zh, body en, image, link, tags, position).
SLOTS = [
    (None, "banner", "手机银行新春礼遇", "New Year offers in the app", "领红包、享优惠，全行同庆", "Red packets and offers, bank-wide",
     "/static/storefront/banner-bank.svg", "mp:wealth.checkup/", [], 0),
    (None, "banner", "理财客户专享", "For our wealth clients", "两分钟体检，看看您的配置", "A two-minute check-up of your mix",
     "/static/storefront/banner-wealth.svg", "mp:wealth.checkup/", ["wealth"], 5),
    (None, "feed", "谨防电信诈骗", "Beware of phone scams", "银行不会索要您的密码或验证码。",
     "The bank never asks for your password or codes.", "", "", [], 0),
    ("SH001", "banner", "上海商圈周末优惠", "Shanghai weekend deals", "咖啡、小笼、书店，附近就有", "Coffee, dumplings, books nearby",
     "/static/storefront/banner-shanghai.svg", "mp:sh.deals/", [], 10),
    ("SH001", "feed", "浦东支行新址开业", "Pudong sub-branch has moved", "欢迎到新网点办理业务。", "Visit us at our new address.",
     "", "", [], 10),
    ("SH001", "feed", "今日优惠已更新", "Today's deals are in", "每人每券限领一张，先到先得。", "One per customer while stocks last.",
     "", "mp:sh.deals/", [], 20),
    ("HQ", "feed", "总行精选：财富体检", "Head office pick: wealth check-up", "六个问题了解您的风险偏好。",
     "Six questions about your attitude to risk.", "", "mp:wealth.checkup/", [], 10),
]
#: Operating rights head office grants the demo branches.
RIGHTS = {"SH001": ["banners", "feed", "grid", "installs"], "BJ001": ["banners", "feed"], "SH001-PD": ["banners"]}
#: Tags of demo customers (by phone), for targeted slots.
TAGS = {"13800000001": ["wealth"]}


def _seed_storefront(session: Session) -> None:
    """Banners, feed cards, operating rights and customer tags that are missing (by title and place)."""
    session.flush()
    for branch, kind, zh, en, body_zh, body_en, image, link, tags, position in SLOTS:
        where = StorefrontSlot.branch_code.is_(None) if branch is None else StorefrontSlot.branch_code == branch
        if session.scalar(select(StorefrontSlot.id).where(where, StorefrontSlot.kind == kind, StorefrontSlot.title_en == en)) is None:
            session.add(StorefrontSlot(branch_code=branch, kind=kind, title_zh=zh, title_en=en, body_zh=body_zh, body_en=body_en,
                                       image=image, link=link, tags=tags, position=position, updated_by="demo"))
    for branch, rights in RIGHTS.items():
        for right in rights:
            if session.get(OperatingRight, (branch, right)) is None:
                session.add(OperatingRight(branch_code=branch, right=right, granted_by="demo"))
    for phone, tags in TAGS.items():
        customer_id = session.scalar(select(Customer.id).where(Customer.phone == phone))
        for tag in tags:
            if customer_id is not None and session.get(CustomerTag, (customer_id, tag)) is None:
                session.add(CustomerTag(customer_id=customer_id, tag=tag))


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
