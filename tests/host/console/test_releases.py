"""Releasing in the staff console: a mini-program's release page (stable, gray with its rule,
previous, the kill switch, the gray version's health, the promotion), its forms — gray release,
widening, release, rollback, suspension, promotion — each seen by the storefront on the very next
request, and each refusal shown in words with its status, changing nothing.

``sh.coupons`` 1.0.0 and 2.0.0 are approved and installed in SH001 (the publishing tests' shop).
Demo staff: sh.admin administers Shanghai (SH001), sh.operator works there, bj.operator in
Beijing; hq.admin is head office's administrator, hq.reviewer its reviewer.
"""

from __future__ import annotations

import html

import pytest

from host.db import get_database, utcnow
from host.publishing import rollout
from host.publishing.health import add_counts
from host.publishing.models import PackageVersion, PluginPromotion, PluginRelease
from tests.host.publishing.conftest import PLUGIN, customers, make_shop, seen

PAGE = f"/console/publishing/plugins/{PLUGIN}/release"


def text(response) -> str:
    """The page as a reader sees it (entities decoded)."""
    return html.unescape(response.get_data(as_text=True))


def form_of(page: str, action: str) -> str:
    """The form of ``action`` on the page (where the messages about its fields belong)."""
    start = page.index(f'data-form="{action}"')
    return page[start:page.index("</form>", start)]


def act(post, client, action: str, **form):
    return post(client, f"{PAGE}/{action}", form)


def promote(post, client, action: str, **form):
    return post(client, f"/console/publishing/plugins/{PLUGIN}/promotion/{action}", form)


def release_of(app) -> tuple | None:
    """The release as the database holds it (None: never released)."""
    with get_database(app).transaction() as session:
        row = session.get(PluginRelease, PLUGIN)
        return None if row is None else (row.stable, row.gray, row.gray_rule, row.previous, row.suspended_at,
                                         row.revision)


def statuses(rows) -> dict[str, str]:
    return {row.version: row.status for row in rows(PackageVersion, plugin_id=PLUGIN)}


@pytest.fixture
def shop(demo_app, actors, package_zip):
    return make_shop(demo_app, actors, package_zip)


@pytest.fixture
def signed_in(signed_in_english):
    """These pages are read in English (one test reads Chinese): see the console conftest."""
    return signed_in_english


@pytest.fixture
def released(shop, signed_in, post):
    """sh.coupons 1.0.0 released to everyone by sh.admin through the forms."""
    admin = signed_in("sh.admin")
    assert act(post, admin, "gray", version="1.0.0", percent="100").status_code == 303
    assert act(post, admin, "release", reason="all good").status_code == 303
    assert seen(shop, None) == "1.0.0"
    return shop


# -- releasing ------------------------------------------------------------------------------------


