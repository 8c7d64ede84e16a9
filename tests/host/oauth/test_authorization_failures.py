"""Every way an authorization can fail, failing the way it should."""

from __future__ import annotations

from datetime import timedelta

import pytest

from host.oauth import clock

ISSUER = "http://localhost"


def error_of(response):
    return response.status_code, response.get_json().get("error")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"code_challenge": None, "code_challenge_method": None}, "code_challenge is required"),
        ({"code_challenge_method": "plain"}, "'plain' is not supported"),
        ({"code_challenge_method": None}, "code_challenge_method is required"),
        ({"code_challenge": "short"}, "must be 43 base64url characters"),
    ],
)
def test_missing_or_plain_pkce_is_refused_at_par(wallet, params, message):
    response = wallet.par(**params)
    assert error_of(response) == (400, "invalid_request")
    assert message in response.get_json()["error_description"]


def test_a_wrong_or_missing_verifier_is_refused(walk, wallet):
    code = walk()["code"]
    assert error_of(wallet.exchange(code, verifier="w" * 43)) == (400, "invalid_grant")
    code = walk()["code"]
    response = wallet.token({"grant_type": "authorization_code", "code": code, "redirect_uri": wallet.redirect_uri})
    assert error_of(response) == (400, "invalid_request")


def test_authorization_requests_must_be_pushed(oauth_app, wallet, browser):
    from host.oauth.pkce import s256

    plain = browser.http.get("/oauth/authorize", query_string={
        "response_type": "code", "client_id": "test.wallet", "redirect_uri": wallet.redirect_uri,
        "scope": "profile.basic:read", "code_challenge": s256("v" * 43), "code_challenge_method": "S256"})
    assert plain.status_code == 400 and "Location" not in plain.headers
    invented = browser.open("urn:ietf:params:oauth:request_uri:made-up", "test.wallet")
    assert invented.status_code == 400 and "unknown" in invented.get_data(as_text=True)


def test_a_request_uri_is_for_its_client_its_browser_and_once(oauth_app, wallet, browser, helpers):
    request_uri = wallet.par().get_json()["request_uri"]
    assert browser.open(request_uri, "test.other").status_code == 400
    helpers.redirect_params(browser.decide(request_uri, "test.wallet"))
    assert browser.open(request_uri, "test.wallet").status_code == 400  # completed

    request_uri = wallet.par().get_json()["request_uri"]
    assert browser.open(request_uri, "test.wallet").status_code == 200
    thief = helpers.Browser(oauth_app)
    thief.sign_in("13900000002", "canopy-demo-2")
    stolen = thief.open(request_uri, "test.wallet")
    assert stolen.status_code == 400 and "another browser" in stolen.get_data(as_text=True)


def test_an_unopened_request_uri_expires_after_60_seconds(wallet, browser, monkeypatch):
    request_uri = wallet.par().get_json()["request_uri"]
    later = clock.now() + timedelta(seconds=61)
    monkeypatch.setattr(clock, "now", lambda: later)
    response = browser.open(request_uri, "test.wallet")
    assert response.status_code == 400 and "expired" in response.get_data(as_text=True)


