"""Releasing versions to customers: a branch mini-program published through the host, its gray
release to testers, a percentage and a branch, widened, released, rolled back and suspended —
each change seen by the storefront, the shell and the plugin's own origin on the very next
request, and each refused to the people it is not for."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from host.audit import AuditEvent
from host.db import get_database
from host.identity.models import Customer
from host.oauth.clients import active_client
from host.publishing import lifecycle, releases, rollout
from host.publishing.errors import InvalidInput, NotAllowed, PublishingRefused, WrongState
from host.publishing.models import PackageVersion, PluginRelease, PublisherNotification
from host.runtime import get_runtime

from .conftest import PLUGIN, act, customers, page, seen


def test_a_gray_release_goes_to_its_testers_then_everyone_and_rolls_back_on_the_next_request(shop, actors):
    people = customers(shop)
    lin, other = people["13800000001"][0], people["13900000002"][0]
    assert seen(shop, lin) is None  # approved is not released: nobody gets it
    act(shop, releases.start_gray, actors["sh.admin"], version="1.0.0", rule={"testers": [lin]})
    assert seen(shop, lin) == "1.0.0" and seen(shop, other) is None and seen(shop, None) is None
    act(shop, releases.release, actors["sh.admin"])
    assert seen(shop, lin) == seen(shop, other) == seen(shop, None) == "1.0.0"
    # 2.0.0 to Lin only; the frame's address carries the shell's choice for her
    act(shop, releases.start_gray, actors["hq.admin"], version="2.0.0", rule={"testers": [lin]})
    assert seen(shop, lin) == "2.0.0" and seen(shop, other) == "1.0.0"
    client = shop.test_client()
    with client.session_transaction() as cookie:
        cookie["customer_id"] = lin
    shell = client.get(f"/mp/{PLUGIN}/?branch=SH001&lang=en").get_data(as_text=True)
    assert "canopy_version=2.0.0" in shell
    assert page(shop, "2.0.0") == (200, page(shop, "2.0.0")[1]) and f"{PLUGIN} 2.0.0" in page(shop, "2.0.0")[1]
    assert f"{PLUGIN} 1.0.0" in page(shop)[1]  # no hint: what the branch's visitors get
    # rollback: everyone on 1.0.0 at the very next request, a stale hint included
    act(shop, releases.rollback, actors["sh.admin"], reason="coupons double-counted")
    assert seen(shop, lin) == seen(shop, other) == "1.0.0"
    assert f"{PLUGIN} 1.0.0" in page(shop, "2.0.0")[1]
    with get_database(shop).transaction() as session:
        statuses = dict(session.execute(select(PackageVersion.version, PackageVersion.status)
                                        .where(PackageVersion.plugin_id == PLUGIN)).all())
    assert statuses == {"1.0.0": "released", "2.0.0": "rolled_back"}


def test_a_release_supersedes_the_stable_version_and_a_rollback_restores_it(shop, actors):
    admin = actors["sh.admin"]
    for version in ("1.0.0", "2.0.0"):
        act(shop, releases.start_gray, admin, version=version, rule={"percent": 5})
        act(shop, releases.release, admin, reason="all good")
    with get_database(shop).transaction() as session:
        row = session.get(PluginRelease, PLUGIN)
        assert (row.stable, row.previous, row.gray) == ("2.0.0", "1.0.0", None)
        assert session.scalar(select(PackageVersion.status).where(PackageVersion.version == "1.0.0",
                                                                  PackageVersion.plugin_id == PLUGIN)) == "superseded"
    assert seen(shop, None) == "2.0.0"
    act(shop, releases.rollback, actors["hq.admin"], reason="payment failures")
    assert seen(shop, None) == "1.0.0"
    with get_database(shop).transaction() as session:
        row = session.get(PluginRelease, PLUGIN)
        assert (row.stable, row.previous) == ("1.0.0", None)
        history = [t.action for t in lifecycle.history(session, lifecycle.find(session, PLUGIN, "1.0.0"))]
    assert history[-3:] == ["release", "supersede", "restore"]
    with pytest.raises(WrongState, match="no earlier version"):
        act(shop, releases.rollback, admin, reason="again")


def test_percentages_and_branches_select_the_customers_the_rule_says(shop, actors):
    people = customers(shop)
    act(shop, releases.start_gray, actors["sh.admin"], version="1.0.0", rule={"testers": []})
    act(shop, releases.release, actors["sh.admin"])
    # a percentage between the demo customers' buckets, so some are in and some out
    buckets = sorted(rollout.bucket(PLUGIN, "2.0.0", cid) for cid, _ in people.values())
    cut = (buckets[len(buckets) // 2 - 1] + buckets[len(buckets) // 2]) // 2 + 1
    percent = cut / 100
    act(shop, releases.start_gray, actors["sh.admin"], version="2.0.0", rule={"percent": percent})
    expected = {cid: "2.0.0" if rollout.bucket(PLUGIN, "2.0.0", cid) < cut else "1.0.0" for cid, _ in people.values()}
    assert {cid: seen(shop, cid) for cid in expected} == expected
    assert set(expected.values()) == {"1.0.0", "2.0.0"}
    # widened to Beijing's customers: everyone inside before stays inside
    act(shop, releases.widen, actors["sh.admin"], rule={"percent": percent, "branches": ["BJ001"]})
    for cid, branch in people.values():
        assert seen(shop, cid) == ("2.0.0" if branch == "BJ001" else expected[cid])
    assert seen(shop, None, "SH001") == "1.0.0"  # an anonymous visitor of SH001 is in no segment
    with pytest.raises(InvalidInput, match="widening"):
        act(shop, releases.widen, actors["sh.admin"], rule={"percent": 1})


def test_the_kill_switch_stops_everything_of_the_plugin_on_the_next_request(shop, actors, demo_app):
    act(shop, releases.start_gray, actors["sh.admin"], version="1.0.0", rule={"percent": 100})
    assert seen(shop, None) is None and seen(shop, customers(shop)["13800000001"][0]) == "1.0.0"
    act(shop, releases.release, actors["sh.admin"])
    with pytest.raises(NotAllowed):
        act(shop, releases.suspend, actors["sh.admin"], reason="mine to stop?")
    act(shop, releases.suspend, actors["hq.admin"], reason="reported as phishing")
    assert seen(shop, None) is None
    assert page(shop)[0] == 404 and page(shop, "1.0.0")[0] == 404
    with pytest.raises(PublishingRefused):  # nothing moves while suspended
        act(shop, releases.start_gray, actors["sh.admin"], version="2.0.0", rule={"percent": 1})
    with get_database(shop).transaction() as session:
        assert releases.suspended(session, PLUGIN)
        note = session.scalars(select(PublisherNotification).where(PublisherNotification.action == "suspend_plugin")).one()
        assert note.publisher_id == "SH001" and "phishing" in note.message
    act(shop, releases.reinstate, actors["hq.admin"], reason="false report")
    assert seen(shop, None) == "1.0.0"


def test_a_suspended_plugins_token_stops_at_the_next_request_and_no_new_one_is_issued(publishing_app, partner_back_end,
                                                                                      actors):
    """The kill switch on a partner plugin with an OAuth client: its live token is refused on
    the very next call, a new one is not issued, and its customers' consents count for nothing."""
    from host.oauth.consent import LedgerConsentSource

    partner = partner_back_end()
    path = "/api/v1/publisher/plugins/cp.publisher/versions"
    assert partner.open("GET", path).status_code == 200
    database = get_database(publishing_app)
    with publishing_app.app_context(), database.transaction(write=True) as session:
        releases.suspend(session, actors["hq.admin"], "cp.publisher", reason="leaked key")
    refused = partner.open("GET", path)
    assert refused.status_code == 401 and refused.mimetype == "application/problem+json"
    assert partner.fetch_token().status_code in (400, 401)
    with database.transaction() as session:
        assert active_client(session, "cp.publisher") is None
        customer = session.scalar(select(Customer.id).limit(1))
    assert LedgerConsentSource(database).consented_scopes(customer, "cp.publisher") == frozenset()
    with publishing_app.app_context(), database.transaction(write=True) as session:
        releases.reinstate(session, actors["hq.admin"], "cp.publisher", reason="key rotated")
    assert partner.fetch_token().status_code == 200 and partner.open("GET", path).status_code == 200


