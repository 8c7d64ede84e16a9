"""host.identity.sessions: the session cookie, who is signed in, guarded pages, safe redirects."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest
from itsdangerous import TimestampSigner
from sqlalchemy import delete

from host.db import get_database
from host.demo import CUSTOMERS, DEMO_PASSWORD
from host.identity.models import Customer
from host.identity.sessions import CUSTOMER_KEY, safe_next

PHONE, PASSWORD = CUSTOMERS[0][:2]
COOKIE = "canopy_session"


def session_cookie_header(response) -> str:
    [header] = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(COOKIE + "=")]
    return header


def whoami(client) -> dict:
    return client.get("/t/whoami").get_json()


@pytest.fixture
def client(site):
    return site.test_client()


# --- the cookie ---------------------------------------------------------------------------


def test_signing_in_sets_a_secure_httponly_lax_cookie(client, sign_in):
    response = sign_in(client, PHONE, PASSWORD)
    assert response.status_code == 303
    header = session_cookie_header(response)
    attributes = [part.strip().lower() for part in header.split(";")[1:]]
    assert "secure" in attributes
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert "path=/" in attributes
    assert any(part.startswith("expires=") for part in attributes)  # 30 minutes, not "until the browser closes"


def test_even_the_anonymous_session_cookie_is_secure(client):
    response = client.get("/signin")  # the CSRF token starts a session
    header = session_cookie_header(response).lower()
    assert "; secure" in header and "; httponly" in header and "; samesite=lax" in header


def test_the_session_holds_who_and_when_only(client, sign_in, site):
    sign_in(client, PHONE, PASSWORD)
    with client.session_transaction() as session:
        assert set(session) == {CUSTOMER_KEY, "signed_in_at", "_permanent"}
        with site.app_context(), get_database(site).transaction() as db:
            assert session[CUSTOMER_KEY] == db.query(Customer).filter_by(phone=PHONE).one().id


def test_every_request_refreshes_the_idle_timeout(client, sign_in):
    sign_in(client, PHONE, PASSWORD)
    response = client.get("/t/whoami")
    assert "expires=" in session_cookie_header(response).lower()


def _forged(site, data: dict, *, age_seconds: int, monkeypatch) -> str:
    """A session cookie signed with the app's key ``age_seconds`` ago."""
    serializer = site.session_interface.get_signing_serializer(site)
    with monkeypatch.context() as patch:
        patch.setattr(TimestampSigner, "get_timestamp", lambda self: int(time.time()) - age_seconds)
        return serializer.dumps(data)


def test_a_session_idle_for_more_than_30_minutes_is_not_accepted(client, site, sign_in, monkeypatch):
    sign_in(client, PHONE, PASSWORD)
    with client.session_transaction() as session:
        data = dict(session)
    client.set_cookie(COOKIE, _forged(site, data, age_seconds=20 * 60, monkeypatch=monkeypatch))
    assert whoami(client)["customer"] == PHONE
    client.set_cookie(COOKIE, _forged(site, data, age_seconds=40 * 60, monkeypatch=monkeypatch))
    assert whoami(client)["customer"] is None


def test_a_cookie_signed_with_another_key_is_not_accepted(client, sign_in):
    from flask import Flask
    from flask.sessions import SecureCookieSessionInterface

    sign_in(client, PHONE, PASSWORD)
    with client.session_transaction() as session:
        data = dict(session)
    other = Flask("another-host")
    other.secret_key = "another-secret-key-of-enough-length-0123456789"
    client.set_cookie(COOKIE, SecureCookieSessionInterface().get_signing_serializer(other).dumps(data))
    assert whoami(client)["customer"] is None


# --- who is signed in ---------------------------------------------------------------------


def test_nobody_is_signed_in_at_first(client):
    assert whoami(client) == {"customer": None, "staff": None}


def test_current_customer_after_signing_in(client, sign_in):
    sign_in(client, PHONE, PASSWORD)
    assert whoami(client) == {"customer": PHONE, "staff": None}


def test_current_staff_after_a_staff_sign_in(client, sign_in):
    sign_in(client, "hq.admin", DEMO_PASSWORD, staff=True)
    assert whoami(client) == {"customer": None, "staff": "hq.admin"}


def test_signing_in_as_someone_else_replaces_the_session(client, sign_in):
    sign_in(client, PHONE, PASSWORD)
    sign_in(client, "hq.admin", DEMO_PASSWORD, staff=True)
    assert whoami(client) == {"customer": None, "staff": "hq.admin"}