def test_a_branch_admin_grays_to_a_tester_and_a_percent_widens_releases_and_rolls_back(shop, signed_in, post, rows):
    people = customers(shop)
    lin = people["13800000001"][0]
    # the customers a 10 % sample of 1.0.0 leaves out: the widening reaches them
    outside = [cid for cid, _ in people.values() if cid != lin and rollout.bucket(PLUGIN, "1.0.0", cid) >= 1000]
    assert outside
    admin = signed_in("sh.admin")
    page = text(admin.get(PAGE))
    assert 'data-stable=""' in page and 'data-gray=""' in page
    assert 'data-form="gray"' in page and '<option value="1.0.0"' in page and '<option value="2.0.0"' in page
    assert 'data-form="widen"' not in page and 'data-form="release"' not in page and 'data-health' not in page

    response = act(post, admin, "gray", version="1.0.0", testers=f"{lin}\r\n", percent="10", reason="pilot")
    assert response.status_code == 303 and response.headers["Location"] == f"{PAGE}?done=gray"
    assert seen(shop, lin) == "1.0.0" and seen(shop, None) is None
    assert all(seen(shop, cid) is None for cid in outside)
    page = text(admin.get(response.headers["Location"]))
    assert 'data-done="gray"' in page and 'data-gray="1.0.0"' in page
    assert '<li data-part="percent">10% of all customers</li>' in page and "named testers: 1" in page
    assert 'data-form="gray"' not in page and 'data-form="widen"' in page and 'data-form="release"' in page
    assert f'<textarea name="testers" rows="3">{lin}</textarea>' in page  # widening starts from the rule
    assert 'name="percent" inputmode="decimal" value="10"' in page
    assert statuses(rows) == {"1.0.0": "gray", "2.0.0": "approved"}

    narrowed = act(post, admin, "widen", testers=lin, percent="5")
    assert narrowed.status_code == 422
    assert 'data-field="rule"' in form_of(text(narrowed), "widen")
    assert "to narrow a gray release, roll it back" in text(narrowed)
    assert release_of(shop)[2]["percent"] == 10.0

    response = act(post, admin, "widen", testers=lin, percent="10", branches="BJ001, SH001")
    assert response.status_code == 303
    assert all(seen(shop, cid) == "1.0.0" for cid in outside)  # every home branch is in now
    assert release_of(shop)[2] == {"branches": ["BJ001", "SH001"], "tags": [], "testers": [lin], "percent": 10.0}

    assert act(post, admin, "release", reason="all good").status_code == 303
    assert seen(shop, None) == "1.0.0"
    assert 'data-stable="1.0.0"' in text(admin.get(PAGE))

    # 2.0.0 to Lin alone; its rollback needs a reason and holds from the next request on
    assert act(post, admin, "gray", version="2.0.0", testers=lin).status_code == 303
    assert seen(shop, lin) == "2.0.0" and seen(shop, outside[0]) == "1.0.0"
    no_reason = act(post, admin, "rollback", reason="  ")
    assert no_reason.status_code == 422
    assert 'data-field="reason"' in form_of(text(no_reason), "rollback")
    assert "say why: this action needs a reason" in text(no_reason)
    assert seen(shop, lin) == "2.0.0"
    response = act(post, admin, "rollback", reason="coupons double-counted")
    assert response.status_code == 303 and response.headers["Location"] == f"{PAGE}?done=rollback"
    assert seen(shop, lin) == "1.0.0"
    assert statuses(rows) == {"1.0.0": "released", "2.0.0": "rolled_back"}
    page = text(admin.get(f"{PAGE}?done=rollback"))
    assert 'data-gray=""' in page and 'data-done="rollback"' in page


def test_an_operator_sees_no_release_forms_and_a_forged_post_is_refused(shop, signed_in, post, audit_log):
    operator = signed_in("sh.operator")
    page = text(operator.get(PAGE))
    assert "data-serving" in page and "data-form=" not in page and 'data-forms="none"' in page
    response = act(post, operator, "gray", version="1.0.0", percent="100")
    assert response.status_code == 403
    refused = text(response)
    assert 'data-refused="403"' in refused and "releasing and rolling back" in refused and "(branch_admin)" in refused
    assert release_of(shop) is None and seen(shop, None) is None
    entry = audit_log("publishing.gray")[-1]
    assert (entry.outcome, entry.actor, entry.subject) == ("denied", "staff:sh.operator", f"{PLUGIN}@1.0.0")
    assert promote(post, operator, "propose", reason="everyone wants it").status_code == 403
    # the kill switch is head office's
    admin = signed_in("sh.admin")
    assert 'data-form="suspend"' not in text(admin.get(PAGE))
    assert act(post, admin, "suspend", reason="mine to stop?").status_code == 403
    assert release_of(shop) is None


