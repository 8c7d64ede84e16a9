"""Fixtures shared by the publishing tests (tests/host/publishing, tests/host/api): packages made
as a publisher zips a plugin folder, actors, staff sessions with their CSRF token, and a
partner's back end holding a client credentials token with ``plugins:publish``."""

from __future__ import annotations

import io
import textwrap
import time
import uuid
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ISSUER = "http://localhost"
CSRF = "test-csrf-token-0123456789"
#: A plugin with one page, rendered from templates/index.html: what the pre-review's smoke render passes.
PUBLISHING_CODE = b"""from canopy_sdk import Page, hookimpl


class Plugin:
    @hookimpl
    def canopy_page(self, ctx, path, query):
        return Page(title="Home", template="index.html") if path == "/" else None


plugin = Plugin()
"""


def _manifest(plugin_id: str, version: str, kind: str, publisher: str, scopes: list[str]) -> str:
    listed = ", ".join(f'"{scope}"' for scope in scopes)
    return textwrap.dedent(f"""\
        id = "{plugin_id}"
        name = {{ zh = "测试 {plugin_id}", en = "Test {plugin_id}" }}
        version = "{version}"
        publisher = {{ kind = "{kind}", id = "{publisher}" }}
        entry = "main:plugin"
        scopes = [{listed}]
        pages = [{{ path = "/", title = {{ zh = "首页", en = "Home" }} }}]
        """)


@pytest.fixture
def package_zip():
    """``package_zip(plugin_id, version, kind="branch", publisher="SH001", scopes=(), files=None)``:
    the zip archive of a small plugin folder (``files`` add to or replace its files)."""

    def make(plugin_id: str = "sh.coupons", version: str = "1.0.0", kind: str = "branch", publisher: str = "SH001",
             scopes=(), files: dict | None = None) -> bytes:
        content = {"plugin.toml": _manifest(plugin_id, version, kind, publisher, list(scopes)),
                   "main.py": PUBLISHING_CODE, "templates/index.html": f"<h1>{plugin_id} {version}</h1>"}
        content.update(files or {})
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:
            for name, data in content.items():
                out.writestr(name, data)
        return buffer.getvalue()

    return make


@pytest.fixture
def sandbox_isolation(unavailable):
    """The sandbox's probe of this machine: submitting runs the pre-review's smoke render in a
    jail, so tests that need a version to pass it skip (fail under CI=true) where it cannot run."""
    from sandbox import jail

    probe = jail.probe()
    if not probe.ok or probe.unsafe:
        unavailable(f"the sandbox cannot isolate plugins here, so no version passes the pre-review: {probe.reason}")
    return probe


@pytest.fixture
def actors():
    """The actors of the publishing tests, by name (staff of the demo, a partner's back end, a
    person who is both a reviewer and Shanghai's administrator)."""
    from host.identity.models import StaffRole as R
    from host.publishing.actors import PRECHECK, Actor

    return {
        "sh.admin": Actor("staff:sh.admin", frozenset({R.BRANCH_ADMIN}), branch="SH001"),
        "sh.operator": Actor("staff:sh.operator", frozenset({R.BRANCH_OPERATOR}), branch="SH001"),
        "bj.operator": Actor("staff:bj.operator", frozenset({R.BRANCH_OPERATOR}), branch="BJ001"),
        "hq.reviewer": Actor("staff:hq.reviewer", frozenset({R.HQ_REVIEWER})),
        "hq.reviewer2": Actor("staff:hq.reviewer2", frozenset({R.HQ_REVIEWER})),
        "hq.admin": Actor("staff:hq.admin", frozenset({R.HQ_ADMIN})),
        "sh.reviewing-admin": Actor("staff:sh.reviewing-admin", frozenset({R.HQ_REVIEWER, R.BRANCH_ADMIN}), branch="SH001"),
        "citypower": Actor.partner_client("cp.publisher", "CITYPOWER"),
        "system": PRECHECK,
    }


@pytest.fixture
def staff_client(demo_app):
    """``staff_client(username)``: a test client signed in as that demo member of staff, sending
    the session's CSRF token in X-CSRF-Token (``csrf=False``: without it)."""
    from sqlalchemy import select

    from host.db import get_database
    from host.identity.models import Staff

    def make(username: str | None, *, csrf: bool = True):
        client = demo_app.test_client()
        if username is not None:
            with get_database(demo_app).transaction() as session:
                staff_id = session.scalars(select(Staff.id).where(Staff.username == username)).one()
            with client.session_transaction() as cookie:
                cookie["staff_id"] = staff_id
                cookie["csrf_token"] = CSRF
        if csrf:
            client.environ_base["HTTP_X_CSRF_TOKEN"] = CSRF
        return client

    return make


