"""``/api/v1/publisher/plugins/<id>/rollout``, the kill switch and promotion over HTTP: the happy
path, and every malformed, oversized, hostile and unauthorised request answered with a problem
document that names the reason, changing nothing and audited."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from host.audit import AuditEvent
from host.db import get_database
from host.problems import PROBLEM_JSON
from host.publishing.models import PluginPromotion, PluginRelease
from tests.host.publishing.conftest import PLUGIN, make_shop, seen

ROLLOUT = f"/api/v1/publisher/plugins/{PLUGIN}/rollout"


@pytest.fixture
def shop(demo_app, actors, package_zip):
    return make_shop(demo_app, actors, package_zip)


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM_JSON
    return response.get_json()


def release(app) -> tuple:
    with get_database(app).transaction() as session:
        row = session.get(PluginRelease, PLUGIN)
        return None if row is None else (row.stable, row.gray, row.revision, row.suspended_at)


def test_a_branch_admin_grays_widens_releases_and_rolls_back_over_http(shop, staff_client):
    admin = staff_client("sh.admin")
    body = admin.get(ROLLOUT).get_json()
    assert body == {"plugin_id": PLUGIN, "stable": None, "gray": None, "gray_rule": None, "previous": None,
                    "suspended": False, "suspended_reason": None}
    answer = admin.post(f"{ROLLOUT}/gray", json={"version": "1.0.0", "rule": {"percent": 10}, "reason": "pilot"})
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["gray"] == "1.0.0"
    assert answer.get_json()["gray_rule"] == {"branches": [], "tags": [], "testers": [], "percent": 10.0}
    assert admin.post(f"{ROLLOUT}/widen", json={"rule": {"percent": 100}}).get_json()["gray_rule"]["percent"] == 100.0
    assert admin.post(f"{ROLLOUT}/release", json={"reason": "fine"}).get_json()["stable"] == "1.0.0"
    assert seen(shop, None) == "1.0.0"
    admin.post(f"{ROLLOUT}/gray", json={"version": "2.0.0", "rule": {"percent": 100}})
    admin.post(f"{ROLLOUT}/release", json={})
    assert seen(shop, None) == "2.0.0"
    assert admin.post(f"{ROLLOUT}/rollback", json={"reason": "bad"}).get_json()["stable"] == "1.0.0"
    assert seen(shop, None) == "1.0.0"


@pytest.mark.parametrize("user, path, body, status, words", [
    ("sh.operator", "gray", {"version": "1.0.0", "rule": {"percent": 5}}, 403, "branch_admin"),
    ("bj.operator", "gray", {"version": "1.0.0", "rule": {"percent": 5}}, 403, "do not publish"),
    ("hq.reviewer", "gray", {"version": "1.0.0", "rule": {"percent": 5}}, 403, "do not publish"),
    ("sh.admin", "gray", {"rule": {"percent": 5}}, 422, "version"),
    ("sh.admin", "gray", {"version": "1.0.0", "rule": {"percent": 500}}, 422, "percent"),
    ("sh.admin", "gray", {"version": "9.9.9", "rule": {"percent": 5}}, 404, "9.9.9"),
    ("sh.admin", "gray", {"version": "1.0.0", "rule": {"percent": 5}, "extra": 1}, 422, "extra"),
    ("sh.admin", "release", {"version": "1.0.0"}, 422, "version"),
    ("sh.admin", "release", {}, 409, "no version in gray release"),
    ("sh.admin", "rollback", {}, 422, "reason"),
    ("sh.admin", "rollback", {"reason": "x" * 1001}, 422, "1000"),
    ("sh.admin", "widen", {"rule": {"percent": 5}}, 409, "no version in gray release"),
])
def test_refusals_name_the_reason_and_change_nothing(shop, staff_client, user, path, body, status, words):
    before = release(shop)
    answer = problem(staff_client(user).post(f"{ROLLOUT}/{path}", json=body), status)
    assert words in str(answer), answer
    assert release(shop) == before


def test_malformed_oversized_and_unauthenticated_requests(shop, staff_client):
    admin = staff_client("sh.admin")
    assert problem(admin.post(f"{ROLLOUT}/gray", data="{not json", content_type="application/json"), 400)
    # a form post (what a cross-site page could send) is refused before the API reads it
    assert problem(admin.post(f"{ROLLOUT}/gray", data="version=1.0.0", content_type="application/x-www-form-urlencoded"), 400)
    assert problem(admin.post(f"{ROLLOUT}/gray", data=b"version", content_type="text/plain"), 400)
    huge = {"version": "1.0.0", "rule": {"testers": ["0" * 32] * 5000}}
    assert problem(admin.post(f"{ROLLOUT}/gray", json=huge), 413)
    assert problem(staff_client("sh.admin", csrf=False).post(f"{ROLLOUT}/gray", json={}), 403)
    assert problem(staff_client(None).post(f"{ROLLOUT}/gray", json={}), 401)
    assert problem(admin.get("/api/v1/publisher/plugins/..%2Fetc/rollout"), 404)
    assert problem(admin.post("/api/v1/publisher/plugins/no.such.plugin/rollout/gray", json={"version": "1.0.0",
                                                                                             "rule": {}}), 404)
    assert problem(staff_client("bj.operator").get(ROLLOUT), 403)
    assert release(shop) is None


def test_the_kill_switch_is_head_offices_and_audited(shop, staff_client):
    admin = staff_client("sh.admin")
    admin.post(f"{ROLLOUT}/gray", json={"version": "1.0.0", "rule": {"percent": 100}})
    admin.post(f"{ROLLOUT}/release", json={})
    problem(admin.post(f"/api/v1/review/plugins/{PLUGIN}/suspend", json={"reason": "mine"}), 403)
    problem(staff_client("hq.admin").post(f"/api/v1/review/plugins/{PLUGIN}/suspend", json={}), 422)
    answer = staff_client("hq.admin").post(f"/api/v1/review/plugins/{PLUGIN}/suspend", json={"reason": "fraud"})
    assert answer.get_json()["suspended"] is True and answer.get_json()["suspended_reason"] == "fraud"
    assert seen(shop, None) is None
    with get_database(shop).transaction() as session:
        outcomes = {(e.action, e.outcome) for e in session.scalars(select(AuditEvent).where(
            AuditEvent.plugin_id == PLUGIN, AuditEvent.action.like("publishing.suspend%")))}
    assert ("publishing.suspend_plugin", "success") in outcomes and ("publishing.suspend", "denied") in outcomes
    staff_client("hq.admin").post(f"/api/v1/review/plugins/{PLUGIN}/reinstate", json={"reason": "cleared"})
    assert seen(shop, None) == "1.0.0"


def test_promotion_offers_a_branch_mini_program_to_every_branch(shop, staff_client, demo_app):
    from host.identity.models import Staff
    from host.runtime import get_runtime
    from host.storefront import installs

    admin = staff_client("sh.admin")
    admin.post(f"{ROLLOUT}/gray", json={"version": "1.0.0", "rule": {"percent": 100}})
    admin.post(f"{ROLLOUT}/release", json={})

    def offered_to_beijing() -> bool:
        with get_database(shop).transaction() as session:
            return PLUGIN in [c.plugin_id for c in installs.installable(session, get_runtime(shop), "BJ001")]

    assert not offered_to_beijing()
    problem(staff_client("sh.operator").post(f"/api/v1/publisher/plugins/{PLUGIN}/promotion/propose",
                                             json={"reason": "popular"}), 403)
    problem(admin.post(f"/api/v1/publisher/plugins/{PLUGIN}/promotion/propose", json={}), 422)
    proposed = admin.post(f"/api/v1/publisher/plugins/{PLUGIN}/promotion/propose", json={"reason": "30% coupon use"})
    assert proposed.get_json()["status"] == "proposed"
    problem(admin.post(f"/api/v1/review/plugins/{PLUGIN}/promotion/approve", json={}), 403)  # not its own
    problem(staff_client("hq.reviewer").post(f"/api/v1/review/plugins/{PLUGIN}/promotion/approve", json={}), 403)
    assert not offered_to_beijing()
    approved = staff_client("hq.admin").post(f"/api/v1/review/plugins/{PLUGIN}/promotion/approve", json={})
    assert approved.get_json()["status"] == "approved" and approved.get_json()["decided_by"] == "staff:hq.admin"
    assert offered_to_beijing()
    with get_database(shop).transaction() as session:
        hq = session.scalar(select(Staff).where(Staff.username == "hq.admin"))
    with shop.app_context(), get_database(shop).transaction(write=True) as session:
        row = installs.install(session, get_runtime(shop), session.merge(hq), "BJ001", PLUGIN)
        assert row.version == "1.0.0"
    assert seen(shop, None, "BJ001") == "1.0.0"
    problem(staff_client("hq.admin").post(f"/api/v1/review/plugins/{PLUGIN}/promotion/withdraw", json={}), 422)
    staff_client("hq.admin").post(f"/api/v1/review/plugins/{PLUGIN}/promotion/withdraw", json={"reason": "retired"})
    assert not offered_to_beijing()  # no further branch; Beijing's installation stays
    assert seen(shop, None, "BJ001") == "1.0.0"
    with get_database(shop).transaction() as session:
        assert session.get(PluginPromotion, PLUGIN).status == "withdrawn"


def test_only_a_branchs_mini_program_is_promoted(shop, staff_client):
    answer = problem(staff_client("hq.admin").post("/api/v1/publisher/plugins/wealth.checkup/promotion/propose",
                                                   json={"reason": "x"}), 409)
    assert "only a branch's mini-program" in answer["detail"]