@pytest.mark.parametrize("who, action", [
    ("sh.operator", releases.start_gray), ("bj.operator", releases.start_gray), ("citypower", releases.start_gray),
    ("hq.reviewer", releases.start_gray), ("sh.operator", releases.release), ("sh.operator", releases.rollback),
    ("hq.reviewer", releases.rollback), ("sh.admin", releases.suspend), ("citypower", releases.reinstate),
])
def test_the_permission_matrix_of_releasing(shop, actors, who, action):
    """An operator cannot release, a partner cannot release another's, a reviewer releases nothing."""
    act(shop, releases.start_gray, actors["sh.admin"], version="1.0.0", rule={"percent": 10})
    kwargs = {"version": "2.0.0", "rule": {"percent": 1}} if action is releases.start_gray else {"reason": "because"}
    if action is releases.start_gray:
        act(shop, releases.rollback, actors["sh.admin"], reason="make room")
    with get_database(shop).transaction() as session:
        before = session.scalar(select(func.count()).select_from(AuditEvent))
        row = session.get(PluginRelease, PLUGIN)
        state = (row.stable, row.gray, row.revision)
    with pytest.raises(NotAllowed):
        act(shop, action, actors[who], **kwargs)
    with get_database(shop).transaction() as session:
        row = session.get(PluginRelease, PLUGIN)
        assert (row.stable, row.gray, row.revision) == state  # nothing changed
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == before


