"""Fixtures for the OAuth tests: a partner's keys, DPoP proofs and client assertions
made the way a real partner back end makes them (joserfc), never with the host's helpers."""

from __future__ import annotations

import base64
import json
import time
import uuid

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey, RSAKey
from joserfc.jws import JWSRegistry


class _AnyAlg(JWSRegistry):
    """Lets a test sign with any algorithm, including ones the host refuses."""

    max_header_length = 4096

    def get_alg(self, name):
        return self.algorithms[name]


ANY_ALG = _AnyAlg()


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


class PartnerKey:
    """One signing key of a partner, as the partner's back end holds it."""

    def __init__(self, alg: str = "ES256", kid: str | None = None) -> None:
        self.alg = alg
        if alg == "ES256":
            self.key = ECKey.generate_key("P-256")
        elif alg == "PS256":
            self.key = RSAKey.generate_key(2048)
        elif alg == "EdDSA":
            self.key = OKPKey.generate_key("Ed25519")
        else:
            raise ValueError(alg)
        self.kid = kid or uuid.uuid4().hex[:12]

    def public_jwk(self) -> dict:
        data = self.key.as_dict(private=False)
        data.update(kid=self.kid, use="sig", alg=self.alg)
        return data

    def jwks(self) -> dict:
        return {"keys": [self.public_jwk()]}

    @property
    def jkt(self) -> str:
        return self.key.thumbprint()

    def sign(self, header: dict, claims: dict) -> str:
        return jwt.encode({"alg": self.alg, **header}, claims, self.key, algorithms=[self.alg], registry=ANY_ALG)

    def proof(self, method: str, url: str, *, access_token: str | None = None, iat: int | None = None,
              jti: str | None = None, nonce: str | None = None, **extra) -> str:
        """A DPoP proof for one request."""
        from host.oauth.dpop import access_token_hash

        public = self.key.as_dict(private=False)
        claims = {"jti": jti or uuid.uuid4().hex, "htm": method, "htu": url, "iat": int(time.time()) if iat is None else iat}
        if access_token is not None:
            claims["ath"] = access_token_hash(access_token)
        if nonce is not None:
            claims["nonce"] = nonce
        claims.update(extra)
        return self.sign({"typ": "dpop+jwt", "jwk": public}, claims)

    def assertion(self, client_id: str, audience, *, lifetime: int = 60, jti=...,
                  now: int | None = None, header: dict | None = None, **extra) -> str:
        """A private_key_jwt client assertion."""
        now = int(time.time()) if now is None else now
        claims = {"iss": client_id, "sub": client_id, "aud": audience, "iat": now, "exp": now + lifetime,
                  "jti": uuid.uuid4().hex if jti is ... else jti}
        claims.update(extra)
        claims = {k: v for k, v in claims.items() if v is not None}
        return self.sign({"kid": self.kid, **(header or {})}, claims)


def unsigned(header: dict, claims: dict) -> str:
    """A JWT with ``alg: none`` and no signature."""
    return f"{b64({'alg': 'none', **header})}.{b64(claims)}."


def hs256(secret: bytes, header: dict, claims: dict) -> str:
    from joserfc.jwk import OctKey

    return jwt.encode({"alg": "HS256", **header}, claims, OctKey.import_key(secret), algorithms=["HS256"], registry=ANY_ALG)


@pytest.fixture
def partner_key():
    """An ES256 key of a partner."""
    return PartnerKey("ES256")


@pytest.fixture
def make_key():
    """Make a partner key for an algorithm."""
    return PartnerKey


@pytest.fixture
def jwt_tools():
    """Helpers that make JWTs the host must refuse."""

    class Tools:
        b64 = staticmethod(b64)
        unsigned = staticmethod(unsigned)
        hs256 = staticmethod(hs256)

    return Tools


# -- apps, partners and customers ---------------------------------------------------

