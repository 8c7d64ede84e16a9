"""host.identity.csrf: every form post carries its session's token, or is refused with 400."""

from __future__ import annotations

import io

import pytest

from host.demo import CUSTOMERS
from host.identity.csrf import FIELD

PHONE, PASSWORD = CUSTOMERS[0][:2]


@pytest.fixture
def client(site):
    return site.test_client()


@pytest.fixture
def token(client, form_token) -> str:
    return form_token(client)


def assert_form_expired(response) -> None:
    assert response.status_code == 400
    assert "Form expired" in response.get_data(as_text=True)


# --- urlencoded forms ---------------------------------------------------------------------


def test_a_form_post_without_the_token_is_refused(client, token):
    assert_form_expired(client.post("/t/form", data={"amount": "100"}))


def test_the_refusal_is_a_problem_document_for_json_callers(client, token):
    response = client.post("/t/form", data={"amount": "100"}, headers={"Accept": "application/json"})
    assert (response.status_code, response.mimetype) == (400, "application/problem+json")
    body = response.get_json()
    assert (body["status"], body["title"]) == (400, "Form expired")
    assert "reload" in body["detail"]


@pytest.mark.parametrize("wrong", ["", "x", "forged-token", "ü" * 43, "\x00", "a" * 10_000])
def test_a_form_post_with_a_wrong_token_is_refused(client, token, wrong):
    assert_form_expired(client.post("/t/form", data={FIELD: wrong}))


def test_a_token_with_one_character_changed_is_refused(client, token):
    changed = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert_form_expired(client.post("/t/form", data={FIELD: changed}))


def test_a_form_post_with_the_right_token_passes(client, token):
    response = client.post("/t/form", data={FIELD: token, "amount": "100"})
    assert (response.status_code, response.get_data(as_text=True)) == (200, "ok")


def test_the_token_stays_the_same_for_the_session(client, token, form_token):
    assert form_token(client) == token
    assert form_token(client, "/staff/signin") == token
    assert client.post("/t/form", data={FIELD: token}).status_code == 200
    assert client.post("/t/form", data={FIELD: token}).status_code == 200  # not single-use


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_other_unsafe_methods_are_checked_too(client, token, method):
    assert_form_expired(client.open("/t/form", method=method, data={"x": "1"}))
    assert client.open("/t/form", method=method, data={FIELD: token}).status_code == 200


def test_safe_methods_are_not_checked(client):
    assert client.get("/t/form?x=1").status_code == 200
    assert client.head("/t/form").status_code == 200


def test_the_token_in_the_query_string_does_not_count(client, token):
    # Tokens never travel in URLs (they end up in logs and Referer headers).
    assert_form_expired(client.post(f"/t/form?{FIELD}={token}", data={"x": "1"}))


def test_a_form_post_without_any_session_is_refused(site):
    fresh = site.test_client()
    assert_form_expired(fresh.post("/t/form", data={FIELD: ""}))
    assert_form_expired(fresh.post("/t/form", data={FIELD: "None"}))


def test_the_content_type_is_read_case_blind_and_with_parameters(client, token):
    for content_type in ("application/x-www-form-urlencoded; charset=utf-8", "Application/X-WWW-Form-Urlencoded"):
        assert_form_expired(client.post("/t/form", data="x=1", content_type=content_type))
        assert client.post("/t/form", data=f"{FIELD}={token}", content_type=content_type).status_code == 200


def test_with_repeated_token_fields_the_first_counts(client, token):
    from werkzeug.datastructures import MultiDict

    assert client.post("/t/form", data=MultiDict([(FIELD, token), (FIELD, "x")])).status_code == 200
    assert_form_expired(client.post("/t/form", data=MultiDict([(FIELD, "x"), (FIELD, token)])))


# --- other bodies a cross-site page can send without a preflight ---------------------------


def test_a_multipart_form_is_checked(client, token):
    upload = {"statement": (io.BytesIO(b"%PDF-1.7"), "statement.pdf")}
    assert_form_expired(client.post("/t/form", data={**upload, "x": "1"}, content_type="multipart/form-data"))
    upload = {"statement": (io.BytesIO(b"%PDF-1.7"), "statement.pdf")}
    response = client.post("/t/form", data={**upload, FIELD: token}, content_type="multipart/form-data")
    assert response.status_code == 200


