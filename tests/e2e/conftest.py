"""Fixtures of the browser tests: a live Canopy server and a real Chromium.

``live_server`` sets up a temporary instance with the commands ``make run`` uses (``canopy
init-instance``, ``db upgrade``, ``demo``) and serves it with gunicorn (``canopy serve``)
on a free port of 127.0.0.1, in its own process group, stopped at the end of the session.
Under xdist each worker starts its own server and database.

``browser`` is Playwright driving Debian's ``chromium`` (``playwright install`` cannot
download browsers here). Without it the tests are skipped with the reason, except under
``CI=true``, where that is an error — as ``_postgres_or_skip`` does for PostgreSQL.

Each test gets a fresh browser context with a phone-sized viewport; ``shoot(page, name)``
saves a screenshot to ``test-results/screenshots/``. Only 127.0.0.1 is ever contacted:
Chromium resolves no host name but the mini-programs' ``*.mp.localhost`` (loopback), and the
``page`` fixture records every request of the page and fails the test if one went elsewhere
than the server (on 127.0.0.1 or a mini-program's origin at its port).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from playwright.sync_api import expect, sync_playwright

from host.demo import CUSTOMERS
from tests.live import LOW_ARGON2, LiveServer, ServerFailed, canopy, environment

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "plugins"
SCREENSHOTS = ROOT / "test-results" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # With the flags above alone Chromium still looked up content-autofill.googleapis.com,
    # accounts.google.com and update.googleapis.com (seen with strace): no name resolves.
    # Mini-programs' own origins are http://<id>.mp.localhost:<port>, which resolve to loopback.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE *.mp.localhost",
]
PHONE = {"width": 390, "height": 844}

#: The demo customer the tests sign in as: 13800000001 / canopy-demo-1 (host/demo.py).
CUSTOMER_PHONE, CUSTOMER_PASSWORD = CUSTOMERS[0][:2]


def _missing(message: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true: browser tests must run)", pytrace=False)
    pytest.skip(message)


def _chromium_or_skip() -> str:
    path = shutil.which("chromium")
    if path is None:
        _missing("Debian's chromium is not installed: `make test-e2e` installs it (never `playwright install`)")
    return path


@pytest.fixture(scope="session")
def live_server(tmp_path_factory) -> LiveServer:
    """Canopy with the demo seeded, served by gunicorn (one worker) on a free port."""
    home = tmp_path_factory.mktemp("e2e")
    instance = home / "instance"
    env = environment(CANOPY_INSTANCE_PATH=str(instance), CANOPY_PLUGIN_PATHS=str(PLUGINS),
                      CANOPY_LOAD_ENTRY_POINTS="false", CANOPY_THREADS="4", CANOPY_LOG_LEVEL="WARNING", **LOW_ARGON2)
    server = LiveServer(env, home, workers=1)
    env["CANOPY_OAUTH_ISSUER"] = server.url  # the host's public origin: plugin pages may be framed by it only
    try:
        for command in (["init-instance"], ["db", "upgrade"], ["demo"]):
            canopy(*command, env=env, cwd=home)
        server.start()
    except ServerFailed as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def browser():
    """Chromium (Debian's package) driven by Playwright, for the whole session."""
    executable = _chromium_or_skip()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@dataclass
class BrowserLog:
    """What a page did: every request, the failed ones, and console errors."""

    requests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)


@pytest.fixture
def context(browser, live_server):
    """A fresh browser context (cookies, storage) the size of a phone, for one test."""
    context = browser.new_context(viewport=PHONE, device_scale_factor=1, locale="en-US", base_url=live_server.url)
    yield context
    context.close()


@pytest.fixture
def browser_log() -> BrowserLog:
    """The requests, failures and console errors of this test's pages."""
    return BrowserLog()


@pytest.fixture
def page(context, live_server, browser_log):
    """A page of this test's context; fails the test if any request left 127.0.0.1."""
    def console(message) -> None:
        if message.type == "error":
            browser_log.console_errors.append(message.text)

    page = context.new_page()
    page.on("request", lambda request: browser_log.requests.append(request.url))
    page.on("requestfailed", lambda request: browser_log.failed.append(f"{request.url}: {request.failure}"))
    page.on("console", console)
    yield page
    elsewhere = [url for url in browser_log.requests
                 if not url.startswith(("data:", "about:")) and urlsplit(url).netloc != urlsplit(live_server.url).netloc
                 and not _a_plugin_origin(url, live_server)]
    assert not elsewhere, f"the browser contacted something other than the test server: {elsewhere}"


def _a_plugin_origin(url: str, live_server) -> bool:
    parts = urlsplit(url)
    return (parts.hostname or "").endswith(".mp.localhost") and parts.port == live_server.port


@pytest.fixture
def plugin_origin(live_server):
    """``plugin_origin(plugin_id)``: the origin serving that mini-program's pages."""
    return lambda plugin_id: f"http://{plugin_id}.mp.localhost:{live_server.port}"


@pytest.fixture
def shoot():
    """``shoot(page, name)``: save what ``page`` shows to test-results/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def save(page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path))
        return path

    return save


@pytest.fixture
def sign_in(live_server, shoot):
    """``sign_in(page, next="/")``: sign the demo customer in through the real /signin form."""

    def sign_in(page, next: str = "/", *, screenshot: str | None = None) -> None:
        page.goto(f"/signin?lang=en&next={quote(next, safe='')}")
        page.get_by_label("Mobile number").fill(CUSTOMER_PHONE)
        page.get_by_label("Password").fill(CUSTOMER_PASSWORD)
        if screenshot:
            shoot(page, screenshot)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(live_server(next))

    return sign_in
