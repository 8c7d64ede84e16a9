"""The staff console: storefront slots, grid order, installs, operating rights and branches.

Demo rights: SH001 has every right, BJ001 banners and feed, SH001-PD banners, GZ001 none.
"""

from __future__ import annotations

import pytest

from host.storefront.models import Branch, Installation, OperatingRight, StorefrontSlot

BANNER = {"title_zh": "春季理财", "title_en": "Spring savings", "link": "mp:wealth.checkup/", "position": "3"}


def slot_id(rows, title_en: str) -> int:
    return rows(StorefrontSlot, title_en=title_en)[0].id


def zone_ids(client, branch: str) -> list[str]:
    import re

    return re.findall(r'<section class="zone" data-plugin="([^"]*)">', client.get(f"/s/{branch}").get_data(as_text=True))


# -- who may open what ---------------------------------------------------------------------------


def test_anonymous_visitors_go_to_the_staff_sign_in(signed_in):
    response = signed_in(None).get("/console")
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/staff/signin?next=%2Fconsole")


@pytest.mark.parametrize(("username", "target"), [("sh.operator", "/console/branches/SH001"),
                                                  ("bj.operator", "/console/branches/BJ001"),
                                                  ("sh.admin", "/console/branches/SH001")])
def test_branch_staff_start_at_their_own_storefront(signed_in, username, target):
    response = signed_in(username).get("/console")
    assert response.status_code == 303 and response.headers["Location"] == target


@pytest.mark.parametrize("username", ["hq.admin", "hq.reviewer"])
def test_head_office_starts_with_every_branch(signed_in, username):
    html = signed_in(username).get("/console?lang=en").get_data(as_text=True)
    for code in ("HQ", "SH001", "BJ001", "GZ001", "SH001-PD"):
        assert f'data-branch="{code}"' in html


@pytest.mark.parametrize(
    ("username", "path", "status"),
    [
        ("hq.admin", "/console/branches/GZ001", 200), ("hq.reviewer", "/console/branches/GZ001", 200),
        ("sh.operator", "/console/branches/SH001", 200), ("sh.operator", "/console/branches/BJ001", 403),
        ("bj.operator", "/console/branches/SH001", 403), ("sh.operator", "/console/bank", 200),
        ("sh.operator", "/console/rights", 403), ("sh.admin", "/console/branches", 403),
        ("hq.reviewer", "/console/rights", 200), ("hq.admin", "/console/branches/NOWHERE", 404),
        ("hq.admin", "/console/slots/999999", 404), ("hq.admin", "/console/slots/99999999999999999999", 404),
        ("hq.admin", "/console/slots/new?scope=NOWHERE", 404), ("hq.reviewer", "/console/slots/new?scope=SH001", 403),
        ("bj.operator", "/console/slots/new?scope=*", 403), ("sh.operator", "/console/slots/new?scope=SH001&kind=feed", 200),
    ],
)
def test_who_may_open_which_page(signed_in, username, path, status):
    assert signed_in(username).get(path).status_code == status


def test_pages_show_forms_only_where_changes_are_allowed(signed_in):
    operator = signed_in("sh.operator").get("/console/branches/SH001?lang=en").get_data(as_text=True)
    assert 'name="position.wealth.checkup"' in operator  # grid order: granted
    assert "/uninstall" not in operator  # installs: not an operator's
    assert "/console/slots/new?scope=SH001&amp;kind=banner" in operator
    reviewer = signed_in("hq.reviewer").get("/console/branches/SH001?lang=en").get_data(as_text=True)
    assert "csrf_token" not in reviewer
    bank = signed_in("sh.operator").get("/console/bank?lang=en").get_data(as_text=True)
    assert "New Year offers in the app" in bank and "csrf_token" not in bank


def test_a_slot_someone_may_not_change_is_shown_read_only(signed_in, rows):
    html = signed_in("bj.operator").get(f"/console/slots/{slot_id(rows, 'New Year offers in the app')}?lang=en").get_data(as_text=True)
    assert "<fieldset disabled>" in html and 'type="submit">Save' not in html


# -- slots ---------------------------------------------------------------------------------------