def test_a_broken_multipart_body_is_refused_not_a_crash(client, token):
    assert_form_expired(client.post("/t/form", data=b"garbage", content_type="multipart/form-data"))
    assert_form_expired(client.post("/t/form", data=b"garbage", content_type="multipart/form-data; boundary=xyz"))


def test_a_text_plain_post_is_checked(client, token):
    # <form enctype="text/plain"> is never parsed as a form, so it can never carry the token.
    assert_form_expired(client.post("/t/form", data='{"amount": 100}', content_type="text/plain"))
    assert_form_expired(client.post("/t/form", data=f"{FIELD}={token}", content_type="text/plain;charset=UTF-8"))


def test_a_bare_post_with_the_session_cookie_is_checked(client, token):
    # fetch(url, {method: "POST", credentials: "include"}) sends no Content-Type at all.
    assert_form_expired(client.post("/t/form"))


def test_a_bare_post_without_a_session_cookie_is_not_a_form(site):
    # A back end calling the API with no body has no browser session to abuse.
    assert site.test_client().post("/t/form").status_code == 200


# --- not affected -------------------------------------------------------------------------


def test_json_posts_are_not_affected(client, token):
    response = client.post("/t/form", json={"amount": 100})
    assert (response.status_code, response.get_data(as_text=True)) == (200, "ok")
    assert client.post("/t/form", data="{}", content_type="application/problem+json").status_code == 200


def test_exempt_views_take_form_posts_without_a_token(client, token):
    assert client.post("/t/exempt", data={"grant_type": "client_credentials"}).status_code == 200
    assert client.post("/t/exempt", data="x", content_type="text/plain").status_code == 200
    assert client.post("/t/exempt").status_code == 200


def test_exempt_marks_the_view_and_returns_it():
    from host.identity import csrf

    def view():
        return "ok"

    assert csrf.exempt(view) is view
    assert view.csrf_exempt is True


def test_unknown_pages_answer_404_not_400(client, token):
    assert client.post("/no-such-page", data={"x": "1"}).status_code == 404


def test_a_wrong_method_answers_405_not_400(client, token):
    assert client.post("/t/whoami", data={"x": "1"}).status_code == 405


# --- the token ----------------------------------------------------------------------------


def test_the_token_differs_per_session(site, form_token):
    tokens = {form_token(site.test_client()) for _ in range(5)}
    assert len(tokens) == 5
    assert all(len(token) >= 43 for token in tokens)  # 32 random bytes, url-safe base64


def test_another_sessions_token_is_refused(site, form_token):
    mine, theirs = site.test_client(), site.test_client()
    form_token(mine)
    assert_form_expired(mine.post("/t/form", data={FIELD: form_token(theirs)}))


def test_every_form_the_host_renders_carries_the_token(client, token, sign_in):
    for path in ("/signin", "/staff/signin"):
        page = client.get(path).get_data(as_text=True)
        assert f'<input type="hidden" name="{FIELD}" value="{token}">' in page
    sign_in(client, "hq.admin", "canopy-demo", staff=True)
    staff_home = client.get("/staff").get_data(as_text=True)
    assert f'name="{FIELD}"' in staff_home  # the sign-out form


def test_the_sign_in_form_is_protected_against_login_csrf(client, token):
    # An attacker's page cannot sign the victim into the attacker's account.
    response = client.post("/signin", data={"phone": PHONE, "password": PASSWORD})
    assert_form_expired(response)
    assert client.post("/signin", data={"phone": PHONE, "password": PASSWORD, FIELD: token}).status_code == 303


def test_csrf_token_and_field_in_a_request(site):
    from flask import session

    from host.identity.csrf import csrf_field, csrf_token

    with site.test_request_context("/"):
        first = csrf_token()
        assert csrf_token() == first == session[FIELD]
        assert str(csrf_field()) == f'<input type="hidden" name="{FIELD}" value="{first}">'
        session[FIELD] = 12345  # not a string: a new token is made
        assert isinstance(csrf_token(), str) and csrf_token() != first
