"""Storefront services: branches, and which zones a branch's storefront shows."""

from __future__ import annotations

import pytest
from sqlalchemy import event, select

from host.db import get_database
from host.runtime import get_runtime
from host.runtime.models import PluginRecord, PluginState, PluginVersion
from host.storefront.models import Branch, Installation
from host.storefront.services import UnknownBranch, branch_info, context_for, get_branch, is_plugin_id, zones


@pytest.fixture
def session(demo_app):
    with get_database(demo_app).transaction(write=True) as s:
        yield s


def test_get_branch(session):
    branch = get_branch(session, "SH001")
    assert (branch.code, branch.name_zh, branch.name_en, branch.parent_code) == ("SH001", "上海分行", "Shanghai Branch", "HQ")


@pytest.mark.parametrize("code", ["XX999", "sh001", "", "A" * 17, "HQ\x00", "\x00", "上海", None, 42])
def test_unknown_or_impossible_branch_codes(session, code):
    with pytest.raises(UnknownBranch) as caught:
        get_branch(session, code)
    assert repr(code) in str(caught.value)


def test_impossible_codes_never_reach_the_database(demo_app, session):
    statements = []
    engine = get_database(demo_app).engine
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        for code in ("A" * 17, "HQ\x00"):
            with pytest.raises(UnknownBranch):
                get_branch(session, code)
        assert zones(session, get_runtime(demo_app), "HQ", "bad\x00id") == []
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert statements == []


def test_branch_info_in_each_locale(session):
    branch = get_branch(session, "SH001-PD")
    assert branch_info(branch, "en") == branch_info(branch, "en-GB")
    info = branch_info(branch, "en")
    assert (info.code, info.name, info.parent) == ("SH001-PD", "Shanghai Pudong Sub-branch", "SH001")
    assert branch_info(branch, "zh-CN").name == "上海浦东支行"
    assert branch_info(get_branch(session, "HQ"), "en").parent is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [("wealth.checkup", True), ("sh.deals", True), ("a-b", True), ("ab", False), ("a" * 65, False),
     ("Wealth.checkup", False), ("a..b", False), (".ab", False), ("ab\x00", False), ("财富", False), ("", False)],
)
def test_is_plugin_id(value, expected):
    assert is_plugin_id(value) is expected


def test_zones_are_the_installed_active_loaded_plugins_in_position_order(demo_app, session):
    runtime = get_runtime(demo_app)
    found = zones(session, runtime, "SH001")
    assert [zone.plugin_id for zone in found][:2] == ["wealth.checkup", "sh.deals"]
    assert [zone.position for zone in found] == sorted(zone.position for zone in found)
    for zone in found:
        assert zone.plugin is runtime.plugins[zone.plugin_id]
        assert zone.version.state == PluginState.ACTIVE
        assert zone.version.checksum == zone.plugin.checksum


def test_zones_can_be_narrowed_to_one_plugin(demo_app, session):
    runtime = get_runtime(demo_app)
    assert [z.plugin_id for z in zones(session, runtime, "SH001", "sh.deals")] == ["sh.deals"]
    assert zones(session, runtime, "BJ001", "sh.deals") == []
    assert zones(session, runtime, "SH001", "no.such.plugin") == []
    assert zones(session, runtime, "NOWHERE") == []


def test_a_plugin_not_loaded_has_no_zone(demo_app, session):
    # registered, active and installed, but not loaded by this process
    session.add(PluginRecord(id="ghost.plugin", publisher_kind="bank", publisher_id="HQ", name={"zh": "幽灵", "en": "Ghost"}))
    session.add(PluginVersion(plugin_id="ghost.plugin", version="1.0.0", manifest={}, checksum="sha256:" + "0" * 64, source="x"))
    session.add(Installation(branch_code="GZ001", plugin_id="ghost.plugin", version="1.0.0", position=-1))
    session.flush()
    assert [z.plugin_id for z in zones(session, get_runtime(demo_app), "GZ001")] == ["wealth.checkup"]


def test_a_disabled_version_has_no_zone(demo_app, session):
    session.scalars(select(PluginVersion).where(PluginVersion.plugin_id == "sh.deals")).one().state = PluginState.DISABLED
    session.flush()
    assert "sh.deals" not in [z.plugin_id for z in zones(session, get_runtime(demo_app), "SH001")]


def test_an_installation_of_another_version_has_no_zone(demo_app, session):
    original = session.scalars(select(PluginVersion).where(PluginVersion.plugin_id == "sh.deals")).one()
    session.add(
        PluginVersion(
            plugin_id="sh.deals", version="9.9.9", manifest=original.manifest, checksum=original.checksum, source="test"
        )
    )
    for installation in session.scalars(select(Installation).where(Installation.plugin_id == "sh.deals")):
        installation.version = "9.9.9"
    session.flush()
    assert "sh.deals" not in [z.plugin_id for z in zones(session, get_runtime(demo_app), "SH001")]


def test_context_for_builds_the_plugins_context(demo_app, session):
    runtime = get_runtime(demo_app)
    (zone,) = zones(session, runtime, "SH001", "sh.deals")
    ctx = context_for(runtime, zone, session.get(Branch, "SH001"), "en")
    assert ctx.plugin_id == "sh.deals"
    assert ctx.locale == "en"
    assert (ctx.branch.code, ctx.branch.name, ctx.branch.parent) == ("SH001", "Shanghai Branch", "HQ")
    assert ctx.customer is None  # every visitor is anonymous for now
