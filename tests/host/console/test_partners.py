"""The partner developers' console ``/console/partner``: their organisation's mini-programs and
OAuth client settings, changed through host.oauth.clients, audited, CSRF-protected, and never
another organisation's."""

from __future__ import annotations

import json
import re

import pytest
from canopy_sdk.manifest import load_manifest
from joserfc.jwk import ECKey, OKPKey, RSAKey
from sqlalchemy import select

from host.audit import AuditEvent
from host.db import get_database
from host.demo import DEMO_PASSWORD
from host.identity.models import PartnerDeveloper, PartnerOrg
from host.identity.services import hasher
from host.oauth.clients import register_client
from host.oauth.models import OAuthClient
from host.runtime.models import PluginRecord, PluginVersion
from tests.conftest import PLUGINS

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
OWN = "city.utilities"  # published by CITYPOWER, the demo developer's organisation
OTHER = "other.pay"  # published by another partner organisation
DEVELOPER = "dev@citypower.example"
REDIRECT = "https://citypower.example/callback"


def public(key, kid, alg):
    data = key.as_dict(private=False)
    data.update(kid=kid, use="sig", alg=alg)
    return data


FIRST_KEY = ECKey.generate_key("P-256")


@pytest.fixture
def console(demo_app):
    """The demo app with CITYPOWER's plugin registered as a client, and another organisation
    with a plugin and a developer of its own."""
    database = get_database(demo_app)
    with demo_app.app_context(), database.transaction(write=True) as session:
        register_client(session, OWN, jwks={"keys": [public(FIRST_KEY, "first", "ES256")]}, redirect_uris=[REDIRECT])
        session.add(PartnerOrg(id="OTHERCO", name_zh="别家", name_en="Other Co"))
        session.add(PluginRecord(id=OTHER, publisher_kind="partner", publisher_id="OTHERCO", name={"zh": "别家支付", "en": "Other Pay"}))
        session.flush()
        session.add(PluginVersion(plugin_id=OTHER, version="2.0.0", manifest={"scopes": ["payments:create"]},
                                  checksum="sha256:" + "0" * 64, source="test", approved_scopes=["payments:create"]))
        register_client(session, OTHER, jwks={"keys": [public(ECKey.generate_key("P-256"), "o", "ES256")]},
                        redirect_uris=["https://other.example/cb"])
        session.add(PartnerDeveloper(org_id="OTHERCO", email="dev@other.example", display_name="Other Dev",
                                     password_hash=hasher().hash(DEMO_PASSWORD)))
    return demo_app


def sign_in(app, email=DEVELOPER):
    http = app.test_client()
    page = http.get("/developer/signin").get_data(as_text=True)
    response = http.post("/developer/signin", data={"csrf_token": TOKEN.search(page).group(1), "email": email,
                                                     "password": DEMO_PASSWORD})
    assert response.status_code == 303, response.status_code
    return http


@pytest.fixture
def developer(console):
    return sign_in(console)


def token(http, plugin_id=OWN):
    page = http.get(f"/console/partner/plugins/{plugin_id}")
    assert page.status_code == 200, page.status_code
    return TOKEN.search(page.get_data(as_text=True)).group(1)


def client_row(app, plugin_id=OWN) -> OAuthClient:
    with get_database(app).transaction() as session:
        return session.get(OAuthClient, plugin_id)


def audit_rows(app, action):
    with get_database(app).transaction() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def save(http, setting, value, plugin_id=OWN):
    """Post one of the plugin page's forms (in English)."""
    path = {"redirect_uris": "redirect-uris", "jwks": "jwks"}[setting]
    data = {"csrf_token": token(http), setting: value}
    return http.post(f"/console/partner/plugins/{plugin_id}/{path}?lang=en", data=data)


# -- who may look -----------------------------------------------------------------------------


def test_the_console_needs_a_signed_in_developer(console):
    response = console.test_client().get("/console/partner")
    assert response.status_code == 303 and response.headers["Location"].startswith("/developer/signin?next=")
    response = console.test_client().post("/console/partner/plugins/city.utilities/jwks", data={})
    assert response.status_code in (303, 400)


def test_the_home_lists_the_organisations_plugins_only(developer):
    response = developer.get("/console/partner?lang=en")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    assert f'data-plugin="{OWN}"' in html and "City Utilities" in html and "OAuth client registered" in html
    assert OTHER not in html and "sh.deals" not in html and "wealth.checkup" not in html


def test_a_plugin_page_shows_versions_scopes_state_and_client_settings(developer):
    html = developer.get(f"/console/partner/plugins/{OWN}?lang=en").get_data(as_text=True)
    version = load_manifest(PLUGINS / "city_utilities").version
    assert f'data-version="{version}"' in html and "payments:create" in html
    assert 'data-state="refused"' in html or 'data-state="active"' in html
    assert REDIRECT in html and "&#34;kid&#34;: &#34;first&#34;" in html
    assert html.count('name="csrf_token"') == 2  # redirect URIs, keys