@pytest.mark.parametrize("rule, field", [
    ("everyone", "rule"), ({"percent": 101}, "percent"), ({"percent": -1}, "percent"), ({"percent": "50"}, "percent"),
    ({"percent": True}, "percent"), ({"percent": 33.333}, "percent"), ({"branches": "SH001"}, "branches"),
    ({"branches": ["sh001"]}, "branches"), ({"tags": ["VIP!"]}, "tags"), ({"testers": ["x" * 32]}, "testers"),
    ({"testers": ["0" * 32] * 201}, "testers"), ({"everyone": True}, "rule"),
])
def test_a_bad_rule_is_refused_naming_its_field_and_nothing_changes(shop, actors, rule, field):
    with pytest.raises(InvalidInput) as caught:
        act(shop, releases.start_gray, actors["sh.admin"], version="1.0.0", rule=rule)
    assert any(name.endswith(field) for name in caught.value.errors), caught.value.errors
    with get_database(shop).transaction() as session:
        assert session.get(PluginRelease, PLUGIN) is None
        assert lifecycle.find(session, PLUGIN, "1.0.0").status == "approved"


def test_not_before_release_at(shop, actors):
    from datetime import timedelta

    from host.db import utcnow

    with shop.app_context(), get_database(shop).transaction(write=True) as session:
        lifecycle.find(session, PLUGIN, "1.0.0").release_at = utcnow() + timedelta(hours=1)
    with pytest.raises(WrongState, match="approved for release from"):
        act(shop, releases.start_gray, actors["sh.admin"], version="1.0.0", rule={"percent": 1})


def test_two_gray_releases_at_once_start_one(shop, actors):
    barrier, results = threading.Barrier(2), []

    def start(version):
        barrier.wait()
        try:
            act(shop, releases.start_gray, actors["sh.admin"], version=version, rule={"percent": 1})
            results.append("ok")
        except PublishingRefused as exc:
            results.append(type(exc).__name__)
        except Exception as exc:  # noqa: BLE001 - SQLite's or PostgreSQL's own conflict on the new row
            results.append(type(exc).__name__)

    threads = [threading.Thread(target=start, args=(v,)) for v in ("1.0.0", "2.0.0")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count("ok") == 1, results
    with get_database(shop).transaction() as session:
        gray = session.get(PluginRelease, PLUGIN).gray
        statuses = dict(session.execute(select(PackageVersion.version, PackageVersion.status)
                                        .where(PackageVersion.plugin_id == PLUGIN)).all())
    assert statuses[gray] == "gray" and sorted(statuses.values()) == ["approved", "gray"]


def test_the_runtime_serves_two_versions_side_by_side(shop, actors):
    act(shop, releases.start_gray, actors["sh.admin"], version="1.0.0", rule={"percent": 100})
    act(shop, releases.release, actors["sh.admin"])
    act(shop, releases.start_gray, actors["sh.admin"], version="2.0.0", rule={"percent": 50})
    seen(shop, None)
    for cid, _ in customers(shop).values():
        seen(shop, cid)
    runtime = get_runtime(shop)
    assert {key for key, loaded in runtime.released.items() if key[0] == PLUGIN and loaded} == {
        (PLUGIN, "1.0.0"), (PLUGIN, "2.0.0")}
    one, two = (runtime.released[(PLUGIN, v)].plugin for v in ("1.0.0", "2.0.0"))
    assert type(one).__module__ != type(two).__module__  # each version's own modules


def test_events_go_to_the_released_stable_version(shop, actors):
    from host.events.outbox import deliver_batch, emit
    from host.runtime.storage import PluginStorage

    database = get_database(shop)
    for version in ("1.0.0", "2.0.0"):
        act(shop, releases.start_gray, actors["sh.admin"], version=version, rule={"percent": 100})
        act(shop, releases.release, actors["sh.admin"])
        with database.transaction(write=True) as session:
            emit(session, "coupon.redeemed", plugin_id=PLUGIN, payload={"n": 1}, branch_code="SH001")
        with shop.app_context():
            assert deliver_batch(get_runtime(shop), database).delivered == 1
        assert PluginStorage(database, PLUGIN).get("last_event") == f"{version} coupon.redeemed"
    act(shop, releases.suspend, actors["hq.admin"], reason="hold")
    with database.transaction(write=True) as session:
        emit(session, "coupon.redeemed", plugin_id=PLUGIN, payload={"n": 2}, branch_code="SH001")
    with shop.app_context():
        assert deliver_batch(get_runtime(shop), database).claimed == 0  # waits for the reinstatement


def test_a_gray_pages_links_and_static_files_stay_in_its_version(shop, actors):
    act(shop, releases.start_gray, actors["sh.admin"], version="1.0.0", rule={"percent": 100})
    act(shop, releases.release, actors["sh.admin"])
    act(shop, releases.start_gray, actors["sh.admin"], version="2.0.0", rule={"percent": 1})
    status, html = page(shop, "2.0.0")
    assert status == 200 and "canopy_version=2.0.0" in html
    assert "/static/app.css?canopy_version=2.0.0" in html
    client = shop.test_client()
    css = f"http://{PLUGIN}.mp.localhost:8000/static/app.css"
    assert client.get(css + "?canopy_version=2.0.0").get_data(as_text=True) == "/* 2.0.0 */"
    assert client.get(css).get_data(as_text=True) == "/* 1.0.0 */"  # no version: the stable one's
    act(shop, releases.rollback, actors["sh.admin"], reason="back")
    assert client.get(css + "?canopy_version=2.0.0").get_data(as_text=True) == "/* 1.0.0 */"
