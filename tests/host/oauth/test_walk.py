"""A whole partner walk with a real client: PAR → sign-in → consent → code → token
(private_key_jwt + DPoP) → GET /api/v1/me; then refresh, introspection, revocation."""

from __future__ import annotations

ISSUER = "http://localhost"


def test_the_whole_partner_walk(oauth_app, wallet, helpers):
    browser = helpers.Browser(oauth_app)
    pushed = wallet.par(scope="profile.basic:read profile.phone:read")
    assert pushed.status_code == 201, pushed.get_json()
    assert pushed.headers["Cache-Control"] == "no-store"
    request_uri = pushed.get_json()["request_uri"]
    assert request_uri.startswith("urn:ietf:params:oauth:request_uri:") and pushed.get_json()["expires_in"] == 60

    # Not signed in: the authorization endpoint sends the browser to sign in, then back.
    first = browser.open(request_uri, wallet.plugin_id)
    assert first.status_code == 303 and first.headers["Location"].startswith("/signin?next=")
    browser.sign_in()
    consent = browser.open(request_uri, wallet.plugin_id)
    html = consent.get_data(as_text=True)
    assert consent.status_code == 200
    assert "读取您的昵称、头像和语言偏好" in html and "读取您的手机号码" in html

    answer = helpers.redirect_params(browser.decide(request_uri, wallet.plugin_id))
    assert answer["_uri"] == helpers.REDIRECT_URI
    assert answer["state"] == "st-1" and answer["iss"] == ISSUER and answer["code"]

    issued = wallet.exchange(answer["code"])
    body = issued.get_json()
    assert issued.status_code == 200, body
    assert body["token_type"] == "DPoP" and body["expires_in"] <= 600 and body["refresh_token"]
    assert set(body["scope"].split()) == {"profile.basic:read", "profile.phone:read"}
    assert issued.headers["Cache-Control"] == "no-store"

    me = wallet.get("/api/v1/me", body["access_token"])
    assert me.status_code == 200, me.get_json()
    profile = me.get_json()
    assert profile["nickname"] == "林小姐" and profile["phone"] == "13800000001" and profile["locale"] == "zh-CN"
    assert len(profile["sub"]) == 26

    # The sub is the plugin's pairwise id, the same one ctx.customer.subject gives it.
    from host.config import require_secret
    from host.identity.pairwise import pairwise_subject

    customer_id = _customer_id(oauth_app)
    assert profile["sub"] == pairwise_subject(require_secret(oauth_app.config), "test.wallet", customer_id)

    # Refresh: a new DPoP-bound access token (the refresh token itself is not rotated).
    refreshed = wallet.token({"grant_type": "refresh_token", "refresh_token": body["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.get_json()
    assert "refresh_token" not in refreshed.get_json()
    assert wallet.get("/api/v1/me", refreshed.get_json()["access_token"]).status_code == 200

    # Introspection by the token's own client.
    seen = wallet.http.post("/oauth/introspect", data={"token": body["access_token"], **wallet.auth()}).get_json()
    assert seen["active"] is True and seen["cnf"] == {"jkt": wallet.key.jkt} and seen["sub"] == profile["sub"]
    assert seen["client_id"] == "test.wallet" and seen["iss"] == ISSUER

    # Revocation: the refresh token and the grant's access tokens stop working.
    revoked = wallet.http.post("/oauth/revoke", data={"token": body["refresh_token"], **wallet.auth()})
    assert revoked.status_code == 200
    assert wallet.get("/api/v1/me", body["access_token"]).status_code == 401
    again = wallet.token({"grant_type": "refresh_token", "refresh_token": body["refresh_token"]})
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant"
    gone = wallet.http.post("/oauth/introspect", data={"token": body["access_token"], **wallet.auth()}).get_json()
    assert gone == {"active": False}


def _customer_id(app) -> str:
    from sqlalchemy import select

    from host.db import get_database
    from host.identity.models import Customer

    with app.app_context(), get_database(app).transaction() as session:
        return session.scalar(select(Customer.id).where(Customer.phone == "13800000001"))


def test_metadata(oauth_app):
    data = oauth_app.test_client().get("/.well-known/oauth-authorization-server").get_json()
    assert data["issuer"] == ISSUER
    assert data["pushed_authorization_request_endpoint"] == f"{ISSUER}/oauth/par"
    assert data["require_pushed_authorization_requests"] is True
    assert data["code_challenge_methods_supported"] == ["S256"]
    assert data["dpop_signing_alg_values_supported"] == ["PS256", "ES256", "EdDSA"]
    assert data["authorization_response_iss_parameter_supported"] is True
    assert data["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert data["token_endpoint_auth_signing_alg_values_supported"] == ["PS256", "ES256", "EdDSA"]
    assert "implicit" not in data["grant_types_supported"] and "password" not in data["grant_types_supported"]
    assert data["response_types_supported"] == ["code"]
    assert oauth_app.test_client().get("/oauth/jwks").get_json() == {"keys": []}
