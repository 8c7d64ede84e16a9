"""host.payments.risk.views: the /staff/risk page — who sees and changes what, CSRF, errors that
name the field, audit entries."""

from __future__ import annotations

import json

import pytest

LIMITS = {"limits": {"CNY": 300_000}, "challenge_above": {"CNY": 100_000}}


def text(response) -> str:
    return response.get_data(as_text=True)


def post(client, form_token, *, branch="SH001", rule="single_payment_limit", enabled="true", params=LIMITS,
         path="/staff/risk", token=True, headers=None):
    data = {"branch": branch, "rule": rule, "enabled": enabled,
            "params": params if isinstance(params, str) else json.dumps(params)}
    if token:
        data["csrf_token"] = form_token(client, f"/staff/risk?branch={branch}" if branch else "/staff/risk")
    return client.post(path, data=data, headers=headers or {})


# -- reading ------------------------------------------------------------------------------------


def test_anonymous_visitors_go_to_the_staff_sign_in(signed_in):
    response = signed_in(None).get("/staff/risk")
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/staff/signin?next=")


def test_a_customer_session_is_not_staff(demo_app, customer_id):
    client = demo_app.test_client()
    with client.session_transaction() as session:
        session["customer_id"] = customer_id
    assert client.get("/staff/risk").status_code == 303


def test_hq_admin_sees_the_bank_wide_settings_with_forms(signed_in):
    page = signed_in("hq.admin").get("/staff/risk?lang=en")
    html = text(page)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    for rule in ("single_payment_limit", "daily_limit", "velocity", "new_device", "blocked_merchant"):
        assert f'data-rule="{rule}"' in html
    assert 'name="csrf_token"' in html and 'name="params"' in html and "Bank-wide settings" in html
    assert "5000000" in html  # the default limit, in fen


def test_branch_admin_sees_their_branch_by_default_and_may_edit_it(signed_in):
    html = text(signed_in("sh.admin").get("/staff/risk"))
    assert 'name="branch" value="SH001"' in html and 'name="params"' in html


def test_branch_admin_reads_the_bank_wide_settings_without_forms(signed_in):
    page = signed_in("sh.admin").get("/staff/risk?branch=*")
    assert page.status_code == 200
    assert 'name="params"' not in text(page) and 'class="risk-params"' in text(page)


@pytest.mark.parametrize(("username", "branch", "status"), [
    ("sh.admin", "BJ001", 403),
    ("sh.operator", "BJ001", 403),
    ("sh.operator", "SH001", 200),
    ("hq.reviewer", "GZ001", 200),
    ("hq.admin", "NOWHERE", 404),
])
def test_who_may_look_at_which_branch(signed_in, username, branch, status):
    assert signed_in(username).get(f"/staff/risk?branch={branch}").status_code == status


@pytest.mark.parametrize("username", ["sh.operator", "hq.reviewer"])
def test_read_only_roles_get_no_forms(signed_in, username):
    page = signed_in(username).get("/staff/risk?branch=SH001")
    assert page.status_code == 200
    assert 'name="params"' not in text(page) and 'action="/staff/risk/reset"' not in text(page)


# -- changing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("username", "branch", "status"), [
    ("hq.admin", "*", 303),
    ("hq.admin", "BJ001", 303),
    ("sh.admin", "SH001", 303),
    ("sh.admin", "BJ001", 403),
    ("sh.admin", "*", 403),
    ("sh.operator", "SH001", 403),
    ("hq.reviewer", "SH001", 403),
])
def test_the_permission_matrix_of_changes(signed_in, stored_settings, audit_log, username, branch, status):
    client = signed_in(username)
    token = "a-valid-token-of-this-session"  # read-only pages render no form to take one from
    with client.session_transaction() as session:
        session["csrf_token"] = token
    response = client.post("/staff/risk", data={"csrf_token": token, "branch": branch, "rule": "single_payment_limit",
                                                "enabled": "true", "params": json.dumps(LIMITS)})
    assert response.status_code == status
    if status == 303:
        assert response.headers["Location"] == f"/staff/risk?branch={branch}&saved=single_payment_limit"
        assert stored_settings() == {(branch, "single_payment_limit"): (True, LIMITS)}
        [event] = audit_log()
        assert (event.action, event.outcome, event.actor, event.branch) == ("risk.setting_changed", "success", username, branch)
    else:
        assert stored_settings() == {}
        if username in ("sh.admin",):  # passed the role check; refused for the branch, and audited
            [event] = audit_log()
            assert (event.outcome, event.actor, event.branch) == ("denied", username, branch)


