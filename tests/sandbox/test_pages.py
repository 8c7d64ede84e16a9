"""Partner page templates render in the worker, inside the jail and within the ``canopy_page``
budget; the host serves what comes back with its own framing, policy and size limit.

``page.maker`` (``plugins/page_maker``) has one well-behaved template and templates that
attack whoever renders them: nested loops that never end, output without end, a reach for
Python's internals.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from canopy_sdk import Page

from host.runtime.invoke import ERROR, INVALID, OK, TIMEOUT
from host.runtime.sandboxed import SandboxedPlugin
from host.storefront import rendering
from sandbox import pages

PAGES = "page.maker"
BUDGETS = {"canopy_storefront_tiles": 5000, "canopy_page": 2000, "canopy_api": 1500, "canopy_on_event": 5000,
           "canopy_search": 5000}
FOLDER = Path(__file__).resolve().parent / "plugins" / "page_maker"
ORIGIN = "http://page.maker.mp.localhost:8000"


def eventually(condition, seconds: float = 10.0) -> bool:
    """Whether ``condition()`` becomes true within ``seconds`` (a wait for an event, not a timing check)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture
def host(sandbox_host):
    """The app with ``page.maker`` and its neighbour, registered, seeded and installed in SH001."""
    from host.db import get_database
    from host.demo import seed
    from host.runtime.registry import sync_registry
    from host.storefront.models import Installation

    # a page budget shorter than the other sandbox tests' (the hostile templates wait it out), long
    # enough for a worker's cold start after one was killed
    found = sandbox_host(FOLDER, HOOK_BUDGET_MS=BUDGETS)
    app = found.app
    with get_database(app).transaction(write=True) as session:
        sync_registry(session, found.runtime, approve=True)
    with app.app_context(), get_database(app).transaction(write=True) as session:
        seed(session)
        for position, plugin_id in enumerate((PAGES, "good.neighbour")):
            session.add(Installation(branch_code="SH001", plugin_id=plugin_id, version="1.0.0", position=90 + position))
    found.runtime.sandbox.warm(wait=True)
    return found


def render_in_host(template: str, context: dict) -> str:
    return rendering.render_page(PAGES, FOLDER, Page(title="Pages", template=template, context=context),
                                 branch={"code": "SH001", "name": "Shanghai Branch"}, locale="en", version="1.0.0")


def test_a_partner_template_renders_in_the_worker_exactly_as_the_host_renders_it_in_process(host):
    outcome = host.runtime.page(host.ctx(PAGES), "/", {})
    assert outcome.status == OK, outcome
    page = outcome.value
    assert page.template is None and page.html  # it came back rendered
    context = {"value": "<script>alert('x')</script>", "name": "上海 & Shanghai", "items": [{"n": 1}, {"n": 2}]}
    assert page.html == render_in_host("page.html", context)
    # the sandboxed environment's behaviour, as seen in the worker's output
    assert "<script>" not in page.html and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page.html
    assert "上海 &amp; Shanghai" in page.html and "上海 &amp; SHANGHAI" in page.html
    # the plugin cannot pick the branch; links stay in the version that rendered them
    assert 'href="/next?a=1&amp;branch=SH001&amp;lang=en&amp;canopy_version=1.0.0"' in page.html
    assert 'data-api="/api/answers/x?branch=SH001&amp;lang=en"' in page.html
    assert 'href="/static/pages.css?canopy_version=1.0.0"' in page.html and 'data-plugin="page.maker"' in page.html
    assert ">Shanghai Branch</p>" in page.html