def test_an_operator_adds_a_banner_to_their_branch_audited(signed_in, post, rows, audit_log):
    client = signed_in("sh.operator")
    response = post(client, "/console/slots", {"scope": "SH001", "kind": "banner", **BANNER,
                                               "starts_at": "2020-01-01T00:00", "tags": "wealth, new-customer"})
    assert response.status_code == 303 and response.headers["Location"].startswith("/console/branches/SH001")
    (slot,) = rows(StorefrontSlot, title_en="Spring savings")
    assert (slot.branch_code, slot.kind, slot.position, slot.tags, slot.updated_by) == (
        "SH001", "banner", 3, ["new-customer", "wealth"], "sh.operator")
    assert slot.starts_at.isoformat() == "2020-01-01T00:00:00+00:00"
    (entry,) = [e for e in audit_log() if e.action == "storefront.slot_created"]
    assert (entry.outcome, entry.actor, entry.branch, entry.subject) == ("success", "sh.operator", "SH001", f"slot:{slot.id}")


def test_an_operator_changes_and_removes_their_slot(signed_in, post, rows, audit_log):
    client = signed_in("sh.operator")
    number = slot_id(rows, "Shanghai weekend deals")
    response = post(client, f"/console/slots/{number}", {**BANNER, "title_en": "Weekend deals", "ends_at": "2999-01-01T00:00"})
    assert response.status_code == 303
    (slot,) = rows(StorefrontSlot, id=number)
    assert slot.title_en == "Weekend deals" and slot.ends_at.year == 2999 and slot.kind == "banner"
    assert post(client, f"/console/slots/{number}/delete").status_code == 303
    assert rows(StorefrontSlot, id=number) == []
    assert [e.action for e in audit_log()][-2:] == ["storefront.slot_changed", "storefront.slot_deleted"]


@pytest.mark.parametrize(
    ("username", "scope", "kind", "status"),
    [
        ("hq.admin", "*", "banner", 303), ("hq.admin", "GZ001", "feed", 303),
        ("sh.admin", "SH001", "feed", 303), ("bj.operator", "BJ001", "banner", 303),
        ("sh.operator", "BJ001", "banner", 403),  # another branch
        ("sh.admin", "*", "banner", 403),  # bank-wide is head office's
        ("hq.reviewer", "SH001", "banner", 403),  # reviewers look only
        ("sh.operator", "SH001-PD", "banner", 403),  # not even a branch under one's own
    ],
)
def test_the_permission_matrix_of_slots(signed_in, post, rows, audit_log, username, scope, kind, status):
    before = len(rows(StorefrontSlot))
    response = post(signed_in(username), "/console/slots", {"scope": scope, "kind": kind, **BANNER})
    assert response.status_code == status
    assert len(rows(StorefrontSlot)) == before + (1 if status == 303 else 0)
    if status == 403:
        assert audit_log()[-1].outcome == "denied" and audit_log()[-1].actor == username


def test_an_operator_without_the_granted_right_is_refused_with_the_reason(signed_in, post, rows, audit_log):
    client = signed_in("bj.operator")  # BJ001 has banners and feed, not grid
    response = post(client, "/console/branches/BJ001/grid?lang=en", {"position.wealth.checkup": "0"},
                    Accept="application/json")
    assert response.status_code == 403
    assert "has not granted branch BJ001 the right: grid" in response.get_json()["detail"]
    (entry,) = audit_log("storefront.grid")
    assert (entry.outcome, entry.actor, entry.branch) == ("denied", "bj.operator", "BJ001")
    assert "grid" in entry.detail["reason"]
    # revoking banners takes effect on the next request
    post(signed_in("hq.admin"), "/console/rights", {"branch": "BJ001", "rights": ["feed"]})
    refused = post(client, "/console/slots", {"scope": "BJ001", "kind": "banner", **BANNER})
    assert refused.status_code == 403 and rows(StorefrontSlot, branch_code="BJ001") == []
    assert post(client, "/console/slots", {"scope": "BJ001", "kind": "feed", **BANNER}).status_code == 303


