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
    """Create the demo branches and installations that are missing; return counts of what was added."""
    added = {"branches": 0, "installations": 0}
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
    return added
