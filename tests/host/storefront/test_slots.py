"""Banners and feed cards: what a storefront shows (schedule, targeting, bank-wide), checking
what staff send, and the operating-rights checks."""

from __future__ import annotations

import re
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import delete, event, select

from host.db import get_database, utcnow
from host.demo import CUSTOMERS
from host.identity.models import Customer, Staff, StaffRole
from host.runtime import get_runtime
from host.runtime.registry import sync_registry
from host.storefront import rights
from host.storefront.errors import InvalidChange, NotAllowed
from host.storefront.models import CustomerTag, Installation, StorefrontSlot
from host.storefront.rights import Action, Allowed, Denied, check
from host.storefront.slots import create_slot, read_slot, slot_href, storefront_slots

ROOT = Path(__file__).resolve().parents[3]
NOW = datetime(2025, 3, 4, 6, 0, tzinfo=timezone.utc)


@pytest.fixture
def session(demo_app):
    with demo_app.test_request_context("/?lang=en"), get_database(demo_app).transaction(write=True) as s:
        s.execute(delete(StorefrontSlot))  # each test lays out its own
        yield s


def add(session, title: str, *, branch: str | None = "SH001", kind: str = "banner", position: int = 0,
        starts: datetime | None = None, ends: datetime | None = None, tags: list[str] | None = None, link: str = "") -> None:
    session.add(StorefrontSlot(kind=kind, branch_code=branch, title_zh=title, title_en=title, position=position,
                               starts_at=starts, ends_at=ends, tags=tags or [], link=link, updated_by="test"))
    session.flush()


def titles(session, branch: str = "SH001", customer_id: str | None = None, now: datetime = NOW, kind: str = "banner"):
    return [slot.title for slot in storefront_slots(session, branch, "en", customer_id, now)[kind]]


def first_customer(session) -> str:
    return session.scalars(select(Customer.id).where(Customer.phone == CUSTOMERS[0][0])).one()


# -- what a storefront shows ---------------------------------------------------------------------


def test_bank_wide_slots_show_on_every_storefront_with_the_branchs_own(session):
    add(session, "bank", branch=None, position=1)
    add(session, "sh", position=1)
    add(session, "bj", branch="BJ001")
    add(session, "first", position=0)
    assert titles(session, "SH001") == ["first", "bank", "sh"]  # by position, bank-wide first on a tie
    assert titles(session, "BJ001") == ["bj", "bank"]
    assert titles(session, "GZ001") == ["bank"]


@pytest.mark.parametrize(
    ("starts", "ends", "shown"),
    [(None, None, True), (NOW, None, True), (NOW + timedelta(seconds=1), None, False),
     (None, NOW, False), (None, NOW + timedelta(seconds=1), True), (NOW - timedelta(days=1), NOW + timedelta(days=1), True),
     (NOW - timedelta(days=2), NOW - timedelta(days=1), False)],
)
def test_schedules_are_evaluated_in_utc_against_now(session, starts, ends, shown):
    add(session, "scheduled", starts=starts, ends=ends)
    assert titles(session, now=NOW) == (["scheduled"] if shown else [])


def test_a_schedule_in_another_zone_means_the_same_instant(session):
    shanghai = timezone(timedelta(hours=8))
    add(session, "from 14:00 in Shanghai", starts=datetime(2025, 3, 4, 14, 0, tzinfo=shanghai))
    assert titles(session, now=NOW - timedelta(seconds=1)) == []
    assert titles(session, now=NOW) == ["from 14:00 in Shanghai"]


def test_targeted_slots_show_only_to_signed_in_customers_with_a_tag(session):
    customer = first_customer(session)
    add(session, "everyone")
    add(session, "wealth", tags=["wealth", "vip"], position=1)
    assert titles(session, customer_id=None) == ["everyone"]
    assert titles(session, customer_id=customer) == ["everyone", "wealth"]  # the demo tags them "wealth"
    session.execute(delete(CustomerTag))
    assert titles(session, customer_id=customer) == ["everyone"]
    session.add(CustomerTag(customer_id=customer, tag="vip"))
    session.flush()
    assert titles(session, customer_id=customer) == ["everyone", "wealth"]


def test_banners_and_feed_are_apart(session):
    add(session, "a banner")
    add(session, "a card", kind="feed")
    assert titles(session) == ["a banner"] and titles(session, kind="feed") == ["a card"]


def test_links_lead_into_the_mini_program_on_this_branch(session):
    assert slot_href("mp:sh.deals/deal?id=7&branch=EVIL", "SH001", "en") == "/mp/sh.deals/deal?id=7&branch=SH001&lang=en"
    assert slot_href("mp:wealth.checkup", "BJ001", "zh-CN") == "/mp/wealth.checkup/?branch=BJ001&lang=zh-CN"
    assert slot_href("https://bank.example/offer", "SH001", "en") == "https://bank.example/offer"
    assert slot_href("", "SH001", "en") == ""


# -- checking what staff send ---------------------------------------------------------------------