def test_another_branchs_slot_cannot_be_changed_or_removed(signed_in, post, rows):
    number = slot_id(rows, "Shanghai weekend deals")
    client = signed_in("bj.operator")
    assert post(client, f"/console/slots/{number}", {**BANNER}).status_code == 403
    assert post(client, f"/console/slots/{number}/delete").status_code == 403
    bank = slot_id(rows, "New Year offers in the app")
    assert post(signed_in("sh.admin"), f"/console/slots/{bank}/delete").status_code == 403
    assert rows(StorefrontSlot, id=number)[0].title_en == "Shanghai weekend deals"
    assert rows(StorefrontSlot, id=bank) != []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"link": "javascript:alert(1)"}, "link"),
        ({"link": "JavaScript:alert(1)"}, "link"),
        ({"link": "http://example.com/"}, "link"),
        ({"link": "//evil.example/"}, "link"),
        ({"link": "mp:no.such.plugin/"}, "link"),
        ({"link": "mp:../../etc"}, "link"),
        ({"image": "javascript:alert(1)"}, "image"),
        ({"image": "data:image/svg+xml,<svg onload=alert(1)>"}, "image"),
        ({"image": "/static/../host/config.py"}, "image"),
        ({"image": "/static/storefront/none.svg"}, "image"),
        ({"image": "https://" + "a" * 600 + ".example/x.png"}, "image"),
        ({"title_en": ""}, "title_en"),
        ({"title_zh": "长" * 61}, "title_zh"),
        ({"title_en": "a\x00b"}, "title_en"),
        ({"body_en": "x" * 201}, "body_en"),
        ({"starts_at": "2025-05-01T00:00", "ends_at": "2025-04-01T00:00"}, "ends_at"),
        ({"starts_at": "2025-05-01T00:00", "ends_at": "2025-05-01T00:00"}, "ends_at"),
        ({"starts_at": "tomorrow"}, "starts_at"),
        ({"ends_at": "9" * 5000}, "ends_at"),
        ({"tags": "Wealth"}, "tags"),
        ({"tags": ",".join(f"t{i}" for i in range(11))}, "tags"),
        ({"tags": "x" * 5000}, "tags"),
        ({"position": "-1"}, "position"),
        ({"position": "9" * 5000}, "position"),
        ({"position": "1.5"}, "position"),
    ],
)
def test_bad_slot_input_is_a_422_naming_the_field_and_nothing_is_written(signed_in, post, rows, audit_log, changes, field):
    before = [(s.id, s.title_en, s.link) for s in rows(StorefrontSlot)]
    client = signed_in("sh.operator")
    response = post(client, "/console/slots?lang=en", {"scope": "SH001", "kind": "banner", **BANNER, **changes})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert f'data-field="{field}"' in html
    assert [(s.id, s.title_en, s.link) for s in rows(StorefrontSlot)] == before
    assert audit_log()[-1].action == "storefront.slot_created" and audit_log()[-1].outcome == "failure"
    # the same goes for changing a slot, and JSON clients get a problem document
    number = slot_id(rows, "Shanghai weekend deals")
    response = post(client, f"/console/slots/{number}", {**BANNER, **changes}, Accept="application/json")
    assert response.status_code == 422 and field in response.get_json()["errors"]
    assert rows(StorefrontSlot, id=number)[0].title_en == "Shanghai weekend deals"