def test_a_failed_sign_in_signs_nobody_in(client, sign_in):
    assert sign_in(client, PHONE, "wrong").status_code == 401
    assert whoami(client) == {"customer": None, "staff": None}


def test_a_removed_customer_is_signed_out_at_once(client, sign_in, site):
    sign_in(client, PHONE, PASSWORD)
    with get_database(site).transaction(write=True) as db:
        db.execute(delete(Customer).where(Customer.phone == PHONE))
    assert whoami(client)["customer"] is None
    assert client.get("/t/statement").status_code == 303


@pytest.mark.parametrize("planted", [["not", "a", "string"], 42, None, {"id": "x"}])
def test_a_session_id_of_the_wrong_type_is_nobody(client, planted):
    with client.session_transaction() as session:
        session[CUSTOMER_KEY] = planted
        session["staff_id"] = planted
    assert whoami(client) == {"customer": None, "staff": None}


# --- session fixation ---------------------------------------------------------------------


def test_signing_in_starts_a_fresh_session(client, sign_in):
    client.get("/signin")
    with client.session_transaction() as session:
        session["planted_by_attacker"] = "x"
        session["staff_id"] = "0" * 32
        token_before = session["csrf_token"]
    sign_in(client, PHONE, PASSWORD)
    with client.session_transaction() as session:
        assert "planted_by_attacker" not in session
        assert "staff_id" not in session
        assert "csrf_token" not in session  # a new token is made on the next form
    client.get("/signin")
    with client.session_transaction() as session:
        assert session["csrf_token"] != token_before


def test_a_cookie_from_before_the_sign_in_does_not_become_signed_in(client, site, sign_in):
    # The attacker's copy of the pre-sign-in cookie stays anonymous after the victim signs in.
    client.get("/signin")
    attackers_copy = client.get_cookie(COOKIE).value
    sign_in(client, PHONE, PASSWORD)
    assert client.get_cookie(COOKIE).value != attackers_copy
    attacker = site.test_client()
    attacker.set_cookie(COOKIE, attackers_copy)
    assert whoami(attacker)["customer"] is None


# --- pages that need someone --------------------------------------------------------------


def test_a_customer_page_sends_visitors_to_sign_in_with_next(client):
    response = client.get("/t/statement?month=2024-05&lang=en")
    assert response.status_code == 303
    location = urlsplit(response.headers["Location"])
    assert location.path == "/signin"
    assert parse_qs(location.query) == {"next": ["/t/statement?month=2024-05&lang=en"]}


def test_next_without_a_query_has_no_question_mark(client):
    location = urlsplit(client.get("/t/statement").headers["Location"])
    assert parse_qs(location.query) == {"next": ["/t/statement"]}


def test_signing_in_returns_to_the_page_asked_for(client, sign_in):
    next_page = parse_qs(urlsplit(client.get("/t/statement?month=2024-05").headers["Location"]).query)["next"][0]
    response = sign_in(client, PHONE, PASSWORD, next=next_page)
    assert (response.status_code, response.headers["Location"]) == (303, "/t/statement?month=2024-05")
    page = client.get("/t/statement?month=2024-05")
    assert (page.status_code, page.get_data(as_text=True)) == (200, f"statement of {PHONE}")


def test_a_staff_session_is_not_a_customer_session(client, sign_in):
    sign_in(client, "hq.admin", DEMO_PASSWORD, staff=True)
    assert client.get("/t/statement").status_code == 303


def test_a_staff_page_sends_visitors_to_the_staff_sign_in(client):
    response = client.get("/t/review")
    assert response.status_code == 303
    location = urlsplit(response.headers["Location"])
    assert (location.path, parse_qs(location.query)) == ("/staff/signin", {"next": ["/t/review"]})


def test_a_customer_session_is_not_a_staff_session(client, sign_in):
    sign_in(client, PHONE, PASSWORD)
    assert client.get("/t/review").status_code == 303


@pytest.mark.parametrize("username", ["hq.admin", "hq.reviewer"])
def test_a_staff_page_lets_in_the_roles_it_names(client, sign_in, username):
    sign_in(client, username, DEMO_PASSWORD, staff=True)
    page = client.get("/t/review")
    assert (page.status_code, page.get_data(as_text=True)) == (200, f"review by {username}")