@pytest.mark.parametrize("plugin_id", [OTHER, "sh.deals", "no.such.plugin", "x" * 300, "<b>", "a%00b", "city.utilities "])
def test_another_organisations_plugin_is_not_found_like_none_at_all(developer, plugin_id):
    response = developer.get(f"/console/partner/plugins/{plugin_id}")
    assert response.status_code == 404
    nothing = developer.get("/console/partner/plugins/no.such.plugin")
    assert response.get_data() == nothing.get_data()


def test_nothing_of_another_organisations_plugin_changes(console, developer):
    before = client_row(console, OTHER)
    csrf = token(developer)
    for path, field, value in (("redirect-uris", "redirect_uris", "https://evil.example/cb"),
                               ("jwks", "jwks", json.dumps({"keys": [public(FIRST_KEY, "evil", "ES256")]}))):
        response = developer.post(f"/console/partner/plugins/{OTHER}/{path}", data={"csrf_token": csrf, field: value})
        assert response.status_code == 404
    assert developer.get(f"/console/partner/plugins/{OTHER}/../../..%2f").status_code == 404
    after = client_row(console, OTHER)
    assert (after.redirect_uris, after.jwks) == (before.redirect_uris, before.jwks)
    denied = audit_rows(console, "console.partner_plugin")
    assert denied and all(row.outcome == "denied" and row.plugin_id == OTHER for row in denied)


def test_the_other_organisations_developer_sees_their_own(console):
    http = sign_in(console, "dev@other.example")
    html = http.get("/console/partner").get_data(as_text=True)
    assert f'data-plugin="{OTHER}"' in html and OWN not in html
    assert http.get(f"/console/partner/plugins/{OWN}").status_code == 404


# -- redirect URIs ----------------------------------------------------------------------------


def test_saving_redirect_uris(console, developer):
    response = save(developer, "redirect_uris", "https://citypower.example/cb\r\n\r\n  https://citypower.example/v2/cb  \n")
    assert response.status_code == 303
    assert response.headers["Location"] == "/console/partner/plugins/city.utilities?saved=redirect_uris"
    assert client_row(console).redirect_uris == ["https://citypower.example/cb", "https://citypower.example/v2/cb"]
    (row,) = audit_rows(console, "console.client_redirect_uris")
    assert row.outcome == "success" and row.plugin_id == OWN and row.subject == "CITYPOWER"
    assert 'data-saved="redirect_uris"' in developer.get(response.headers["Location"]).get_data(as_text=True)


@pytest.mark.parametrize(("text", "field", "message"), [
    ("javascript:alert(1)", "redirect_uris[0]", "with a host"),
    ("https://citypower.example/cb#top", "redirect_uris[0]", "fragment"),
    ("https://*.citypower.example/cb", "redirect_uris[0]", "wildcard"),
    ("https://citypower.example/*", "redirect_uris[0]", "wildcard"),
    ("http://citypower.example/cb", "redirect_uris[0]", "https"),
    ("http://localhost:8080/cb", "redirect_uris[0]", "https"),  # not in development
    ("https://ok.example/cb\nhttps://user:pw@citypower.example/cb", "redirect_uris[1]", "user"),
    ("/relative/cb", "redirect_uris[0]", "host"),
    ("", "redirect_uris", "1 to 10"),
    ("\n".join(f"https://citypower.example/{i}" for i in range(11)), "redirect_uris", "1 to 10"),
    ("https://citypower.example/" + "a" * 10_000, "redirect_uris", "At most"),
    ('https://citypower.example/"><script>alert(1)</script>', "redirect_uris[0]", "URI characters"),
])
def test_bad_redirect_uris_are_refused_by_field_and_nothing_changes(console, developer, text, field, message):
    before = client_row(console).redirect_uris
    response = save(developer, "redirect_uris", text)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert f'data-field="{field}"' in html and message in html
    assert "<script>alert(1)" not in html
    assert client_row(console).redirect_uris == before
    assert audit_rows(console, "console.client_redirect_uris")[-1].outcome == "failure"


def test_loopback_http_is_allowed_in_development_only(app_factory, seed_demo):
    app = seed_demo(app_factory(DEVELOPMENT=True))
    with app.app_context(), get_database(app).transaction(write=True) as session:
        register_client(session, OWN, jwks={"keys": [public(FIRST_KEY, "first", "ES256")]}, redirect_uris=[REDIRECT])
    http = sign_in(app)
    assert save(http, "redirect_uris", "http://localhost:8080/cb\nhttp://127.0.0.1/cb").status_code == 303
    assert save(http, "redirect_uris", "http://citypower.example/cb").status_code == 422


# -- keys -------------------------------------------------------------------------------------


