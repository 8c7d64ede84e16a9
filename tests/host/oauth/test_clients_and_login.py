"""Client credentials, a client managing its own registration, mini-program login,
the database replay cache, and head office's register-client command."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest

from host.oauth import clock

ISSUER = "http://localhost"


def cc_token(partner, scope="client:manage"):
    return partner.token({"grant_type": "client_credentials", "scope": scope})


def test_client_credentials_have_no_customer(wallet):
    response = cc_token(wallet, "payments:create client:manage")
    body = response.get_json()
    assert response.status_code == 200 and body["token_type"] == "DPoP" and "refresh_token" not in body
    me = wallet.get("/api/v1/me", body["access_token"])
    assert me.status_code == 403  # no profile scope, and no customer
    assert error(cc_token(wallet, "profile.basic:read")) == "invalid_scope"
    assert error(cc_token(wallet, "")) == "invalid_scope"


def error(response):
    return response.get_json().get("error")


def test_a_client_rotates_its_own_keys_and_redirect_uris(wallet, helpers):
    access = cc_token(wallet).get_json()["access_token"]
    new_key = helpers.PartnerKey("EdDSA")
    body = {"jwks": {"keys": [wallet.key.public_jwk(), new_key.public_jwk()]},
            "redirect_uris": ["https://partner.example/callback", "https://partner.example/v2/callback"]}
    response = wallet.get("/api/v1/clients/test.wallet", access, method="PUT", json=body)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["redirect_uris"][1] == "https://partner.example/v2/callback"
    # The new key authenticates now.
    rotated = helpers.Partner(wallet.app, "test.wallet", new_key)
    assert rotated.par(redirect_uri="https://partner.example/v2/callback").status_code == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "s"}]}}, "jwks.keys[0]"),
        ({"jwks": {"keys": []}}, "jwks"),
        ({"redirect_uris": ["http://partner.example/cb"]}, "redirect_uris[0]"),
        ({"redirect_uris": ["https://partner.example/cb#frag"]}, "redirect_uris[0]"),
        ({"redirect_uris": "https://partner.example/cb"}, "redirect_uris"),
        ({"grant_types": ["password"]}, "grant_types"),
        ({}, "_schema"),
    ],
)
def test_bad_registrations_name_the_field(wallet, body, field):
    access = cc_token(wallet).get_json()["access_token"]
    response = wallet.get("/api/v1/clients/test.wallet", access, method="PUT", json=body)
    assert response.status_code == 422 and field in response.get_json()["errors"]


def test_a_client_manages_only_itself(wallet, oauth_app, helpers):
    other = helpers.Partner(oauth_app, "test.other", helpers.PartnerKey("ES256"))
    other.register()
    access = cc_token(other).get_json()["access_token"]
    response = other.get("/api/v1/clients/test.wallet", access, method="PUT",
                         json={"redirect_uris": ["https://evil.example/cb"]})
    assert response.status_code == 403
    without_scope = cc_token(wallet, "payments:create").get_json()["access_token"]
    response = wallet.get("/api/v1/clients/test.wallet", without_scope, method="PUT", json={"redirect_uris": ["https://a.example/cb"]})
    assert response.status_code == 403 and response.get_json()["error"] == "insufficient_scope"


def login_code(browser, plugin_id="test.wallet", branch="SH001"):
    return browser.http.post(f"/mp/{plugin_id}/login-code?branch={branch}", json={})


def test_mini_program_login(wallet, browser, helpers):
    issued = login_code(browser)
    assert issued.status_code == 200, issued.get_json()
    code = issued.get_json()["code"]
    response = wallet.http.post("/api/v1/miniprogram/sessions", data={"code": code, **wallet.auth()})
    body = response.get_json()
    assert response.status_code == 200, body
    assert len(body["sub"]) == 26 and body["session_token"] and body["expires_in"] > 0
    seen = wallet.http.post("/oauth/introspect", data={"token": body["session_token"], **wallet.auth()}).get_json()
    assert seen["active"] is True and seen["sub"] == body["sub"] and seen["token_type"] == "session"
    again = wallet.http.post("/api/v1/miniprogram/sessions", data={"code": code, **wallet.auth()})
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant"


def test_mini_program_login_codes_are_bound_and_short_lived(oauth_app, wallet, browser, helpers, monkeypatch):
    other = helpers.Partner(oauth_app, "test.other", helpers.PartnerKey("ES256"))
    other.register()
    code = login_code(browser).get_json()["code"]
    stolen = other.http.post("/api/v1/miniprogram/sessions", data={"code": code, **other.auth()})
    assert stolen.status_code == 400 and stolen.get_json()["error"] == "invalid_grant"
    assert wallet.http.post("/api/v1/miniprogram/sessions", data={"code": code}).status_code == 400  # no client auth

    code = login_code(browser).get_json()["code"]
    later = clock.now() + timedelta(seconds=61)
    monkeypatch.setattr(clock, "now", lambda: later)
    late = wallet.http.post("/api/v1/miniprogram/sessions",
                            data={"code": code, **wallet.auth(now=int(later.timestamp()))})
    assert late.status_code == 400 and "expired" in late.get_json()["error_description"]


def test_login_codes_need_a_signed_in_customer_json_and_an_installed_plugin(oauth_app, browser):
    assert oauth_app.test_client().post("/mp/test.wallet/login-code?branch=SH001", json={}).status_code == 401
    assert browser.http.post("/mp/test.wallet/login-code?branch=SH001", data={"x": "1"}).status_code in (400, 415)
    assert login_code(browser, branch="BJ001").status_code == 404
    assert login_code(browser, plugin_id="no.such").status_code == 404


def test_the_database_replay_cache_holds_across_sessions(oauth_app):
    from host.db import get_database
    from host.oauth.replay import DatabaseReplayCache, purge_expired

    database = get_database(oauth_app)
    until = int(time.time()) + 60
    with database.transaction(write=True) as session:
        assert DatabaseReplayCache(session).first_use("dpop:k:1", until) is True
    with database.transaction(write=True) as session:
        cache = DatabaseReplayCache(session)
        assert cache.first_use("dpop:k:1", until) is False
        assert cache.first_use("dpop:k:2", int(time.time()) - 1) is True
    with database.transaction(write=True) as session:  # an expired entry no longer blocks
        assert DatabaseReplayCache(session).first_use("dpop:k:2", until) is True
        assert purge_expired(session) == 0
    # A rolled-back request keeps what it saw spent.
    with database.sessions() as session:
        cache = DatabaseReplayCache(session)
        cache.first_use("dpop:k:3", until)
        session.rollback()
        cache.restore()
        session.commit()
    with database.transaction(write=True) as session:
        assert DatabaseReplayCache(session).first_use("dpop:k:3", until) is False


def test_register_client_command(oauth_app, tmp_path, helpers):
    key = helpers.PartnerKey("PS256")
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(key.jwks()), encoding="utf-8")
    runner = oauth_app.test_cli_runner()
    result = runner.invoke(args=["oauth", "register-client", "test.other", "--jwks", str(jwks),
                                 "--redirect-uri", "https://other.example/cb"])
    assert result.exit_code == 0, result.output
    partner = helpers.Partner(oauth_app, "test.other", key, redirect_uri="https://other.example/cb")
    assert partner.par().status_code == 201
    bad = runner.invoke(args=["oauth", "register-client", "test.other", "--jwks", str(jwks),
                              "--redirect-uri", "http://other.example/cb"])
    assert bad.exit_code == 1 and "redirect_uris[0]" in bad.output
    unknown = runner.invoke(args=["oauth", "register-client", "no.such", "--jwks", str(jwks),
                                  "--redirect-uri", "https://other.example/cb"])
    assert unknown.exit_code == 1 and "no plugin" in unknown.output