@pytest.mark.parametrize("username", ["sh.admin", "sh.operator", "bj.operator"])
def test_a_staff_page_refuses_other_roles_with_403(client, sign_in, username):
    sign_in(client, username, DEMO_PASSWORD, staff=True)
    page = client.get("/t/review")
    assert page.status_code == 403
    assert "Not allowed" in page.get_data(as_text=True)
    problem = client.get("/t/review", headers={"Accept": "application/json"})
    assert (problem.status_code, problem.mimetype) == (403, "application/problem+json")
    body = problem.get_json()
    assert (body["status"], body["title"]) == (403, "Not allowed")
    assert "hq_admin" in body["detail"] and "hq_reviewer" in body["detail"]


def test_a_staff_page_without_roles_lets_in_any_staff(client, sign_in):
    sign_in(client, "bj.operator", DEMO_PASSWORD, staff=True)
    assert client.get("/t/any-staff").get_data(as_text=True) == "hello bj.operator"


# --- safe redirects -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "//evil.example/signin",
        "///evil.example",
        "https://evil.example",
        "http://evil.example/",
        "HTTPS://evil.example",
        "\\\\evil.example",
        "/\\evil.example",
        "\\/evil.example",
        "/\\/evil.example",
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "evil.example",
        " /evil",
        "/\t/evil.example",
        "/\n/evil.example",
        "/account\r\nSet-Cookie: x=y",
        "/account\x00",
        "/account\x1b[31m",
        "",
        None,
    ],
)
def test_safe_next_refuses_anything_but_a_local_path(target):
    assert safe_next(target) == "/"
    assert safe_next(target, default="/staff") == "/staff"


@pytest.mark.parametrize("target", ["/", "/s/SH001", "/s/SH001?lang=en", "/t/statement?month=2024-05#top", "/账户", "/a%2F%2Fb"])
def test_safe_next_keeps_local_paths(target):
    assert safe_next(target) == target


def test_sign_in_never_redirects_off_site(client, sign_in):
    response = sign_in(client, PHONE, PASSWORD, next="//evil.example/phish")
    assert (response.status_code, response.headers["Location"]) == (303, "/")


def test_the_form_carries_only_a_safe_next(client):
    page = client.get("/signin?next=https://evil.example").get_data(as_text=True)
    assert 'name="next" value="/"' in page
    assert "evil.example" not in page


def test_a_non_ascii_next_is_sent_encoded(client, sign_in):
    response = sign_in(client, PHONE, PASSWORD, next="/账户?x=1")
    assert response.headers["Location"] == "/%E8%B4%A6%E6%88%B7?x=1"


# --- signing out --------------------------------------------------------------------------


def test_signing_out_clears_the_session(client, sign_in, form_token):
    sign_in(client, PHONE, PASSWORD)
    token = form_token(client)
    response = client.post("/signout", data={"csrf_token": token})
    assert (response.status_code, response.headers["Location"]) == (303, "/")
    header = session_cookie_header(response)
    assert "expires=thu, 01 jan 1970" in header.lower()  # the cookie is removed
    assert client.get_cookie(COOKIE) is None
    assert whoami(client) == {"customer": None, "staff": None}
    assert client.get("/t/statement").status_code == 303


@pytest.mark.parametrize("body", [{}, {"data": {}}, {"data": {"csrf_token": "forged"}}, {"data": "x", "content_type": "text/plain"}])
def test_signing_out_needs_the_form_token(client, sign_in, body):
    # Even a body-less post, as fetch() sends it from another page, is refused.
    sign_in(client, PHONE, PASSWORD)
    assert client.post("/signout", **body).status_code == 400
    assert whoami(client)["customer"] == PHONE


def test_signing_out_staff_too(client, sign_in, form_token):
    sign_in(client, "hq.admin", DEMO_PASSWORD, staff=True)
    client.post("/signout", data={"csrf_token": form_token(client, "/staff")})
    assert whoami(client) == {"customer": None, "staff": None}


def test_without_a_secret_key_pages_that_need_a_session_say_what_is_missing(app_factory):
    client = app_factory(SECRET_KEY=None).test_client()
    assert client.get("/healthz").status_code == 200  # liveness does not need a session
    response = client.get("/signin", headers={"Accept": "application/json"})
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert "CANOPY_SECRET_KEY" in response.get_json()["detail"]