import re  # noqa: E402
import textwrap  # noqa: E402
from pathlib import Path  # noqa: E402
from urllib.parse import parse_qs, urlsplit  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
ISSUER = "http://localhost"
REDIRECT_URI = "https://partner.example/callback"
WALLET_SCOPES = ["profile.basic:read", "profile.phone:read", "payments:create", "notifications:send"]
PLUGIN_CODE = """\
from canopy_sdk import Tile, hookimpl


class Plugin:
    @hookimpl
    def canopy_storefront_tiles(self, ctx):
        return [Tile(title=ctx.plugin_id)]


plugin = Plugin()
"""


def _write_plugin(root: Path, plugin_id: str, scopes: list[str]) -> None:
    folder = root / plugin_id.replace(".", "_")
    folder.mkdir(parents=True)
    scope_list = ", ".join(f'"{s}"' for s in scopes)
    (folder / "plugin.toml").write_text(textwrap.dedent(f"""\
        id = "{plugin_id}"
        name = {{ zh = "测试钱包 {plugin_id}", en = "Test wallet {plugin_id}" }}
        version = "1.0.0"
        publisher = {{ kind = "branch", id = "SH001" }}
        entry = "main:plugin"
        scopes = [{scope_list}]
        pages = [{{ path = "/", title = {{ zh = "首页", en = "Home" }} }}]
        """), encoding="utf-8")
    (folder / "main.py").write_text(PLUGIN_CODE, encoding="utf-8")


@pytest.fixture
def oauth_app(app_factory, tmp_path, seed_demo):
    """The demo app plus two test mini-programs (``test.wallet`` with profile scopes,
    ``test.other``), approved and installed in SH001; the issuer is the test client's origin."""
    from host.db import get_database
    from host.storefront.models import Installation

    folder = tmp_path / "oauth_plugins"
    _write_plugin(folder, "test.wallet", WALLET_SCOPES)
    _write_plugin(folder, "test.other", ["profile.basic:read"])
    app = app_factory(PLUGIN_PATHS=[str(ROOT / "plugins"), str(folder)], OAUTH_ISSUER=ISSUER)
    seed_demo(app)
    with app.app_context(), get_database(app).transaction(write=True) as session:
        for position, plugin_id in enumerate(("test.wallet", "test.other"), start=10):
            session.add(Installation(branch_code="SH001", plugin_id=plugin_id, version="1.0.0", position=position))
    return app


def form_token(html: str) -> str:
    """The CSRF token of the first form in ``html``."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF field in the page"
    return found.group(1)


class Partner:
    """A partner's back end: its key, its client id, and the calls it makes."""

    def __init__(self, app, plugin_id: str, key: "PartnerKey", redirect_uri: str = REDIRECT_URI) -> None:
        self.app = app
        self.http = app.test_client()
        self.plugin_id = plugin_id
        self.key = key
        self.redirect_uri = redirect_uri

    def register(self, **changes) -> None:
        from host.db import get_database
        from host.oauth.clients import register_client

        values = {"jwks": self.key.jwks(), "redirect_uris": [self.redirect_uri]}
        values.update(changes)
        with self.app.app_context(), get_database(self.app).transaction(write=True) as session:
            register_client(session, self.plugin_id, **values)

    def auth(self, **claims) -> dict:
        """Client authentication form fields (private_key_jwt)."""
        from host.oauth.client_assertion import ASSERTION_TYPE

        audience = claims.pop("aud", ISSUER)
        return {"client_assertion_type": ASSERTION_TYPE,
                "client_assertion": self.key.assertion(self.plugin_id, audience, **claims)}

    def par(self, *, verifier: str = "v" * 43, auth: dict | None = None, dpop: bool = False, **params):
        from host.oauth.pkce import s256

        form = {"response_type": "code", "redirect_uri": self.redirect_uri, "scope": "profile.basic:read",
                "state": "st-1", "code_challenge": s256(verifier), "code_challenge_method": "S256"}
        form.update(params)
        form = {k: v for k, v in form.items() if v is not None}
        form.update(auth if auth is not None else self.auth())
        headers = {"DPoP": self.key.proof("POST", f"{ISSUER}/oauth/par")} if dpop else {}
        return self.http.post("/oauth/par", data=form, headers=headers)

    def token(self, form: dict, *, proof: str | None = None, auth: dict | None = None, headers: dict | None = None):
        body = dict(form)
        body.update(auth if auth is not None else self.auth())
        all_headers = {"DPoP": proof if proof is not None else self.key.proof("POST", f"{ISSUER}/oauth/token")}
        all_headers.update(headers or {})
        if proof == "":
            all_headers.pop("DPoP")
        return self.http.post("/oauth/token", data=body, headers=all_headers)

    def exchange(self, code: str, *, verifier: str = "v" * 43, redirect_uri: str | None = None, **kwargs):
        return self.token({"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
                           "redirect_uri": redirect_uri or self.redirect_uri}, **kwargs)

    def get(self, path: str, access_token: str, *, key: "PartnerKey | None" = None, method: str = "GET",
            htu: str | None = None, ath_token: str | None = None, scheme: str = "DPoP", **kwargs):
        """A resource request with the token and a proof for it."""
        key = key or self.key
        proof = key.proof(method, htu or f"{ISSUER}{path.split('?')[0]}", access_token=ath_token or access_token)
        headers = {"Authorization": f"{scheme} {access_token}", "DPoP": proof}
        headers.update(kwargs.pop("headers", {}))
        return self.http.open(path, method=method, headers=headers, **kwargs)


