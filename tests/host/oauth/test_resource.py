"""The resource server and the consent ledger: tokens, proofs, scopes, live consent.

Every test runs twice: reading each token from the database (no Redis), and with the token
cache in Redis (``REDIS_URL``), where the answers must be the same.
"""

from __future__ import annotations

import pytest

ISSUER = "http://localhost"


@pytest.fixture(autouse=True, params=["database", "token cache"])
def token_store(request, oauth_app):
    """Where the resource server finds tokens: the database, or the Redis token cache."""
    if request.param == "token cache":
        request.getfixturevalue("token_cache_on")(oauth_app)
    return request.param


@pytest.fixture
def tokens_for(walk, wallet):
    """``tokens_for(scope)`` walks the customer through and returns the token response."""

    def run(scope="profile.basic:read profile.phone:read"):
        response = wallet.exchange(walk(scope=scope)["code"])
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    return run


def challenge(response) -> str:
    return response.headers.get("WWW-Authenticate", "")


def test_a_token_in_the_query_string_or_body_is_refused(wallet, tokens_for):
    access = tokens_for()["access_token"]
    response = wallet.get(f"/api/v1/me?access_token={access}", access)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_request"
    bare = wallet.http.get("/api/v1/me", query_string={"access_token": access})
    assert bare.status_code == 400 and "Authorization header" in bare.get_json()["error_description"]


def test_no_token_is_a_401_with_a_dpop_challenge(wallet):
    response = wallet.http.get("/api/v1/me")
    assert response.status_code == 401 and challenge(response).startswith("DPoP ")
    assert "error=" not in challenge(response) and 'algs="PS256 ES256 EdDSA"' in challenge(response)
    assert response.mimetype == "application/problem+json"


def test_the_token_must_be_sent_as_dpop_with_its_own_proof(wallet, tokens_for, helpers):
    access = tokens_for()["access_token"]
    cases = {
        "bearer scheme": dict(scheme="Bearer"),
        "wrong method": dict(method="GET", htu=None, headers={"DPoP": wallet.key.proof("POST", f"{ISSUER}/api/v1/me", access_token=access)}),
        "wrong url": dict(htu=f"{ISSUER}/api/v1/plugins"),
        "wrong ath": dict(ath_token="another-token"),
        "another key": dict(key=helpers.PartnerKey("ES256")),
        "unknown token": dict(),
    }
    for name, options in cases.items():
        token = "not-a-token" if name == "unknown token" else access
        response = wallet.get("/api/v1/me", token, **options)
        assert response.status_code == 401, name
        assert response.get_json()["error"] in ("invalid_token", "invalid_dpop_proof"), name
        assert challenge(response).startswith("DPoP error="), name


def test_a_stale_or_replayed_proof_is_refused(wallet, tokens_for):
    import time

    access = tokens_for()["access_token"]
    stale = wallet.key.proof("GET", f"{ISSUER}/api/v1/me", access_token=access, iat=int(time.time()) - 120)
    response = wallet.http.get("/api/v1/me", headers={"Authorization": f"DPoP {access}", "DPoP": stale})
    assert response.status_code == 401 and response.get_json()["error"] == "invalid_dpop_proof"
    proof = wallet.key.proof("GET", f"{ISSUER}/api/v1/me", access_token=access)
    headers = {"Authorization": f"DPoP {access}", "DPoP": proof}
    assert wallet.http.get("/api/v1/me", headers=headers).status_code == 200
    replayed = wallet.http.get("/api/v1/me", headers=headers)
    assert replayed.status_code == 401 and "used before" in replayed.get_json()["error_description"]


def test_the_token_only_opens_what_its_scopes_allow(wallet, tokens_for):
    basic = tokens_for("profile.basic:read")["access_token"]
    body = wallet.get("/api/v1/me", basic).get_json()
    assert body["nickname"] == "林小姐" and "phone" not in body
    payments_only = tokens_for("payments:create")["access_token"]
    response = wallet.get("/api/v1/me", payments_only)
    assert response.status_code == 403 and response.get_json()["error"] == "insufficient_scope"


def _ctx_scopes(app, customer_id):
    from canopy_sdk.types import BranchInfo

    from host.runtime import get_runtime

    with app.app_context():
        ctx = get_runtime(app).context("test.wallet", branch=BranchInfo(code="SH001", name="上海分行"), locale="zh-CN",
                                       approved_scopes=["profile.basic:read", "profile.phone:read", "payments:create",
                                                        "notifications:send"], customer_id=customer_id)
        return ctx.scopes


def _customer_id(app, phone="13800000001"):
    from sqlalchemy import select

    from host.db import get_database
    from host.identity.models import Customer

    with app.app_context(), get_database(app).transaction() as session:
        return session.scalar(select(Customer.id).where(Customer.phone == phone))


