"""Serving a mini-program's content on its own origin: pages, static files and its API.

The tests address content as ``/mp/<plugin_id>/<path>``; :class:`OnPluginOrigins` sends each
such request to ``http://<plugin_id>.mp.localhost:8000/<path>`` (the default
``MINIPROGRAM_ORIGIN`` with the port of the default ``OAUTH_ISSUER``). Ids that cannot be a
host name stay on the host's origin, where ``/mp/<id>/`` is the shell (which answers 404 for them).
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import select

from host.db import get_database
from host.demo import seed
from host.problems import PROBLEM_JSON
from host.runtime import get_runtime
from host.runtime.models import PluginState, PluginVersion
from host.runtime.registry import sync_registry
from host.storefront.miniprogram import page_csp
from host.storefront.queries import MAX_QUERY_PARAMS, MAX_QUERY_VALUE
from host.storefront.origins import build
from host.storefront.models import Installation

ROOT = Path(__file__).resolve().parents[3]
SECRET_FILE_TEXT = "TOPSECRET-PLUGIN-FILE"
#: Generous enough for a sound call on a loaded machine; the hanging hooks never answer.
BUDGETS = {"canopy_storefront_tiles": 1000, "canopy_page": 500, "canopy_api": 500, "canopy_on_event": 1000, "canopy_search": 300}

PLUGIN_CODE = '''
import json
import threading

from canopy_sdk import ApiError, Page, hookimpl

RELEASE = threading.Event()


@hookimpl
def canopy_page(ctx, path, query):
    if path == "/":
        return Page(title="Home", template="index.html", context={"value": query.get("v", "<script>alert(1)</script>")})
    if path == "/echo":
        data = {"path": path, "query": dict(query), "branch": ctx.branch.code, "locale": ctx.locale}
        return Page(title="Echo", html=json.dumps(data))
    if path == "/gone":
        return Page(title="Gone", html="<p>gone</p>", status=410)
    if path == "/raise":
        raise RuntimeError("page exploded near the vault")
    if path == "/hang":
        RELEASE.wait(30)
        return Page(title="Late", html="<p>too late</p>")
    if path == "/junk":
        return {"title": "a dict is not a Page"}
    if path.startswith("/t/"):
        return Page(title="T", template=path[3:] + ".html", context={"value": "<b>v</b>"})
    return None


@hookimpl
def canopy_api(ctx, method, path, body):
    if path == "/echo":
        return {"method": method, "path": path, "body": body, "branch": ctx.branch.code, "locale": ctx.locale}
    if path == "/reject":
        raise ApiError(409, "Already claimed", "You hold this coupon already.")
    if path == "/junk":
        return object()
    if path == "/nan":
        return float("nan")
    if path == "/raise":
        raise RuntimeError("api exploded near the vault")
    if path == "/hang":
        RELEASE.wait(30)
        return {"late": True}
    if path == "/none":
        return None
    raise ApiError(404, "No such endpoint")
'''

TEMPLATES = {
    "index.html": (
        '<p id="value">{{ value }}</p>'
        '<a id="next" href="{{ page_url(\'/next\', a=1) }}">next</a>'
        '<link href="{{ static_url(\'app.css\') }}">'
        '<div data-api="{{ api_url(\'/items\') }}" data-branch="{{ branch.code }}" data-locale="{{ locale }}"></div>'
    ),
    "syntax.html": "{% if %}broken{% endif %}",
    "undefined.html": "{{ no_such_variable }}",
    "config.html": "{{ config.SECRET_KEY }}",
    "request.html": "{{ request.environ }}",
    "mro.html": "{{ ''.__class__.__mro__ }}",
    "subclasses.html": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "globals.html": "{{ page_url.__globals__ }}",
    "closure.html": "{{ page_url.__closure__ }}",
    "cycler.html": "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "lipsum.html": "{{ lipsum.__globals__['os'].environ }}",
    "self.html": "{{ self.__init__.__globals__ }}",
    "attr.html": "{{ value|attr('__class__') }}",
    "format.html": "{{ '{0.__class__.__init__.__globals__}'.format(value) }}",
    "mutate.html": "{% set items = [] %}{{ items.append(1) }}{{ branch.update({'code': 'X'}) }}",
    "range.html": "{{ range(10 ** 9) | list | length }}",
    "include.html": "{% include '../secret.txt' %}",
    "absolute.html": "{% include '/etc/passwd' %}",
}


HOST_ORIGIN = "http://127.0.0.1:8000"
PAGE_CSP = page_csp(build(HOST_ORIGIN, "http://{plugin}.mp.localhost:{port}"))
_CONTENT = re.compile(r"/mp/([a-z0-9.-]{1,64})(/.*)?\Z", re.DOTALL)


def on_plugin_origin(url: str) -> str:
    """``/mp/<id>/<rest>`` as the address on ``<id>``'s own origin (other URLs as they are)."""
    found = _CONTENT.match(url)
    if found is None:
        return url
    return f"http://{found.group(1)}.mp.localhost:8000{found.group(2) or '/'}"