class Browser:
    """A customer's browser."""

    def __init__(self, app) -> None:
        self.http = app.test_client()

    def sign_in(self, phone: str = "13800000001", password: str = "canopy-demo-1") -> None:
        page = self.http.get("/signin")
        response = self.http.post("/signin", data={"phone": phone, "password": password,
                                                   "csrf_token": form_token(page.get_data(as_text=True))})
        assert response.status_code == 303, response.get_data(as_text=True)

    def open(self, request_uri: str, client_id: str):
        return self.http.get("/oauth/authorize", query_string={"client_id": client_id, "request_uri": request_uri})

    def decide(self, request_uri: str, client_id: str, decision: str = "approve"):
        page = self.open(request_uri, client_id)
        assert page.status_code == 200, page.get_data(as_text=True)
        token = form_token(page.get_data(as_text=True))
        return self.http.post("/oauth/authorize", query_string={"client_id": client_id, "request_uri": request_uri},
                              data={"decision": decision, "csrf_token": token})


def redirect_params(response) -> dict:
    """The query parameters of a redirect's Location."""
    assert response.status_code == 303, (response.status_code, response.get_data(as_text=True))
    location = response.headers["Location"]
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()} | {"_uri": location.split("?")[0]}


@pytest.fixture
def wallet(oauth_app, partner_key):
    """The registered partner client of ``test.wallet``."""
    partner = Partner(oauth_app, "test.wallet", partner_key)
    partner.register()
    return partner


@pytest.fixture
def browser(oauth_app):
    """A browser with the demo customer signed in."""
    customer = Browser(oauth_app)
    customer.sign_in()
    return customer


@pytest.fixture
def walk(wallet, browser):
    """``walk(**par_params)`` runs PAR → consent → code and returns the code's redirect parameters."""

    def run(**params):
        pushed = wallet.par(**params)
        assert pushed.status_code == 201, pushed.get_json()
        return redirect_params(browser.decide(pushed.get_json()["request_uri"], wallet.plugin_id))

    return run


@pytest.fixture
def token_cache_on(redis_url):
    """``token_cache_on(app)`` sets the app's REDIS_URL to the test Redis, which turns the
    token cache (and the Redis replay cache) on. Sign-in attempts stay counted in memory, per
    app: the shared Redis counters would carry one test's sign-ins into the next."""
    from host.identity.ratelimit import MemoryRateLimiter

    def turn_on(app):
        app.config["REDIS_URL"] = redis_url
        app.extensions["canopy.ratelimit"] = MemoryRateLimiter()
        return app

    return turn_on


@pytest.fixture
def helpers():
    """Classes and functions of this conftest for the tests."""

    class Helpers:
        Partner = Partner
        Browser = Browser
        PartnerKey = PartnerKey
        redirect_params = staticmethod(redirect_params)
        form_token = staticmethod(form_token)
        ISSUER = ISSUER
        REDIRECT_URI = REDIRECT_URI

    return Helpers