def test_a_422_keeps_what_was_typed_escaped(signed_in, post):
    response = post(signed_in("sh.operator"), "/console/slots?lang=en",
                    {"scope": "SH001", "kind": "banner", **BANNER, "title_en": '"><script>x</script>', "link": "javascript:x"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "<script>x" not in html and "&#34;&gt;&lt;script&gt;x" in html
    assert 'value="javascript:x"' in html


def test_errors_are_in_chinese_for_chinese_staff(signed_in, post):
    response = post(signed_in("sh.operator"), "/console/slots?lang=zh-CN",
                    {"scope": "SH001", "kind": "banner", **BANNER, "starts_at": "2025-05-01T00:00", "ends_at": "2025-04-01T00:00"})
    assert "须晚于开始时间" in response.get_data(as_text=True)


@pytest.mark.parametrize("data", [{"scope": "NOWHERE", "kind": "banner"}, {"scope": "", "kind": "banner"},
                                  {"scope": "SH001\x00", "kind": "banner"}])
def test_an_unknown_scope_is_404(signed_in, post, data):
    assert post(signed_in("hq.admin"), "/console/slots", {**BANNER, **data}).status_code == 404


def test_an_unknown_kind_is_a_422(signed_in, post):
    response = post(signed_in("hq.admin"), "/console/slots", {"scope": "SH001", "kind": "popup", **BANNER},
                    Accept="application/json")
    assert response.status_code == 422 and "kind" in response.get_json()["errors"]


@pytest.mark.parametrize("path", ["/console/slots", "/console/slots/1", "/console/slots/1/delete",
                                  "/console/branches/SH001/installs", "/console/branches/SH001/uninstall",
                                  "/console/branches/SH001/grid", "/console/rights", "/console/branches",
                                  "/console/branches/SH001/names"])
def test_every_form_needs_the_csrf_token(signed_in, rows, audit_log, path):
    before = (len(rows(StorefrontSlot)), len(rows(Installation)), len(rows(OperatingRight)), len(rows(Branch)))
    client = signed_in("hq.admin")
    for form in ({}, {"csrf_token": "forged"}):
        response = client.post(path, data={**form, "scope": "SH001", "kind": "banner", **BANNER,
                                           "plugin_id": "sh.deals", "branch": "SH001", "code": "NEW1",
                                           "name_zh": "新", "name_en": "New", "parent_code": "HQ"})
        assert response.status_code == 400
    assert (len(rows(StorefrontSlot)), len(rows(Installation)), len(rows(OperatingRight)), len(rows(Branch))) == before
    assert audit_log() == []


def test_oversized_forms_are_refused_without_a_500(signed_in, post):
    response = post(signed_in("hq.admin"), "/console/slots", {"scope": "SH001", "kind": "banner", **BANNER,
                                                              "title_en": "x" * 3_000_000})
    assert response.status_code in (413, 422)


# -- grid and installs -------------------------------------------------------------------------


def test_an_operator_orders_the_grid(signed_in, post, rows, audit_log):
    client = signed_in("sh.operator")
    response = post(client, "/console/branches/SH001/grid",
                    {"position.wealth.checkup": "20", "position.sh.deals": "5", "position.city.utilities": "9"})
    assert response.status_code == 303
    order = [row.plugin_id for row in sorted(rows(Installation, branch_code="SH001"), key=lambda r: r.position)]
    assert order == ["sh.deals", "city.utilities", "wealth.checkup"]
    assert zone_ids(client, "SH001")[:2] == ["sh.deals", "wealth.checkup"]
    entry = audit_log()[-1]
    assert (entry.action, entry.outcome, entry.detail["new"]) == ("storefront.grid_ordered", "success", order)


@pytest.mark.parametrize("form", [{"position.wealth.checkup": "x"}, {"position.wealth.checkup": "-3"},
                                  {"position.wealth.checkup": "1", "position.sh.deals": "2", "position.city.utilities": "3",
                                   "position.evil.plugin": "4"},
                                  {"position.wealth.checkup": "99999"}, {}])
def test_a_bad_grid_order_is_a_422_and_changes_nothing(signed_in, post, rows, form):
    before = sorted((r.plugin_id, r.position) for r in rows(Installation, branch_code="SH001"))
    response = post(signed_in("sh.operator"), "/console/branches/SH001/grid?lang=en", form)
    assert response.status_code == 422 and 'data-field="' in response.get_data(as_text=True)
    assert sorted((r.plugin_id, r.position) for r in rows(Installation, branch_code="SH001")) == before


def test_a_branch_admin_uninstalls_and_the_zone_is_gone_on_the_next_request(signed_in, post, rows, audit_log):
    visitor = signed_in(None)
    assert "sh.deals" in zone_ids(visitor, "SH001")
    response = post(signed_in("sh.admin"), "/console/branches/SH001/uninstall", {"plugin_id": "sh.deals"})
    assert response.status_code == 303
    assert "sh.deals" not in zone_ids(visitor, "SH001")
    assert 'data-grid="sh.deals"' not in visitor.get("/s/SH001").get_data(as_text=True)
    assert "sh.deals" in zone_ids(visitor, "SH001-PD")  # other branches keep theirs
    entry = audit_log()[-1]
    assert (entry.action, entry.plugin_id, entry.branch, entry.actor) == ("storefront.uninstalled", "sh.deals", "SH001", "sh.admin")
    # and installs it back: at the end of the grid
    page = signed_in("sh.admin").get("/console/branches/SH001").get_data(as_text=True)
    assert 'data-candidate="sh.deals"' in page
    assert post(signed_in("sh.admin"), "/console/branches/SH001/installs", {"plugin_id": "sh.deals"}).status_code == 303
    assert zone_ids(visitor, "SH001")[-1] == "sh.deals"
    assert audit_log()[-1].action == "storefront.installed"


@pytest.mark.parametrize(
    ("username", "branch", "status"),
    [("sh.operator", "SH001", 403), ("bj.operator", "BJ001", 403), ("sh.admin", "GZ001", 403),
     ("hq.reviewer", "GZ001", 403), ("hq.admin", "GZ001", 303)],
)
def test_who_may_uninstall(signed_in, post, rows, username, branch, status):
    response = post(signed_in(username), f"/console/branches/{branch}/uninstall", {"plugin_id": "wealth.checkup"})
    assert response.status_code == status
    assert bool(rows(Installation, branch_code=branch, plugin_id="wealth.checkup")) is (status != 303)


@pytest.mark.parametrize(
    ("plugin_id", "message"),
    [("no.such.plugin", "not a published mini-program"), ("city.utilities", "not a published mini-program"),
     ("Bad Id!", "not a mini-program id"), ("", "not a mini-program id"), ("x" * 5000, "not a mini-program id"),
     ("wealth.checkup", "installed already"), ("sh.deals", "belongs to branch SH001")],
)
def test_only_published_mini_programs_a_branch_may_run_are_installed(signed_in, post, rows, plugin_id, message):
    before = len(rows(Installation))
    response = post(signed_in("hq.admin"), "/console/branches/GZ001/installs?lang=en", {"plugin_id": plugin_id})
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert len(rows(Installation)) == before


def test_a_mini_program_with_scopes_not_approved_is_not_installable(demo_app, signed_in, post, rows):
    from sqlalchemy import select

    from host.db import get_database
    from host.runtime.models import PluginVersion

    post(signed_in("hq.admin"), "/console/branches/SH001/uninstall", {"plugin_id": "sh.deals"})
    with get_database(demo_app).transaction(write=True) as session:
        session.scalars(select(PluginVersion).where(PluginVersion.plugin_id == "sh.deals")).one().approved_scopes = []
    assert 'data-candidate="sh.deals"' not in signed_in("sh.admin").get("/console/branches/SH001").get_data(as_text=True)
    response = post(signed_in("sh.admin"), "/console/branches/SH001/installs", {"plugin_id": "sh.deals"})
    assert response.status_code == 422 and rows(Installation, branch_code="SH001", plugin_id="sh.deals") == []


def test_uninstalling_what_is_not_installed_is_a_422(signed_in, post):
    assert post(signed_in("hq.admin"), "/console/branches/GZ001/uninstall", {"plugin_id": "sh.deals"}).status_code == 422
    assert post(signed_in("hq.admin"), "/console/branches/NOWHERE/uninstall", {"plugin_id": "sh.deals"}).status_code == 404


# -- head office: rights and branches ----------------------------------------------------------------


def test_head_office_grants_and_revokes_rights_audited(signed_in, post, rows, audit_log):
    response = post(signed_in("hq.admin"), "/console/rights", {"branch": "GZ001", "rights": ["banners", "grid"]})
    assert response.status_code == 303
    assert sorted(r.right for r in rows(OperatingRight, branch_code="GZ001")) == ["banners", "grid"]
    assert rows(OperatingRight, branch_code="GZ001")[0].granted_by == "hq.admin"
    post(signed_in("hq.admin"), "/console/rights", {"branch": "GZ001", "rights": ["grid"]})
    assert [r.right for r in rows(OperatingRight, branch_code="GZ001")] == ["grid"]
    entry = audit_log()[-1]
    assert (entry.action, entry.branch, entry.detail["revoked"], entry.detail["now"]) == (
        "storefront.rights_changed", "GZ001", ["banners"], ["grid"])
    page = signed_in("hq.admin").get("/console/rights").get_data(as_text=True)
    assert 'form="rights-GZ001" name="rights" value="grid" aria-label="Grid order" checked' in page or "rights-GZ001" in page


@pytest.mark.parametrize("username", ["hq.reviewer", "sh.admin", "sh.operator"])
def test_only_hq_admin_changes_rights(signed_in, post, rows, username):
    assert post(signed_in(username), "/console/rights", {"branch": "SH001", "rights": []}).status_code == 403
    assert len(rows(OperatingRight, branch_code="SH001")) == 4


@pytest.mark.parametrize(("data", "field"), [({"branch": "GZ001", "rights": ["everything"]}, "rights"),
                                             ({"branch": "NOWHERE", "rights": ["feed"]}, "branch"),
                                             ({"branch": "", "rights": ["feed"]}, "branch"),
                                             ({"branch": "GZ001", "rights": ["x" * 5000]}, "rights")])
def test_bad_rights_are_a_422(signed_in, post, rows, data, field):
    response = post(signed_in("hq.admin"), "/console/rights", data, Accept="application/json")
    assert response.status_code == 422 and field in response.get_json()["errors"]
    assert rows(OperatingRight, branch_code="GZ001") == []


def test_head_office_adds_and_renames_branches(signed_in, post, rows, audit_log):
    client = signed_in("hq.admin")
    response = post(client, "/console/branches", {"code": "SZ001", "name_zh": "深圳分行", "name_en": "Shenzhen Branch",
                                                  "parent_code": "HQ"})
    assert response.status_code == 303
    assert client.get("/s/SZ001?lang=en").status_code == 200
    assert post(client, "/console/branches/SZ001/names", {"name_zh": "深圳分行", "name_en": "Shenzhen"}).status_code == 303
    assert rows(Branch, code="SZ001")[0].name_en == "Shenzhen"
    assert [e.action for e in audit_log()][-2:] == ["storefront.branch_created", "storefront.branch_renamed"]


@pytest.mark.parametrize(
    ("data", "field"),
    [({"code": "sz001"}, "code"), ({"code": "SH001"}, "code"), ({"code": "A" * 17}, "code"), ({"code": "S/1"}, "code"),
     ({"name_zh": ""}, "name_zh"), ({"name_en": "x" * 101}, "name_en"), ({"name_en": "a\x00"}, "name_en"),
     ({"parent_code": "NOWHERE"}, "parent_code"), ({"parent_code": ""}, "parent_code")],
)
def test_bad_branches_are_a_422(signed_in, post, rows, data, field):
    form = {"code": "SZ001", "name_zh": "深圳分行", "name_en": "Shenzhen Branch", "parent_code": "HQ", **data}
    response = post(signed_in("hq.admin"), "/console/branches?lang=en", form)
    assert response.status_code == 422 and f'data-field="{field}"' in response.get_data(as_text=True)
    assert len(rows(Branch)) == 5


@pytest.mark.parametrize("username", ["hq.reviewer", "sh.admin"])
def test_only_hq_admin_adds_branches(signed_in, post, rows, username):
    form = {"code": "SZ001", "name_zh": "深圳分行", "name_en": "Shenzhen Branch", "parent_code": "HQ"}
    assert post(signed_in(username), "/console/branches", form).status_code == 403
    assert post(signed_in(username), "/console/branches/SH001/names", form).status_code == 403
    assert rows(Branch, code="SZ001") == [] and rows(Branch, code="SH001")[0].name_en == "Shanghai Branch"


# -- why an installed mini-program is not shown -----------------------------------------------------


def test_staff_see_why_an_installed_mini_program_is_not_shown_with_the_registrys_reason(signed_in, demo_app):
    import re

    from host.db import get_database
    from host.runtime.models import PluginState
    from host.runtime.registry import get_version

    reason = "disabled by the sandbox at 2026-01-01T00:00:00+00:00: 3 faults within 60 minutes; the last: <died>"
    with get_database(demo_app).transaction(write=True) as session:
        version = get_version(session, "wealth.checkup")
        version.state, version.state_reason = PluginState.DISABLED, reason

    def row(html: str, plugin_id: str) -> str:
        return re.search(rf'<tr data-installed="{re.escape(plugin_id)}">(.*?)</tr>', html, re.S).group(1)

    html = signed_in("sh.operator").get("/console/branches/SH001?lang=en").get_data(as_text=True)
    wealth = row(html, "wealth.checkup")
    assert 'data-state="disabled">Disabled: not shown to customers</span>' in wealth
    assert "3 faults within 60 minutes; the last: &lt;died&gt;" in wealth  # the reason, escaped
    # the suite runs without the sandbox, so the partner plugin is refused, and says why
    city = row(html, "city.utilities")
    assert 'data-state="refused">Refused: not shown to customers</span>' in city and "sandbox" in city
    assert "data-state" not in row(html, "sh.deals")  # active: nothing to explain
    chinese = signed_in("sh.operator").get("/console/branches/SH001?lang=zh-CN").get_data(as_text=True)
    assert "已停用：客户看不到" in row(chinese, "wealth.checkup") and "已拒绝：客户看不到" in row(chinese, "city.utilities")