class OnPluginOrigins:
    """A test client whose requests to ``/mp/<id>/…`` go to the plugin's origin."""

    METHODS = frozenset({"get", "post", "put", "patch", "delete", "options", "head", "open"})

    def __init__(self, client) -> None:
        self.client = client

    def __getattr__(self, name: str):
        method = getattr(self.client, name)
        if name not in self.METHODS:
            return method
        return lambda url, *args, **kwargs: method(on_plugin_origin(url), *args, **kwargs)


@pytest.fixture
def client(demo_app):
    """The demo app's test client, with ``/mp/<id>/…`` on the plugin's origin."""
    return OnPluginOrigins(demo_app.test_client())


@pytest.fixture
def mp(app_factory, tmp_path):
    """An app with ``test.pages`` installed in HQ only, beside the seeded demo."""
    root = tmp_path / "test_plugins"
    folder = root / "test_pages"
    (folder / "templates").mkdir(parents=True)
    (folder / "static" / "css").mkdir(parents=True)
    (folder / "plugin.toml").write_text(
        'id = "test.pages"\n'
        'name = { zh = "测试页面", en = "Test pages" }\n'
        'version = "1.0.0"\n'
        'publisher = { kind = "bank", id = "HQ" }\n'
        'entry = "impl"\n'
        'pages = [{ path = "/", title = { zh = "首页", en = "Home" } }]\n',
        encoding="utf-8",
    )
    (folder / "impl.py").write_text(textwrap.dedent(PLUGIN_CODE), encoding="utf-8")
    for name, text in TEMPLATES.items():
        (folder / "templates" / name).write_text(text, encoding="utf-8")
    (folder / "secret.txt").write_text(SECRET_FILE_TEXT, encoding="utf-8")
    (folder / "static" / "app.css").write_text("body { color: green; }\n", encoding="utf-8")
    (folder / "static" / "css" / "two words.css").write_text("p {}\n", encoding="utf-8")
    # a plugin with no page and no API hooks
    quiet = root / "test_quiet"
    quiet.mkdir()
    (quiet / "plugin.toml").write_text(
        (folder / "plugin.toml").read_text(encoding="utf-8").replace("test.pages", "test.quiet"), encoding="utf-8"
    )
    (quiet / "impl.py").write_text("", encoding="utf-8")

    app = app_factory(PLUGIN_PATHS=[str(ROOT / "plugins"), str(root)], HOOK_BUDGET_MS=BUDGETS)
    database = get_database(app)
    with database.transaction(write=True) as session:
        sync_registry(session, get_runtime(app), approve=True)
    with app.app_context(), database.transaction(write=True) as session:
        seed(session)
        session.add(Installation(branch_code="HQ", plugin_id="test.pages", version="1.0.0", position=9))
        session.add(Installation(branch_code="HQ", plugin_id="test.quiet", version="1.0.0", position=10))
    yield OnPluginOrigins(app.test_client())
    get_runtime(app).plugins["test.pages"].plugin.RELEASE.set()


def without_bridge(response) -> str:
    """A page's HTML without the bridge script the host puts first."""
    text = response.get_data(as_text=True)
    tag = f'<script src="{HOST_ORIGIN}/bridge/canopy.js"></script>'
    assert text.startswith(tag)
    return text[len(tag):]