def test_anonymous_posts_change_nothing(signed_in, stored_settings):
    client = signed_in(None)
    response = client.post("/staff/risk", data={"branch": "*", "rule": "velocity", "enabled": "false", "params": "{}"})
    assert response.status_code == 400  # no session, so no form token: refused before any view
    assert stored_settings() == {}
    assert signed_in(None).get("/staff/risk").status_code == 303


def test_the_saved_setting_shows_on_the_page(signed_in, form_token):
    client = signed_in("sh.admin")
    response = post(client, form_token, enabled="false")
    page = client.get(response.headers["Location"] + "&lang=en")
    html = text(page)
    assert 'data-rule="single_payment_limit" data-enabled="false" data-source="branch"' in html
    assert "Saved" in html and "sh.admin" in html
    assert 'action="/staff/risk/reset"' in html


def test_a_post_without_the_csrf_token_is_refused(signed_in, form_token, stored_settings, audit_log):
    client = signed_in("hq.admin")
    form_token(client)  # the session has a token; the post does not carry it
    response = post(client, form_token, branch="*", token=False)
    assert response.status_code == 400 and "security token" in text(response)
    wrong = client.post("/staff/risk", data={"csrf_token": "forged", "branch": "*", "rule": "velocity",
                                             "enabled": "false", "params": "{}"})
    assert wrong.status_code == 400
    assert stored_settings() == {} and audit_log() == []


@pytest.mark.parametrize(("changes", "field"), [
    ({"params": {"limits": {"CNY": -1}, "challenge_above": {}}}, "params.limits.CNY"),
    ({"params": {"limits": {"CNY": 10**25}, "challenge_above": {}}}, "params.limits.CNY"),
    ({"params": {"limits": {"CNY": "lots"}, "challenge_above": {}}}, "params.limits.CNY"),
    ({"params": {"limits": {"ABC": 1}, "challenge_above": {}}}, "params.limits.ABC"),
    ({"params": "{broken"}, "params"),
    ({"params": "x" * 30_000}, "params"),
    ({"enabled": "maybe"}, "enabled"),
    ({"rule": "no_such_rule"}, "rule"),
])
def test_bad_input_is_a_422_naming_the_field_and_nothing_is_saved(signed_in, form_token, stored_settings, audit_log,
                                                                   changes, field):
    client = signed_in("sh.admin")
    response = post(client, form_token, **changes)
    assert response.status_code == 422
    assert f'data-field="{field}"' in text(response)
    assert stored_settings() == {}
    [event] = audit_log()
    assert (event.action, event.outcome, event.actor) == ("risk.setting_changed", "failure", "sh.admin")
    assert field in event.detail["fields"]


def test_a_422_keeps_what_was_typed(signed_in, form_token):
    response = post(signed_in("sh.admin"), form_token, params='{"limits": {"CNY": -5}}')
    assert response.status_code == 422
    assert "{&#34;limits&#34;: {&#34;CNY&#34;: -5}}" in text(response)


def test_json_clients_get_a_problem_document(signed_in, form_token):
    response = post(signed_in("hq.admin"), form_token, branch="*", params={"limits": {"CNY": -1}},
                    headers={"Accept": "application/json"})
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    assert "params.limits.CNY" in response.get_json()["errors"]


def test_an_unknown_branch_is_a_422_for_hq_admin(signed_in, form_token, stored_settings):
    client = signed_in("hq.admin")
    token = form_token(client)
    response = client.post("/staff/risk", data={"csrf_token": token, "branch": "NOWHERE", "rule": "velocity",
                                                "enabled": "true", "params": "{}"},
                           headers={"Accept": "application/json"})
    assert response.status_code == 422 and "branch" in response.get_json()["errors"]
    assert stored_settings() == {}


def test_reset_from_the_page(signed_in, form_token, stored_settings, audit_log):
    client = signed_in("sh.admin")
    post(client, form_token)
    token = form_token(client, "/staff/risk?branch=SH001")
    response = client.post("/staff/risk/reset", data={"csrf_token": token, "branch": "SH001", "rule": "single_payment_limit"})
    assert response.status_code == 303
    assert stored_settings() == {}
    assert [event.action for event in audit_log()] == ["risk.setting_changed", "risk.setting_reset"]