def test_read_slot_cleans_a_good_form(session):
    clean = read_slot(session, {"title_zh": " 春 ", "title_en": "Spring", "link": "mp:sh.deals/",
                                "image": "/static/storefront/banner-bank.svg", "starts_at": "2025-03-04T06:00",
                                "ends_at": "2025-03-05T06:00:00+08:00", "tags": "vip, wealth, vip", "position": "7"})
    assert clean["title_zh"] == "春" and clean["tags"] == ["vip", "wealth"] and clean["position"] == 7
    assert clean["starts_at"] == NOW and clean["ends_at"] == datetime(2025, 3, 4, 22, 0, tzinfo=timezone.utc)


def test_read_slot_names_every_wrong_field_at_once(session):
    with pytest.raises(InvalidChange) as caught:
        read_slot(session, {"title_en": "", "link": "javascript:alert(1)", "image": "http://x.example/a.png",
                            "starts_at": "2025-03-05T00:00", "ends_at": "2025-03-04T00:00", "tags": ["BAD TAG"]}, kind="popup")
    assert set(caught.value.errors) == {"kind", "title_zh", "title_en", "link", "image", "ends_at", "tags"}


@pytest.mark.parametrize("data", [None, [], "text", {"title_zh": 5, "title_en": ["x"]}, {"tags": {"a": 1}},
                                  {"position": True}, {"starts_at": 12}])
def test_read_slot_refuses_junk_without_raising_anything_else(session, data):
    with pytest.raises(InvalidChange):
        read_slot(session, data)


# -- the rights checks --------------------------------------------------------------------------------


def staff(role: str, branch: str | None = None) -> Staff:
    return Staff(username=f"{role}@{branch}", display_name="x", password_hash="x", role=role, branch_code=branch)


ALL = frozenset(rights.RIGHTS)


@pytest.mark.parametrize(
    ("who", "action", "branch", "granted", "allowed"),
    [
        (staff(StaffRole.HQ_ADMIN), Action.BANK_SLOTS, None, (), True),
        (staff(StaffRole.HQ_ADMIN), Action.INSTALLS, "GZ001", (), True),
        (staff(StaffRole.HQ_ADMIN), Action.RIGHTS, "SH001", (), True),
        (staff(StaffRole.HQ_REVIEWER), Action.VIEW, "GZ001", (), True),
        (staff(StaffRole.HQ_REVIEWER), Action.BANNERS, "GZ001", ALL, False),
        (staff(StaffRole.BRANCH_OPERATOR, "SH001"), Action.BANNERS, "SH001", ALL, True),
        (staff(StaffRole.BRANCH_OPERATOR, "SH001"), Action.BANNERS, "SH001", {"feed"}, False),
        (staff(StaffRole.BRANCH_OPERATOR, "SH001"), Action.BANNERS, "BJ001", ALL, False),
        (staff(StaffRole.BRANCH_OPERATOR, "SH001"), Action.GRID, "SH001", ALL, True),
        (staff(StaffRole.BRANCH_OPERATOR, "SH001"), Action.INSTALLS, "SH001", ALL, False),
        (staff(StaffRole.BRANCH_OPERATOR, "SH001"), Action.BANK_SLOTS, None, ALL, False),
        (staff(StaffRole.BRANCH_OPERATOR, "SH001"), Action.VIEW, "SH001", (), True),
        (staff(StaffRole.BRANCH_OPERATOR, "SH001"), Action.VIEW, None, (), True),
        (staff(StaffRole.BRANCH_OPERATOR, "SH001"), Action.VIEW, "SH001-PD", (), False),
        (staff(StaffRole.BRANCH_ADMIN, "SH001"), Action.INSTALLS, "SH001", ALL, True),
        (staff(StaffRole.BRANCH_ADMIN, "SH001"), Action.INSTALLS, "SH001", ALL - {"installs"}, False),
        (staff(StaffRole.BRANCH_ADMIN, "SH001"), Action.RIGHTS, "SH001", ALL, False),
        (staff(StaffRole.BRANCH_ADMIN, "SH001"), Action.BRANCHES, None, ALL, False),
        (staff(StaffRole.BRANCH_ADMIN, None), Action.BANNERS, "SH001", ALL, False),
        (staff("janitor", "SH001"), Action.BANNERS, "SH001", ALL, False),
        (None, Action.VIEW, "SH001", ALL, False),
    ],
)
def test_the_rights_matrix(demo_app, who, action, branch, granted, allowed):
    with demo_app.test_request_context("/?lang=en"):
        verdict = check(who, action, branch, granted)
    assert isinstance(verdict, Allowed if allowed else Denied)
    assert bool(verdict) is allowed and verdict.reason


def test_a_refusal_writes_nothing_and_says_why(session):
    operator = session.scalars(select(Staff).where(Staff.username == "bj.operator")).one()
    with pytest.raises(NotAllowed) as caught:
        create_slot(session, operator, "SH001", "banner", {"title_zh": "x", "title_en": "x"})
    assert "BJ001" in str(caught.value) and caught.value.branch == "SH001" and caught.value.action == "banners"
    assert session.scalars(select(StorefrontSlot)).all() == []