def leaks(response, app) -> list[str]:
    """Host data that must never appear in a plugin's failure answer."""
    text = response.get_data(as_text=True)
    secrets = [app.config["SECRET_KEY"], app.config["DATABASE_URL"], SECRET_FILE_TEXT, "root:x:0:0", "vault", "<class", "Traceback"]
    return [secret for secret in secrets if secret in text]


# -- pages ---------------------------------------------------------------------------


def test_a_page_renders_with_the_content_security_policy(mp):
    response = mp.get("/mp/test.pages/?lang=en")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"] == PAGE_CSP
    assert response.headers["Content-Language"] == "en"
    html = response.get_data(as_text=True)
    assert '<p id="value">&lt;script&gt;alert(1)&lt;/script&gt;</p>' in html
    # Paths of the plugin's own origin; the host's bridge script comes first.
    assert html.startswith(f'<script src="{HOST_ORIGIN}/bridge/canopy.js"></script>')
    # links stay in the version that rendered the page (docs/publishing.md)
    assert 'href="/next?a=1&amp;branch=HQ&amp;lang=en&amp;canopy_version=1.0.0"' in html
    assert 'href="/static/app.css?canopy_version=1.0.0"' in html
    assert 'data-api="/api/items?branch=HQ&amp;lang=en"' in html
    assert 'data-branch="HQ" data-locale="en"' in html


def test_a_bundled_plugin_page_renders(client):
    response = client.get("/mp/wealth.checkup/?branch=SH001&lang=en")
    assert response.status_code == 200
    assert response.headers["Content-Security-Policy"] == PAGE_CSP
    assert "Wealth check-up" in response.get_data(as_text=True)


def test_the_page_gets_its_own_query_without_the_host_parameters(mp):
    response = mp.get("/mp/test.pages/echo?branch=HQ&lang=en&a=1&b=two&a=3")
    assert response.status_code == 200
    assert json.loads(without_bridge(response)) == {
        "path": "/echo",
        "query": {"a": "1", "b": "two"},
        "branch": "HQ",
        "locale": "en",
    }


def test_the_page_locale_follows_accept_language(mp):
    response = mp.get("/mp/test.pages/echo", headers={"Accept-Language": "en-US"})
    assert json.loads(without_bridge(response))["locale"] == "en"
    assert response.headers["Content-Language"] == "en"


def test_a_page_with_a_client_error_status_keeps_it(mp):
    assert mp.get("/mp/test.pages/gone").status_code == 410


@pytest.mark.parametrize(
    "url",
    [
        "/mp/no.such.plugin/",
        "/mp/test.pages/?branch=BJ001",  # installed in head office only
        "/mp/sh.deals/?branch=BJ001",  # a bundled plugin of another branch
        "/mp/city.utilities/?branch=SH001",  # installed, but a refused partner plugin
        "/mp/test.pages/?branch=NOWHERE",
        "/mp/test.pages/?branch=%00",
        "/mp/test.pages%00/",
        "/mp/%E6%B5%8B%E8%AF%95/",
        "/mp/" + "p" * 500 + "/",
        "/mp/test.pages/no-such-page",  # the plugin answers None
        "/mp/test.quiet/",  # the plugin has no canopy_page
    ],
)
def test_missing_things_are_404(mp, url):
    response = mp.get(url, headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert response.mimetype == "text/html"


def test_a_disabled_plugin_is_404(mp):
    with get_database(mp.application).transaction(write=True) as session:
        session.scalars(select(PluginVersion).where(PluginVersion.plugin_id == "test.pages")).one().state = PluginState.DISABLED
    assert mp.get("/mp/test.pages/").status_code == 404


def test_too_many_query_parameters_is_400(mp):
    fine = "&".join(f"p{i}=1" for i in range(MAX_QUERY_PARAMS))
    assert mp.get(f"/mp/test.pages/echo?{fine}&branch=HQ&lang=en").status_code == 200
    response = mp.get(f"/mp/test.pages/echo?{fine}&one=more")
    assert response.status_code == 400
    assert "Too many query parameters" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "query",
    ["v=" + "x" * (MAX_QUERY_VALUE + 1), "k" * 101 + "=1"],
)
def test_a_too_long_query_parameter_is_400(mp, query):
    response = mp.get(f"/mp/test.pages/echo?{query}")
    assert response.status_code == 400
    assert len(response.get_data()) < 5_000