def test_another_branch_neither_sees_nor_changes_the_release(shop, signed_in, post, audit_log):
    beijing = signed_in("bj.operator")
    assert beijing.get(PAGE).status_code == 404
    assert act(post, beijing, "gray", version="1.0.0", percent="100").status_code == 404
    assert release_of(shop) is None
    assert audit_log("publishing.read")[-1].outcome == "denied"
    reviewer = text(signed_in("hq.reviewer").get(PAGE))
    assert "data-serving" in reviewer and "data-form=" not in reviewer
    for plugin_id in ("no.such.plugin", "NOT%20AN%20ID", "sh.coupons%00"):
        assert signed_in("hq.admin").get(f"/console/publishing/plugins/{plugin_id}/release").status_code == 404
    assert act(post, signed_in("hq.admin"), "publish").status_code == 404
    assert signed_in(None).get(PAGE).headers["Location"].startswith("/staff/signin?next=")


@pytest.mark.parametrize(("form", "field", "words"), [
    ({"percent": "150"}, "rule.percent", "must be a number from 0 to 100"),
    ({"percent": "abc"}, "rule.percent", "must be a number from 0 to 100"),
    ({"percent": "-5"}, "rule.percent", "must be a number from 0 to 100"),
    ({"percent": "1.234"}, "rule.percent", "may have at most two decimals"),
    ({"branches": "sh001"}, "rule.branches", "not branch codes"),
    ({"testers": "13800000001"}, "rule.testers", "not customer ids"),
    ({"version": "", "percent": "5"}, "version", "choose the approved version"),
    ({"version": "1.0.0\x00", "percent": "5"}, "version", "choose the approved version"),
])
def test_a_wrong_rule_is_a_422_naming_the_field_and_nothing_changes(shop, signed_in, post, rows, audit_log,
                                                                    form, field, words):
    response = act(post, signed_in("sh.admin"), "gray", **{"version": "1.0.0", **form})
    assert response.status_code == 422
    page = text(response)
    assert words in page and 'data-refused="422"' in page
    assert f'data-field="{field}"' in form_of(page, "gray")  # next to its field
    assert f'value="{form.get("percent", "")}"' in form_of(page, "gray")  # the form as typed
    assert release_of(shop) is None and statuses(rows) == {"1.0.0": "approved", "2.0.0": "approved"}
    assert audit_log("publishing.gray")[-1].outcome == "failure"


def test_a_release_without_a_gray_version_is_a_409_in_words(shop, signed_in, post):
    response = act(post, signed_in("sh.admin"), "release")
    assert response.status_code == 409 and "has no version in gray release" in text(response)
    assert release_of(shop) is None


# -- the kill switch -----------------------------------------------------------------------------


def test_head_office_suspends_and_reinstates_from_the_next_request_on(released, signed_in, post):
    hq = signed_in("hq.admin")
    assert 'data-form="suspend"' in text(hq.get(PAGE))
    no_reason = act(post, hq, "suspend")
    assert no_reason.status_code == 422 and 'data-field="reason"' in text(no_reason)
    assert seen(released, None) == "1.0.0"

    assert act(post, hq, "suspend", reason="reported as phishing").status_code == 303
    assert seen(released, None) is None
    page = text(hq.get(PAGE))
    assert 'data-suspended="true"' in page and "Reason: reported as phishing" in page
    assert 'data-form="reinstate"' in page and 'data-form="suspend"' not in page
    admin = signed_in("sh.admin")
    assert 'data-form="gray"' not in text(admin.get(PAGE))  # nothing moves while suspended
    forged = act(post, admin, "gray", version="2.0.0", percent="1")
    assert forged.status_code == 409 and "is suspended by head office" in text(forged)

    assert act(post, hq, "reinstate", reason="a false report").status_code == 303
    assert seen(released, None) == "1.0.0"
    assert 'data-suspended="false"' in text(hq.get(PAGE))


# -- health and promotion -------------------------------------------------------------------------


def test_the_gray_versions_health_is_shown_next_to_the_thresholds(shop, signed_in, post):
    admin = signed_in("sh.admin")
    assert act(post, admin, "gray", version="1.0.0", percent="50").status_code == 303
    page = text(admin.get(PAGE))
    assert 'data-measure="error_rate" data-judged="too_few"' in page and "0 failed of 0 calls" in page
    with get_database(shop).transaction(write=True) as session:
        add_counts(session, {(PLUGIN, "1.0.0", utcnow().replace(second=0, microsecond=0)): [60, 9]})
    page = text(admin.get(PAGE))
    assert 'data-measure="error_rate" data-judged="above"' in page
    assert "15.0% · 9 failed of 60 calls" in page and "above 5.0%, once there are 50 calls" in page
    assert 'data-measure="payment_failure_rate" data-judged="too_few"' in page
    assert "above 20.0%, once there are 20 payments" in page


