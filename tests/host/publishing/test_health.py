"""The automatic rollback: a gray version that fails its customers' calls, or whose payments
fail, is rolled back by the host with the evidence recorded; a healthy one is left alone."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from host.audit import AuditEvent
from host.db import get_database, utcnow
from host.payments.models import Account, IntentState, PaymentIntent
from host.publishing import health, lifecycle, releases
from host.publishing.health import Thresholds
from host.publishing.models import PluginRelease, PublisherNotification, ReleaseHealth

from .conftest import PLUGIN, act, customers, make_shop, seen

#: 2.0.0's tile fails: what a bad release looks like from the storefront.
BROKEN = b'''from canopy_sdk import Tile, hookimpl


class Plugin:
    @hookimpl
    def canopy_storefront_tiles(self, ctx):
        raise RuntimeError("the new coupon query breaks")


plugin = Plugin()
'''
STRICT = {"min_calls": 6, "max_error_rate": 0.5, "min_payments": 4, "max_payment_failure_rate": 0.25,
          "flush_seconds": 0}


@pytest.fixture
def strict_shop(app_factory, seed_demo, actors, package_zip):
    """The shop, in an app whose thresholds act on a handful of calls, flushing on every call."""
    app = seed_demo(app_factory(RELEASE_AUTO_ROLLBACK=STRICT))
    make_shop(app, actors, package_zip, codes={"2.0.0": BROKEN})
    act(app, releases.start_gray, actors["sh.admin"], version="1.0.0", rule={"percent": 100})
    act(app, releases.release, actors["sh.admin"])
    return app


def release_row(app) -> PluginRelease:
    with get_database(app).transaction() as session:
        row = session.get(PluginRelease, PLUGIN)
        session.expunge(row)
        return row


def test_a_gray_version_whose_calls_fail_is_rolled_back_with_its_evidence(strict_shop, actors):
    people = [cid for cid, _ in customers(strict_shop).values()]
    act(strict_shop, releases.start_gray, actors["sh.admin"], version="2.0.0", rule={"testers": people})
    for cid in people[:3]:
        assert seen(strict_shop, cid) is None  # the zone of a failing tile shows no tile
    assert release_row(strict_shop).gray == "2.0.0"  # 3 calls: not enough to judge
    for cid in people[3:6]:
        seen(strict_shop, cid)
    row = release_row(strict_shop)
    assert (row.gray, row.stable) == (None, "1.0.0")
    assert seen(strict_shop, people[0]) == "1.0.0"  # the very next request
    with get_database(strict_shop).transaction() as session:
        version = lifecycle.find(session, PLUGIN, "2.0.0")
        assert version.status == "rolled_back" and version.status_reason.startswith("automatic rollback: error rate")
        last = lifecycle.history(session, version)[-1]
        assert (last.action, last.actor) == ("rollback", "system:auto-rollback")
        evidence = session.scalars(select(AuditEvent).where(AuditEvent.action == "publishing.auto_rollback")).one()
        assert evidence.detail["evidence"]["errors"] == evidence.detail["evidence"]["calls"] >= 6
        assert session.scalars(select(PublisherNotification).where(PublisherNotification.version == "2.0.0",
                                                                   PublisherNotification.action == "rollback")).one()


def test_calls_of_published_versions_are_counted_and_without_a_gray_version_nothing_rolls_back(strict_shop):
    people = [cid for cid, _ in customers(strict_shop).values()]
    with get_database(strict_shop).transaction() as session:
        counts = session.scalar(select(ReleaseHealth.calls).where(ReleaseHealth.version == "1.0.0").limit(1))
    assert counts is None  # nothing measured yet: 1.0.0 was never gray while called
    for cid in people[:8]:
        assert seen(strict_shop, cid) == "1.0.0"
    with get_database(strict_shop).transaction() as session:
        calls = sum(session.scalars(select(ReleaseHealth.calls).where(ReleaseHealth.version == "1.0.0")))
    assert calls == 8  # the stable version's calls are counted too
    assert health.auto_rollback(get_database(strict_shop), Thresholds(**STRICT)) == []  # no gray version: nothing


def failed_payments(app, customer_ids, states) -> None:
    """Intents of sh.coupons for these customers, decided as ``states`` say."""
    now = utcnow()
    with get_database(app).transaction(write=True) as session:
        account = session.scalar(select(Account.id).limit(1))
        for customer_id, state in zip(customer_ids, states):
            session.add(PaymentIntent(id=f"pi_{uuid.uuid4().hex}", plugin_id=PLUGIN, merchant_account_id=account,
                                      customer_id=customer_id, amount=100, currency="CNY", description="coupon",
                                      state=state, created_at=now, expires_at=now + timedelta(minutes=15),
                                      updated_at=now))


def test_failing_payments_of_the_gray_customers_roll_it_back_and_others_do_not_count(strict_shop, actors):
    people = [cid for cid, _ in customers(strict_shop).values()]
    gray, others = people[:5], people[5:]
    act(strict_shop, releases.start_gray, actors["sh.admin"], version="2.0.0", rule={"testers": gray})
    # customers outside the gray release failing to pay say nothing about 2.0.0
    failed_payments(strict_shop, others, [IntentState.FAILED] * len(others))
    assert health.auto_rollback(get_database(strict_shop), Thresholds(**STRICT)) == []
    failed_payments(strict_shop, gray, [IntentState.SUCCEEDED, IntentState.SUCCEEDED, IntentState.FAILED,
                                        IntentState.FAILED, IntentState.CANCELED])
    assert health.auto_rollback(get_database(strict_shop), Thresholds(**STRICT)) == [PLUGIN]
    assert release_row(strict_shop).gray is None
    with get_database(strict_shop).transaction() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "publishing.auto_rollback")).one()
    assert event.detail["evidence"]["payments"] == 4 and event.detail["evidence"]["payment_failures"] == 2
    # a second process looking at the same figures finds the gray version gone and does nothing
    assert health.auto_rollback(get_database(strict_shop), Thresholds(**STRICT)) == []
    assert release_row(strict_shop).stable == "1.0.0"


def test_a_rollback_aimed_at_one_gray_version_never_touches_another(strict_shop, actors):
    from host.publishing.errors import WrongState

    with pytest.raises(WrongState, match="not in gray release"):
        act(strict_shop, releases.rollback, releases.AUTO_ROLLBACK, reason="stale figures", gray="2.0.0")
    assert release_row(strict_shop).stable == "1.0.0"


@pytest.mark.parametrize("setting", [{"max_error_rate": 0.1, "typo": 1}, {"window_seconds": "soon"}, "on"])
def test_a_bad_setting_stops_the_start_naming_it(app_factory, setting):
    from host.config import ConfigError

    with pytest.raises(ConfigError, match="RELEASE_AUTO_ROLLBACK"):
        app_factory(RELEASE_AUTO_ROLLBACK=setting)


def test_no_calls_and_no_payments_call_for_nothing_even_with_zero_minimums():
    figures = {"calls": 0, "errors": 0, "error_rate": None, "payments": 0, "payment_failures": 0,
               "payment_failure_rate": None}
    assert health.verdict(figures, Thresholds(min_calls=0, min_payments=0)) is None


def test_payments_are_counted_per_customer_the_gray_rule_selects_by_tag(strict_shop, actors):
    from host.storefront.models import CustomerTag

    people = [cid for cid, _ in customers(strict_shop).values()]
    tagged, untagged = people[:3], people[3:6]
    with get_database(strict_shop).transaction(write=True) as session:
        session.add_all([CustomerTag(customer_id=cid, tag="pilot") for cid in tagged])
        session.add(CustomerTag(customer_id=untagged[0], tag="wealth"))  # another tag: not selected
    act(strict_shop, releases.start_gray, actors["sh.admin"], version="2.0.0", rule={"tags": ["pilot"]})
    # several payments per customer, in and out of the gray audience
    plan = {tagged[0]: [IntentState.SUCCEEDED] * 3 + [IntentState.FAILED],
            tagged[1]: [IntentState.FAILED, IntentState.CANCELED],
            tagged[2]: [IntentState.SUCCEEDED],
            untagged[0]: [IntentState.FAILED] * 4,
            untagged[1]: [IntentState.FAILED]}
    for customer_id, states in plan.items():
        failed_payments(strict_shop, [customer_id] * len(states), states)
    with get_database(strict_shop).transaction() as session:
        figures = health.measure(session, session.get(PluginRelease, PLUGIN), utcnow(), timedelta(minutes=10))

    decided = [s for cid in tagged for s in plan.get(cid, []) if s in (IntentState.SUCCEEDED, IntentState.FAILED)]
    assert (figures["payments"], figures["payment_failures"]) == (len(decided), decided.count(IntentState.FAILED))
    assert (figures["payments"], figures["payment_failures"]) == (6, 2)