def test_a_plugin_that_raises_is_502(mp):
    response = mp.get("/mp/test.pages/raise", headers={"Accept": "text/html"})
    assert response.status_code == 502
    assert response.mimetype == "text/html"
    assert leaks(response, mp.application) == []


def test_a_plugin_that_hangs_is_504(mp):
    response = mp.get("/mp/test.pages/hang")
    assert response.status_code == 504
    assert "too late" not in response.get_data(as_text=True)


def test_a_plugin_that_returns_junk_is_502(mp):
    response = mp.get("/mp/test.pages/junk")
    assert response.status_code == 502
    assert "a dict is not a Page" not in response.get_data(as_text=True)


@pytest.mark.parametrize("template", [name.removesuffix(".html") for name in TEMPLATES if name != "index.html"])
def test_a_broken_or_hostile_template_is_502_and_leaks_nothing(mp, template):
    response = mp.get(f"/mp/test.pages/t/{template}", headers={"Accept": "text/html"})
    assert response.status_code == 502
    assert leaks(response, mp.application) == []


def test_a_missing_template_is_502(mp):
    assert mp.get("/mp/test.pages/t/no-such-template").status_code == 502


def test_a_hostile_template_does_not_change_what_the_next_page_sees(mp):
    assert mp.get("/mp/test.pages/t/mutate").status_code == 502
    assert 'data-branch="HQ"' in mp.get("/mp/test.pages/").get_data(as_text=True)


# -- static files ------------------------------------------------------------------------


def test_static_files_are_served(mp):
    response = mp.get("/mp/test.pages/static/app.css")
    assert response.status_code == 200
    assert response.mimetype == "text/css"
    assert response.get_data(as_text=True) == "body { color: green; }\n"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    # opened as a document, a static file runs sandboxed with nothing allowed
    assert response.headers["Content-Security-Policy"].startswith("sandbox; default-src 'none'")
    assert mp.get("/mp/test.pages/static/css/two%20words.css").status_code == 200


def test_a_bundled_plugins_static_file_is_served(client):
    response = client.get("/mp/wealth.checkup/static/wealth.css")
    assert response.status_code == 200
    assert response.mimetype == "text/css"


@pytest.mark.parametrize(
    "path",
    [
        "static/../secret.txt",
        "static/%2e%2e/secret.txt",
        "static/..%2fsecret.txt",
        "static/..%5csecret.txt",
        "static/css/../../secret.txt",
        "static/../templates/index.html",
        "static//etc/passwd",
        "static/%2fetc%2fpasswd",
        "static/%2Fetc/passwd",
        "static/no-such-file.css",
        "static/",
    ],
)
def test_static_refuses_traversal_and_absolute_paths(mp, path):
    response = mp.get(f"/mp/test.pages/{path}")
    assert response.status_code in (404, 400)
    text = response.get_data(as_text=True)
    assert SECRET_FILE_TEXT not in text and "root:x:0:0" not in text and "{{ value }}" not in text


def test_static_files_are_the_same_in_every_branch(mp):
    # the page's <link> and <script> carry no branch, so statics never depend on one
    assert mp.get("/mp/test.pages/static/app.css").status_code == 200
    assert mp.get("/mp/test.pages/static/app.css?branch=BJ001").status_code == 200
    assert mp.get("/mp/no.such.plugin/static/app.css").status_code == 404


def test_static_files_of_a_plugin_that_is_not_served_are_404(mp):
    database = get_database(mp.application)
    with database.transaction(write=True) as session:
        version = session.scalar(select(PluginVersion).where(PluginVersion.plugin_id == "test.pages"))
        version.state = PluginState.DISABLED
    assert mp.get("/mp/test.pages/static/app.css").status_code == 404
    # a partner plugin is registered but never served in-process
    assert mp.get("/mp/city.utilities/static/utilities.css").status_code == 404