def test_a_branch_proposes_its_mini_program_and_head_office_approves_then_withdraws(shop, signed_in, post, rows):
    admin, hq = signed_in("sh.admin"), signed_in("hq.admin")
    page = text(admin.get(PAGE))
    assert 'data-promotion="none"' in page and 'data-form="propose"' in page and 'data-form="approve"' not in page
    assert 'data-form="approve"' not in text(hq.get(PAGE)) and 'data-form="propose"' not in text(hq.get(PAGE))
    assert promote(post, admin, "propose").status_code == 422 and rows(PluginPromotion) == []

    response = promote(post, admin, "propose", reason="popular in Shanghai")
    assert response.status_code == 303 and response.headers["Location"] == f"{PAGE}?done=propose"
    page = text(admin.get(PAGE))
    assert 'data-promotion="proposed"' in page and "popular in Shanghai" in page
    assert 'data-form="propose"' not in page and 'data-form="approve"' not in page
    assert promote(post, admin, "approve").status_code == 403  # a branch never decides its own

    page = text(hq.get(PAGE))
    assert 'data-form="approve"' in page and 'data-form="decline"' in page
    assert promote(post, hq, "approve", reason="good for every branch").status_code == 303
    page = text(hq.get(PAGE))
    assert 'data-promotion="approved"' in page and "Approved: offered to every branch" in page
    assert "good for every branch" in page and 'data-form="withdraw"' in page
    [row] = rows(PluginPromotion)
    assert (row.status, row.proposed_by, row.decided_by) == ("approved", "staff:sh.admin", "staff:hq.admin")
    assert promote(post, hq, "withdraw").status_code == 422 and rows(PluginPromotion)[0].status == "approved"
    assert promote(post, hq, "withdraw", reason="complaints").status_code == 303
    assert rows(PluginPromotion)[0].status == "withdrawn"


# -- forms, links and languages -------------------------------------------------------------------


def test_a_form_without_the_csrf_token_changes_nothing(shop, signed_in, rows):
    admin = signed_in("sh.admin")
    response = admin.post(f"{PAGE}/gray", data={"version": "1.0.0", "percent": "100"})
    assert response.status_code == 400 and "Form expired" in text(response)
    forged = admin.post(f"{PAGE}/gray", data={"csrf_token": "forged", "version": "1.0.0", "percent": "100"})
    assert forged.status_code == 400
    assert admin.post(f"/console/publishing/plugins/{PLUGIN}/promotion/propose",
                      data={"reason": "popular"}).status_code == 400
    assert release_of(shop) is None and rows(PluginPromotion) == []


def test_the_release_page_is_linked_from_the_list_and_each_version(shop, signed_in):
    admin = signed_in("sh.admin")
    assert f'href="{PAGE}"' in text(admin.get("/console/publishing"))
    assert f'href="{PAGE}"' in text(admin.get(f"/console/publishing/plugins/{PLUGIN}/versions/2.0.0"))


def test_the_page_reads_in_chinese(shop, signed_in, post):
    admin = signed_in("sh.admin", locale="zh-CN")
    assert act(post, admin, "gray", version="1.0.0", percent="10").status_code == 303
    page = text(admin.get(f"{PAGE}?done=gray"))
    assert "已完成：开始灰度发布。" in page and "10% 的客户" in page
    assert "客户得到哪个版本" in page and "扩大灰度范围" in page and "推广到全行" in page
    refused = text(act(post, admin, "widen", percent="abc"))
    assert "未执行：扩大灰度范围。未作任何修改。" in refused