# -- the storefront page ------------------------------------------------------------------------------


def sign_in_customer(demo_app, client):
    with get_database(demo_app).transaction() as s:
        customer = first_customer(s)
    with client.session_transaction() as cookie:
        cookie["customer_id"] = customer
    return customer


def test_the_demo_storefront_has_banners_a_grid_and_a_feed(client):
    html = client.get("/s/SH001?lang=en").get_data(as_text=True)
    assert re.findall(r'data-grid="([^"]+)"', html)[:2] == ["wealth.checkup", "sh.deals"]
    assert 'data-scope="bank"' in html and 'data-scope="branch"' in html
    assert "New Year offers in the app" in html and "Shanghai weekend deals" in html
    assert "Beware of phone scams" in html and "Today&#39;s deals are in" in html
    assert "For our wealth clients" not in html  # targeted at a tag; nobody is signed in
    assert 'href="/mp/sh.deals/?branch=SH001&amp;lang=en"' in html
    other = client.get("/s/BJ001?lang=en").get_data(as_text=True)
    assert "New Year offers in the app" in other and "Shanghai weekend deals" not in other
    assert 'href="/s/SH001"' in other  # other branches are a tap away


def test_a_signed_in_customers_home_is_their_branch_and_shows_their_targeted_slots(demo_app):
    client = demo_app.test_client()
    sign_in_customer(demo_app, client)
    response = client.get("/")
    assert response.status_code == 303 and response.headers["Location"].endswith("/s/SH001")
    html = client.get("/s/SH001?lang=en").get_data(as_text=True)
    assert "For our wealth clients" in html and "Hello, " in html
    assert "For our wealth clients" in client.get("/s/BJ001?lang=en").get_data(as_text=True)  # they can visit others


def test_a_slot_whose_schedule_ended_disappears(demo_app, client):
    with get_database(demo_app).transaction(write=True) as s:
        s.scalars(select(StorefrontSlot).where(StorefrontSlot.title_en == "Shanghai weekend deals")).one().ends_at = utcnow()
    assert "Shanghai weekend deals" not in client.get("/s/SH001?lang=en").get_data(as_text=True)


def test_slot_texts_are_escaped(demo_app, client):
    with get_database(demo_app).transaction(write=True) as s:
        add(s, '<img src=x onerror=alert(1)>')
    html = client.get("/s/SH001").get_data(as_text=True)
    assert "<img src=x onerror" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_a_nickname_with_markup_is_escaped_in_the_greeting(demo_app):
    client = demo_app.test_client()
    customer = sign_in_customer(demo_app, client)
    with get_database(demo_app).transaction(write=True) as s:
        s.get(Customer, customer).nickname = "<b>me</b>"
    html = client.get("/s/SH001?lang=en").get_data(as_text=True)
    assert "<b>me</b>" not in html and "&lt;b&gt;me&lt;/b&gt;" in html


TILES = """
from canopy_sdk import Tile, hookimpl

@hookimpl
def canopy_storefront_tiles(ctx):
    return [Tile(title="tile of " + ctx.plugin_id)]
"""


def _write(root: Path, plugin_id: str) -> None:
    folder = root / plugin_id.replace(".", "_")
    folder.mkdir(parents=True)
    (folder / "plugin.toml").write_text(textwrap.dedent(f"""\
        id = "{plugin_id}"
        name = {{ zh = "测试", en = "Test {plugin_id}" }}
        version = "1.0.0"
        publisher = {{ kind = "bank", id = "HQ" }}
        entry = "impl"
        pages = [{{ path = "/", title = {{ zh = "首页", en = "Home" }} }}]
        """), encoding="utf-8")
    (folder / "impl.py").write_text(TILES, encoding="utf-8")


def test_the_number_of_queries_does_not_grow_with_installed_plugins(app_factory, tmp_path, seed_demo):
    root = tmp_path / "many"
    for number in range(8):
        _write(root, f"test.p{number}")
    app = app_factory(PLUGIN_PATHS=[str(ROOT / "plugins"), str(root)])
    seed_demo(app)
    client = app.test_client()
    sign_in_customer(app, client)
    statements: list[str] = []
    engine = get_database(app).engine

    def count(path: str) -> int:
        statements.clear()
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(engine, "before_cursor_execute", listener)
        try:
            assert client.get(path).status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        return len(statements)

    def install(count_: int) -> None:
        with get_database(app).transaction(write=True) as s:
            s.execute(delete(Installation).where(Installation.branch_code == "GZ001"))
            for number in range(count_):
                s.add(Installation(branch_code="GZ001", plugin_id=f"test.p{number}", version="1.0.0", position=number))

    install(1)
    one = count("/s/GZ001")
    install(8)
    eight = count("/s/GZ001")
    html = client.get("/s/GZ001").get_data(as_text=True)
    assert html.count('data-grid="test.p') == 8 and html.count("tile of test.p") == 8
    assert one == eight, statements