def test_page_api_answers_cors_for_its_opaque_origin(mp):
    preflight = mp.options("/mp/test.pages/api/echo", headers={"Origin": "null", "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "Access-Control-Allow-Credentials" not in preflight.headers
    failed = mp.post("/mp/test.pages/api/echo", data=b"{", content_type="application/json")
    assert failed.status_code == 400 and failed.headers["Access-Control-Allow-Origin"] == "*"


def test_pages_run_sandboxed_in_an_opaque_origin(mp):
    response = mp.get("/mp/test.pages/")
    assert response.headers["Content-Security-Policy"].startswith("sandbox allow-scripts allow-forms;")
    assert "allow-same-origin" not in response.headers["Content-Security-Policy"]


# -- the plugin's API -----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
def test_every_api_method_is_routed_to_the_plugin(mp, method):
    response = mp.open("/mp/test.pages/api/echo?lang=en", method=method)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == {"method": method, "path": "/echo", "body": None, "branch": "HQ", "locale": "en"}


def test_the_api_root_is_routed_too(mp):
    response = mp.get("/mp/test.pages/api/")
    assert response.status_code == 404
    assert response.get_json(force=True)["title"] == "No such endpoint"


def test_a_json_body_reaches_the_plugin(mp):
    body = {"coupon": "c1", "count": 2, "notes": ["一", None, True]}
    response = mp.post("/mp/test.pages/api/echo", json=body)
    assert response.status_code == 200
    assert response.get_json()["body"] == body


def test_a_form_post_is_415(mp):
    response = mp.post("/mp/test.pages/api/echo", data={"coupon": "c1"})
    assert response.status_code == 415
    assert response.mimetype == PROBLEM_JSON


def test_a_text_body_is_415(mp):
    assert mp.post("/mp/test.pages/api/echo", data="{}", content_type="text/plain").status_code == 415


@pytest.mark.parametrize(
    "data",
    [
        b'{"a": ',
        b"{'a': 1}",
        b"\xff\xfe\x00garbage",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        b"1" * 5_000,
    ],
    ids=["truncated", "single-quotes", "not-utf8", "deep-lists", "deep-objects", "huge-integer"],
)
def test_bad_json_is_400_not_500(mp, data):
    response = mp.post("/mp/test.pages/api/echo", data=data, content_type="application/json")
    assert response.status_code == 400
    assert response.mimetype == PROBLEM_JSON
    assert response.get_json(force=True)["title"] == "Malformed JSON"


def test_an_api_error_becomes_a_problem_with_its_status(mp):
    response = mp.post("/mp/test.pages/api/reject", json={})
    assert response.status_code == 409
    assert response.mimetype == PROBLEM_JSON
    body = response.get_json(force=True)
    assert (body["status"], body["title"], body["detail"]) == (409, "Already claimed", "You hold this coupon already.")


def test_a_bundled_plugins_api_error_is_its_own_status(client):
    response = client.get("/mp/wealth.checkup/api/answers")
    assert response.status_code == 401  # no customer signed in
    assert response.mimetype == PROBLEM_JSON


@pytest.mark.parametrize(("path", "status"), [("junk", 502), ("nan", 502), ("raise", 502), ("hang", 504)])
def test_api_failures_are_problems_that_leak_nothing(mp, path, status):
    response = mp.get(f"/mp/test.pages/api/{path}")
    assert response.status_code == status
    assert response.mimetype == PROBLEM_JSON
    assert leaks(response, mp.application) == []


def test_a_null_result_is_json_null(mp):
    response = mp.get("/mp/test.pages/api/none")
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "null"


@pytest.mark.parametrize(
    "url", ["/mp/test.quiet/api/x", "/mp/no.such.plugin/api/x", "/mp/test.pages/api/echo?branch=BJ001", "/mp/a%00b/api/x"]
)
def test_api_of_a_missing_plugin_or_api_is_404(mp, url):
    response = mp.post(url, json={})
    # "a%00b" can be no host name: the request stays on the host's origin, where /mp/… is the
    # shell, which takes no POST.
    assert response.status_code == (405 if "%00" in url else 404)
    assert response.mimetype == PROBLEM_JSON