class PartnerBackEnd:
    """A partner's back end: its ES256 key, its client (a plugin id), a client credentials token,
    and requests made with a DPoP proof for each."""

    def __init__(self, app, client_id: str) -> None:
        from joserfc.jwk import ECKey

        self.app = app
        self.http = app.test_client()
        self.client_id = client_id
        self.key = ECKey.generate_key("P-256")
        self.kid = uuid.uuid4().hex[:12]
        self.token: str | None = None

    def _sign(self, header: dict, claims: dict) -> str:
        from joserfc import jwt

        return jwt.encode({"alg": "ES256", **header}, claims, self.key, algorithms=["ES256"])

    def proof(self, method: str, path: str, access_token: str | None = None) -> str:
        from host.oauth.dpop import access_token_hash

        claims = {"jti": uuid.uuid4().hex, "htm": method, "htu": f"{ISSUER}{path}", "iat": int(time.time())}
        if access_token:
            claims["ath"] = access_token_hash(access_token)
        return self._sign({"typ": "dpop+jwt", "jwk": self.key.as_dict(private=False)}, claims)

    def register(self) -> "PartnerBackEnd":
        from host.db import get_database
        from host.oauth.clients import register_client

        jwk = self.key.as_dict(private=False) | {"kid": self.kid, "use": "sig", "alg": "ES256"}
        with self.app.app_context(), get_database(self.app).transaction(write=True) as session:
            register_client(session, self.client_id, jwks={"keys": [jwk]}, redirect_uris=["https://partner.example/cb"])
        return self

    def fetch_token(self, scope: str = "plugins:publish"):
        now = int(time.time())
        assertion = self._sign({"kid": self.kid}, {"iss": self.client_id, "sub": self.client_id, "aud": ISSUER,
                                                   "iat": now, "exp": now + 60, "jti": uuid.uuid4().hex})
        response = self.http.post("/oauth/token", data={
            "grant_type": "client_credentials", "scope": scope,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion}, headers={"DPoP": self.proof("POST", "/oauth/token")})
        if response.status_code == 200:
            self.token = response.get_json()["access_token"]
        return response

    def open(self, method: str, path: str, **kwargs):
        """A request with the token and a fresh DPoP proof."""
        headers = {"Authorization": f"DPoP {self.token}", "DPoP": self.proof(method, path.split("?")[0], self.token)}
        headers.update(kwargs.pop("headers", {}))
        return self.http.open(path, method=method, headers=headers, **kwargs)


@pytest.fixture
def publishing_app(app_factory, tmp_path, seed_demo):
    """The demo app plus a partner plugin of City Power, ``cp.publisher``, whose manifest requests
    ``plugins:publish`` (approved, and served as if the sandbox ran it); the issuer is the test
    client's origin."""
    from sqlalchemy import update

    from host.db import get_database
    from host.runtime.models import PluginState, PluginVersion

    folder = tmp_path / "publishing_plugins" / "cp_publisher"
    folder.mkdir(parents=True)
    (folder / "plugin.toml").write_text(_manifest("cp.publisher", "1.0.0", "partner", "CITYPOWER", ["plugins:publish"]),
                                        encoding="utf-8")
    (folder / "main.py").write_bytes(PUBLISHING_CODE)
    app = app_factory(PLUGIN_PATHS=[str(ROOT / "plugins"), str(folder.parent)], OAUTH_ISSUER=ISSUER)
    seed_demo(app)
    with app.app_context(), get_database(app).transaction(write=True) as session:
        session.execute(update(PluginVersion).where(PluginVersion.plugin_id == "cp.publisher")
                        .values(state=PluginState.ACTIVE, state_reason=""))
    return app


@pytest.fixture
def partner_back_end(publishing_app):
    """``partner_back_end(client_id="cp.publisher")``: a registered partner back end with a
    ``plugins:publish`` token."""

    def make(client_id: str = "cp.publisher", scope: str = "plugins:publish") -> PartnerBackEnd:
        partner = PartnerBackEnd(publishing_app, client_id).register()
        response = partner.fetch_token(scope)
        assert response.status_code == 200, response.get_json()
        return partner

    return make