def test_rotating_keys(console, developer):
    second = OKPKey.generate_key("Ed25519")
    jwks = {"keys": [public(FIRST_KEY, "first", "ES256"), public(second, "second", "EdDSA")]}
    response = save(developer, "jwks", json.dumps(jwks, indent=2))
    assert response.status_code == 303
    assert [key["kid"] for key in client_row(console).jwks["keys"]] == ["first", "second"]
    (row,) = audit_rows(console, "console.client_jwks")
    assert row.outcome == "success" and row.detail["jwks_size"] == 2


def rsa_public(bits, kid="r", alg="PS256"):
    return public(RSAKey.generate_key(bits), kid, alg)


PRIVATE_EC = {**ECKey.generate_key("P-256").as_dict(private=True), "kid": "p"}


@pytest.mark.parametrize(("jwks", "field", "message"), [
    (json.dumps({"keys": [PRIVATE_EC]}), "jwks.keys[0]", "private"),
    (json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "s"}]}), "jwks.keys[0]", "private"),
    (json.dumps({"keys": [{"kty": "XYZ", "kid": "x"}]}), "jwks.keys[0]", "kty"),
    (json.dumps({"keys": [public(FIRST_KEY, "a", "ES256"), public(ECKey.generate_key("P-256"), "a", "ES256")]}),
     "jwks.keys[1]", "twice"),
    (json.dumps({"keys": [{**public(FIRST_KEY, "a", "ES256"), "kid": ""}]}), "jwks.keys[0]", "kid"),
    (json.dumps({"keys": [{**public(FIRST_KEY, "a", "ES256"), "use": "enc"}]}), "jwks.keys[0]", "use"),
    (json.dumps({"keys": [public(FIRST_KEY, "a", "HS256")]}), "jwks.keys[0]", "alg"),
    (json.dumps({"keys": [public(FIRST_KEY, "a", "PS256")]}), "jwks.keys[0]", "does not fit"),
    (json.dumps({"keys": [public(ECKey.generate_key("P-384"), "a", "ES256")]}), "jwks.keys[0]", "P-256"),
    (json.dumps({"keys": []}), "jwks", "1 to 10"),
    (json.dumps({"keys": [public(FIRST_KEY, str(i), "ES256") for i in range(11)]}), "jwks", "1 to 10"),
    (json.dumps([public(FIRST_KEY, "a", "ES256")]), "jwks", "JWK Set"),
    ("{not json", "jwks", "not valid JSON"),
    ("[" * 50_000 + "]" * 50_000, "jwks", "At most"),
    ("[" * 30_000 + "]" * 30_000, "jwks", "not valid JSON"),
    (json.dumps({"keys": [{**public(FIRST_KEY, "a", "ES256"), "x5c": ["A" * 40_000]}]}), "jwks", "bytes"),
    ('{"keys": [{"kty": "EC", "kid": "<script>alert(1)</script>"}]}', "jwks.keys[0]", "cannot be read"),
])
def test_hostile_keys_are_refused_by_field_and_nothing_changes(console, developer, jwks, field, message):
    before = client_row(console).jwks
    response = save(developer, "jwks", jwks)
    assert response.status_code == 422, response.status_code
    html = response.get_data(as_text=True)
    assert f'data-field="{field}"' in html and message in html, re.findall(r'<li data-field=.*?</li>', html)
    assert "<script>alert(1)" not in html
    assert client_row(console).jwks == before
    assert audit_rows(console, "console.client_jwks")[-1].outcome == "failure"


@pytest.mark.filterwarnings("ignore:Key size should be")
def test_a_small_rsa_key_is_refused(console, developer):
    response = save(developer, "jwks", json.dumps({"keys": [rsa_public(1024)]}))
    assert response.status_code == 422 and 'data-field="jwks.keys[0]"' in response.get_data(as_text=True)


# -- forms ------------------------------------------------------------------------------------


@pytest.mark.parametrize("csrf", [None, "", "wrong"])
def test_forms_need_the_csrf_token(console, developer, csrf):
    data = {"redirect_uris": "https://evil.example/cb"}
    if csrf is not None:
        data["csrf_token"] = csrf
    response = developer.post(f"/console/partner/plugins/{OWN}/redirect-uris", data=data)
    assert response.status_code == 400
    assert client_row(console).redirect_uris == [REDIRECT]


def test_without_a_registered_client_nothing_can_be_saved(console, developer):
    with get_database(console).transaction(write=True) as session:
        session.delete(session.get(OAuthClient, OWN))
    html = developer.get(f"/console/partner/plugins/{OWN}?lang=en").get_data(as_text=True)
    assert "has not registered this mini-program" in html and 'name="jwks"' not in html
    csrf = TOKEN.search(developer.get("/console/partner").get_data(as_text=True)).group(1)  # the sign-out form's
    response = developer.post(f"/console/partner/plugins/{OWN}/redirect-uris",
                              data={"csrf_token": csrf, "redirect_uris": REDIRECT})
    assert response.status_code == 409
    assert client_row(console) is None


def test_the_console_speaks_chinese(developer):
    html = developer.get("/console/partner?lang=zh-CN").get_data(as_text=True)
    assert "合作方控制台" in html and "您的小程序" in html