def test_over_http_the_host_frames_the_workers_html_with_its_bridge_and_policy(host, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("the host rendered a sandboxed plugin's template")

    monkeypatch.setattr(rendering.pages, "render", never)
    response = host.app.test_client().get(f"{ORIGIN}/?branch=SH001&lang=en")
    assert response.status_code == 200, response.get_data(as_text=True)
    html = response.get_data(as_text=True)
    head = html.split("<head>", 1)[1]
    assert head.startswith('<script src="') and head.split(">", 1)[0].endswith('/bridge/canopy.js"')  # its framing
    assert "sandbox allow-scripts" in response.headers["Content-Security-Policy"]
    assert "&lt;script&gt;" in html


def test_nested_loops_in_a_template_are_cut_off_by_the_page_budget_and_reported(host, caplog):
    import logging

    supervisor = host.supervisor(PAGES)
    with caplog.at_level(logging.WARNING):
        outcome = host.runtime.page(host.ctx(PAGES), "/loop", {})
    assert outcome.status == TIMEOUT
    assert eventually(lambda: supervisor.status()["faults"] == 1)
    assert "no answer to canopy_page within its budget" in supervisor.status()["last_fault"]
    assert any("page.maker" in r.getMessage() and "timeout" in r.getMessage() for r in caplog.records)
    assert host.runtime.invoker.snapshot()[(PAGES, "canopy_page", TIMEOUT)] == 1
    host.assert_healthy()
    # over HTTP the same template is the plugin's own 504; the host and its neighbour answer
    client = host.app.test_client()
    assert client.get(f"{ORIGIN}/loop?branch=SH001&lang=en").status_code == 504
    assert client.get("/healthz").status_code == 200
    assert client.get("http://good.neighbour.mp.localhost:8000/?branch=SH001&lang=en").status_code == 200
    assert host.runtime.page(host.ctx(PAGES), "/", {}).status == OK  # restarted


def test_a_template_with_output_without_end_is_refused_at_the_size_limit_without_a_fault(host):
    outcome = host.runtime.page(host.ctx(PAGES), "/huge", {})
    assert outcome.status == INVALID
    assert f"more than {pages.MAX_PAGE_BYTES} bytes" in str(outcome.error)
    assert host.supervisor(PAGES).status()["faults"] == 0  # the worker stopped writing and answered
    response = host.app.test_client().get(f"{ORIGIN}/huge?branch=SH001&lang=en")
    assert response.status_code == 502 and len(response.get_data()) < 10_000
    host.assert_healthy()


@pytest.mark.parametrize("path, error", [("/escape", "SecurityError"), ("/undefined", "UndefinedError")])
def test_template_errors_in_the_worker_are_the_plugins_error(host, path, error):
    outcome = host.runtime.page(host.ctx(PAGES), path, {})
    assert outcome.status == ERROR and error in str(outcome.error)
    assert host.supervisor(PAGES).status()["faults"] == 0
    assert host.app.test_client().get(f"{ORIGIN}{path}?branch=SH001&lang=en").status_code == 502
    host.assert_healthy()


def test_a_template_arriving_from_the_sandbox_is_refused_never_rendered_by_the_host(host, monkeypatch):
    from sandbox import client

    proxy = host.runtime.plugins[PAGES].plugin
    assert isinstance(proxy, SandboxedPlugin)
    # as a worker that does not render (or lies) would answer
    forged = Page(title="Pages", template="loop.html").to_wire()
    monkeypatch.setattr(client, "call_hook", lambda *args, **kwargs: forged)
    outcome = host.runtime.page(host.ctx(PAGES), "/loop", {})
    assert outcome.status == INVALID and "must arrive rendered" in str(outcome.error)
    # nor is HTML that is not a string, or too large for the frame the host reads
    for html in (123, ["<p>"], {"html": "<p>"}):
        forged = {**Page(title="Pages", html="<p>").to_wire(), "html": html}
        assert host.runtime.page(host.ctx(PAGES), "/", {}).status == INVALID
    forged = Page(title="Pages", html="x" * (rendering.MAX_PAGE_BYTES + 1)).to_wire()
    response = host.app.test_client().get(f"{ORIGIN}/?branch=SH001&lang=en")
    assert response.status_code == 502 and host.runtime.invoker.snapshot()[(PAGES, "render", INVALID)] == 1
    monkeypatch.undo()
    host.assert_healthy()
    # and should one reach the storefront's rendering anyway, it refuses it too
    with pytest.raises(Exception, match="must arrive rendered"):
        rendering.render_page(PAGES, FOLDER, Page(title="Pages", template="loop.html"),
                              branch={"code": "SH001", "name": "Shanghai"}, locale="en", in_process=False)