def test_a_reused_code_is_refused_and_revokes_what_it_issued(walk, wallet):
    code = walk()["code"]
    first = wallet.exchange(code).get_json()
    assert wallet.get("/api/v1/me", first["access_token"]).status_code == 200
    again = wallet.exchange(code)
    assert error_of(again) == (400, "invalid_grant") and "used before" in again.get_json()["error_description"]
    assert wallet.get("/api/v1/me", first["access_token"]).status_code == 401
    refreshed = wallet.token({"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert error_of(refreshed) == (400, "invalid_grant")


def test_an_expired_code_is_refused(walk, wallet, monkeypatch):
    code = walk()["code"]
    later = clock.now() + timedelta(seconds=61)
    monkeypatch.setattr(clock, "now", lambda: later)
    response = wallet.exchange(code, proof=wallet.key.proof("POST", f"{ISSUER}/oauth/token", iat=int(later.timestamp())),
                               auth=wallet.auth(now=int(later.timestamp())))
    assert error_of(response) == (400, "invalid_grant") and "expired" in response.get_json()["error_description"]


def test_redirect_uris_match_exactly(wallet, walk):
    for uri in ("https://partner.example/callback/", "https://partner.example/callback?x=1",
                "https://evil.example/callback", "https://partner.example/CALLBACK"):
        response = wallet.par(redirect_uri=uri)
        assert error_of(response) == (400, "invalid_request"), uri
    code = walk()["code"]
    assert error_of(wallet.exchange(code, redirect_uri="https://partner.example/other")) == (400, "invalid_grant")


def test_a_declined_consent_goes_back_with_access_denied_and_iss(wallet, browser, helpers):
    request_uri = wallet.par().get_json()["request_uri"]
    answer = helpers.redirect_params(browser.decide(request_uri, "test.wallet", decision="deny"))
    assert answer["error"] == "access_denied" and answer["state"] == "st-1" and answer["iss"] == ISSUER
    assert "code" not in answer


@pytest.mark.parametrize("endpoint", ["par", "token"])
def test_client_authentication_failures(wallet, walk, jwt_tools, endpoint):
    now_claims = {"iss": "test.wallet", "sub": "test.wallet", "aud": ISSUER, "exp": 9_999_999_999, "jti": "x"}
    cases = {
        "wrong aud": wallet.auth(aud=f"{ISSUER}/oauth/token"),
        "alg none": {**wallet.auth(), "client_assertion": jwt_tools.unsigned({"kid": wallet.key.kid}, now_claims)},
        "HS256": {**wallet.auth(), "client_assertion": jwt_tools.hs256(b"s" * 32, {"kid": wallet.key.kid}, now_claims)},
        "no assertion": {"client_id": "test.wallet"},
        "secret": {"client_id": "test.wallet", "client_secret": "guess"},
        "stranger key": wallet.auth() | {"client_assertion": type(wallet.key)("ES256").assertion("test.wallet", ISSUER)},
    }
    for name, auth in cases.items():
        if endpoint == "par":
            response = wallet.par(auth=auth)
        else:
            response = wallet.exchange("any-code", auth=auth)
        assert error_of(response) == (400, "invalid_client"), name


def test_a_replayed_client_assertion_is_refused(wallet):
    auth = wallet.auth()
    assert wallet.par(auth=auth).status_code == 201
    assert error_of(wallet.par(auth=auth)) == (400, "invalid_client")


def test_dpop_at_the_token_endpoint(walk, wallet):
    key = wallet.key
    cases = {
        "no proof": "",
        "wrong method": key.proof("GET", f"{ISSUER}/oauth/token"),
        "wrong url": key.proof("POST", f"{ISSUER}/oauth/par"),
        "stale iat": key.proof("POST", f"{ISSUER}/oauth/token", iat=int(clock.now().timestamp()) - 120),
    }
    for name, proof in cases.items():
        response = wallet.exchange(walk()["code"], proof=proof)
        assert error_of(response) == (400, "invalid_dpop_proof"), name


def test_dpop_jkt_binds_the_code_to_the_key(wallet, walk, helpers):
    answer = walk(dpop_jkt=wallet.key.jkt)
    other = helpers.PartnerKey("ES256")
    response = wallet.exchange(answer["code"], proof=other.proof("POST", f"{ISSUER}/oauth/token"))
    assert error_of(response) == (400, "invalid_grant")
    # A proof at PAR binds the same way.
    bound = walk_with_par_proof(wallet, helpers)
    assert wallet.exchange(bound).status_code == 200


def walk_with_par_proof(wallet, helpers):
    browser = helpers.Browser(wallet.app)
    browser.sign_in()
    request_uri = wallet.par(dpop=True).get_json()["request_uri"]
    return helpers.redirect_params(browser.decide(request_uri, "test.wallet"))["code"]


def test_no_implicit_no_password_grant(wallet):
    assert error_of(wallet.par(response_type="token")) == (400, "unsupported_response_type")
    response = wallet.token({"grant_type": "password", "username": "13800000001", "password": "canopy-demo-1"})
    assert error_of(response) == (400, "unsupported_grant_type")


def test_scopes_beyond_the_approved_ones_are_refused(wallet):
    assert error_of(wallet.par(scope="profile.basic:read payments:read")) == (400, "invalid_scope")
    assert error_of(wallet.par(scope="")) == (400, "invalid_request")


def test_another_clients_code_is_refused(walk, oauth_app, helpers):
    code = walk()["code"]
    other = helpers.Partner(oauth_app, "test.other", helpers.PartnerKey("ES256"))
    other.register()
    assert error_of(other.exchange(code)) == (400, "invalid_grant")


@pytest.mark.parametrize(
    "form",
    [{}, {"grant_type": ""}, {"grant_type": "authorization_code"}, {"grant_type": "authorization_code", "code": "x" * 5000},
     {"grant_type": "refresh_token"}, {"grant_type": "client_credentials", "scope": "ü\"\\"}],
)
def test_bad_token_requests_get_oauth_errors_not_500(wallet, form):
    response = wallet.token(form)
    assert 400 <= response.status_code < 500 and response.get_json()["error"]


@pytest.mark.parametrize(
    "form",
    [{"redirect_uri": "ü" * 10}, {"state": "x" * 501}, {"request_uri": "urn:x"}, {"dpop_jkt": "short"},
     {"scope": "nonsense"}, {"extra": "1"}],
)
def test_bad_pushed_requests_get_oauth_errors_not_500(wallet, form):
    response = wallet.par(**form)
    assert response.status_code == 400 and response.get_json()["error"] in ("invalid_request", "invalid_scope")