def test_consent_reaches_ctx_and_withdrawing_one_scope_takes_effect_at_once(oauth_app, wallet, browser, tokens_for, helpers):
    customer_id = _customer_id(oauth_app)
    assert _ctx_scopes(oauth_app, customer_id) == {"payments:create"}  # nothing consented yet
    issued = tokens_for()
    assert _ctx_scopes(oauth_app, customer_id) == {"payments:create", "profile.basic:read", "profile.phone:read"}

    page = browser.http.get("/me/authorisations")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "读取您的手机号码" in html and "SH001" in html
    withdrawn = browser.http.post("/me/authorisations/withdraw", data={
        "plugin_id": "test.wallet", "scope": "profile.phone:read", "csrf_token": helpers.form_token(html)})
    assert withdrawn.status_code == 303

    assert _ctx_scopes(oauth_app, customer_id) == {"payments:create", "profile.basic:read"}
    body = wallet.get("/api/v1/me", issued["access_token"]).get_json()
    assert "phone" not in body and body["nickname"] == "林小姐"
    seen = wallet.http.post("/oauth/introspect", data={"token": issued["access_token"], **wallet.auth()}).get_json()
    assert seen["scope"] == "profile.basic:read"


def test_withdrawing_everything_revokes_the_plugins_tokens(oauth_app, wallet, browser, tokens_for, helpers):
    issued = tokens_for()
    assert wallet.get("/api/v1/me", issued["access_token"]).status_code == 200
    html = browser.http.get("/me/authorisations").get_data(as_text=True)
    response = browser.http.post("/me/authorisations/withdraw",
                                 data={"plugin_id": "test.wallet", "csrf_token": helpers.form_token(html)})
    assert response.status_code == 303
    assert wallet.get("/api/v1/me", issued["access_token"]).status_code == 401
    refreshed = wallet.token({"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]})
    assert refreshed.status_code == 400 and refreshed.get_json()["error"] == "invalid_grant"
    assert _ctx_scopes(oauth_app, _customer_id(oauth_app)) == {"payments:create"}
    assert "test.wallet" not in browser.http.get("/me/authorisations").get_data(as_text=True)


def test_withdrawing_needs_the_csrf_token_and_a_signed_in_customer(oauth_app, browser, tokens_for):
    tokens_for()
    assert browser.http.post("/me/authorisations/withdraw", data={"plugin_id": "test.wallet"}).status_code == 400
    stranger = oauth_app.test_client()
    response = stranger.get("/me/authorisations")
    assert response.status_code == 303 and response.headers["Location"].startswith("/signin")


def test_each_customer_sees_only_their_own_data(oauth_app, wallet, tokens_for, helpers):
    mine = tokens_for()["access_token"]
    other_browser = helpers.Browser(oauth_app)
    other_browser.sign_in("13900000002", "canopy-demo-2")
    request_uri = wallet.par(scope="profile.basic:read profile.phone:read").get_json()["request_uri"]
    code = helpers.redirect_params(other_browser.decide(request_uri, "test.wallet"))["code"]
    theirs = wallet.exchange(code).get_json()["access_token"]
    a, b = wallet.get("/api/v1/me", mine).get_json(), wallet.get("/api/v1/me", theirs).get_json()
    assert a["phone"] == "13800000001" and b["phone"] == "13900000002" and a["sub"] != b["sub"]


def test_another_plugins_token_is_useless_here(oauth_app, wallet, browser, helpers):
    other = helpers.Partner(oauth_app, "test.other", helpers.PartnerKey("ES256"))
    other.register()
    request_uri = other.par().get_json()["request_uri"]
    code = helpers.redirect_params(browser.decide(request_uri, "test.other"))["code"]
    theirs = other.exchange(code).get_json()["access_token"]
    # The wallet's back end cannot use it (bound to test.other's key) ...
    assert wallet.get("/api/v1/me", theirs).status_code == 401
    # ... cannot introspect or revoke it ...
    seen = wallet.http.post("/oauth/introspect", data={"token": theirs, **wallet.auth()}).get_json()
    assert seen == {"active": False}
    wallet.http.post("/oauth/revoke", data={"token": theirs, **wallet.auth()})
    assert other.get("/api/v1/me", theirs).status_code == 200
    # ... and the pairwise subjects of the two plugins differ for one customer.
    mine = wallet.exchange(helpers.redirect_params(browser.decide(
        wallet.par().get_json()["request_uri"], "test.wallet"))["code"]).get_json()["access_token"]
    assert wallet.get("/api/v1/me", mine).get_json()["sub"] != other.get("/api/v1/me", theirs).get_json()["sub"]
