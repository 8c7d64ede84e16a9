"""The automated pre-review at submission: its report (manifest lint, scope diff, budgets, smoke
render in a throw-away sandbox worker, the plugin's own tests) and its one decision."""

from __future__ import annotations

import os
import textwrap

import pytest
from sqlalchemy import select

from host.db import get_database
from host.publishing import lifecycle, prereview, prereview_runs, services
from host.publishing.models import PackageVersion
from host.runtime import get_runtime
from sandbox import jail

PLUGIN = "sh.prereview"
#: Generous budgets: a healthy call never comes near them on a loaded machine; a hung one is cut off.
SETTINGS = prereview.Settings(hook_budget=lambda hook: 3.0)

GOOD_CODE = """\
from canopy_sdk import Page, Tile, hookimpl


class Plugin:
    @hookimpl
    def canopy_storefront_tiles(self, ctx):
        return [Tile(title="Coupons", subtitle=ctx.branch.code)]

    @hookimpl
    def canopy_page(self, ctx, path, query):
        stored = ctx.storage.get_item("greeting")  # empty in the dry run
        return Page(title="Coupons", template="index.html", context={"stored": stored is None})


plugin = Plugin()
"""


def manifest(version: str = "1.0.0", scopes=(), pages=None, *, description: bool = True, keywords=None,
             zone: bool = True) -> str:
    pages = pages or [("/", "首页", "Home")]
    listed = ", ".join(f'"{scope}"' for scope in scopes)
    page_lines = ", ".join(f'{{ path = "{p}", title = {{ zh = "{zh}", en = "{en}" }} }}' for p, zh, en in pages)
    keywords = ["优惠", "coupons"] if keywords is None else keywords
    text = textwrap.dedent(f"""\
        id = "{PLUGIN}"
        name = {{ zh = "预审测试", en = "Pre-review test" }}
        version = "{version}"
        publisher = {{ kind = "branch", id = "SH001" }}
        entry = "main:plugin"
        scopes = [{listed}]
        pages = [{page_lines}]
        keywords = [{", ".join(f'"{k}"' for k in keywords)}]
        """)
    if description:
        text += 'description = { zh = "上海分行的优惠券", en = "Coupons of the Shanghai branch" }\n'
    if zone:
        text += 'zone = { slots = ["tile"] }\n'
    return text


@pytest.fixture
def submit(demo_app, actors, package_zip):
    """``submit(version, code=GOOD_CODE, manifest_text=None, files=None, settings=SETTINGS)``: upload
    and submit a version of ``sh.prereview``; return (status, status_reason, report)."""

    def run(version: str = "1.0.0", code: str = GOOD_CODE, manifest_text: str | None = None, files=None,
            settings: prereview.Settings = SETTINGS):
        content = {"plugin.toml": manifest_text or manifest(version), "main.py": code,
                   "templates/index.html": "<h1>Coupons {{ stored }}</h1>", **(files or {})}
        data = package_zip(PLUGIN, version, files=content)
        root = services.package_store(demo_app)
        with demo_app.app_context():
            with get_database(demo_app).transaction(write=True) as session:
                services.upload(session, actors["sh.operator"], PLUGIN, data, root)
            with get_database(demo_app).transaction(write=True) as session:
                services.submit(session, actors["sh.operator"], PLUGIN, version, reason="")
            assert prereview_runs.run(demo_app, PLUGIN, version, settings=settings) == (PLUGIN, version)
            with get_database(demo_app).transaction() as session:
                row = lifecycle.find(session, PLUGIN, version)
                return row.status, row.status_reason, row.prereview

    return run


def approve(app, actors, version: str) -> None:
    with app.app_context(), get_database(app).transaction(write=True) as session:
        lifecycle.apply(session, actors["hq.reviewer"], PLUGIN, version, "start_review")
        lifecycle.apply(session, actors["hq.reviewer"], PLUGIN, version, "approve")


def calls(report: dict) -> list[tuple]:
    return [(c["hook"], c["path"], c["result"]) for c in report["smoke"]["calls"]]


def codes(section: dict) -> list[tuple[str, str]]:
    return [(f["level"], f["code"]) for f in section["findings"]]


def assert_healthy(app) -> None:
    """The host answers and serves a bundled plugin's page after the plugin's worst."""
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    [outcome] = get_runtime(app).tiles([get_runtime(app).context("sh.deals", branch=_branch(), locale="en",
                                                                  approved_scopes=[])])
    assert outcome.ok, outcome


def _branch():
    from canopy_sdk import BranchInfo

    return BranchInfo(code="SH001", name="Shanghai Branch", parent="HQ")


# -- with the sandbox ----------------------------------------------------------------------------


def test_a_good_package_passes_with_its_report(submit, demo_app, sandbox_isolation):
    status, reason, report = submit()
    assert (status, reason) == ("pre_review", ""), report["problems"]
    assert report["passed"] is True and report["format"] == 1 and report["problems"] == []
    assert {name: report[name]["outcome"] for name in ("integrity", "manifest", "scopes", "budgets", "smoke", "tests")} == {
        "integrity": "pass", "manifest": "pass", "scopes": "pass", "budgets": "pass", "smoke": "pass",
        "tests": "not_run"}
    assert report["smoke"]["hooks"] == ["canopy_page", "canopy_storefront_tiles"]
    assert calls(report) == [("canopy_storefront_tiles", None, "ok"), ("canopy_page", "/", "ok")]
    assert report["smoke"]["calls"][0]["message"] == "1 tile(s)"
    assert report["tests"]["reason"] == "the package has no tests/ folder"
    measures = {m["name"]: (m["value"], m["limit"], m["ok"]) for m in report["budgets"]["measures"]}
    assert measures["files"] == (3, 200, True) and measures["pages"] == (1, 20, True)
    # stored with the version, as the review API returns it
    with demo_app.app_context(), get_database(demo_app).transaction() as session:
        stored = session.scalar(select(PackageVersion.prereview).where(PackageVersion.plugin_id == PLUGIN))
    assert stored == report


def test_a_page_that_raises_is_reported_with_its_error(submit, demo_app, sandbox_isolation):
    code = GOOD_CODE.replace('        stored = ctx.storage.get_item("greeting")',
                             '        if path == "/broken":\n            raise ValueError("the coupon list is empty")\n'
                             '        stored = ctx.storage.get_item("greeting")')
    status, reason, report = submit(code=code, manifest_text=manifest(pages=[("/", "首页", "Home"),
                                                                            ("/broken", "坏页", "Broken")]))
    assert status == "rejected" and not report["passed"]
    assert calls(report) == [("canopy_storefront_tiles", None, "ok"), ("canopy_page", "/", "ok"),
                             ("canopy_page", "/broken", "error")]
    assert report["smoke"]["calls"][2]["message"] == "ValueError: the coupon list is empty"
    assert reason == "smoke: page '/broken': error: ValueError: the coupon list is empty"
    assert_healthy(demo_app)


def test_tiles_that_loop_forever_are_cut_off_by_the_budget_and_the_pages_still_render(submit, demo_app,
                                                                                      sandbox_isolation):
    code = GOOD_CODE.replace('        return [Tile(title="Coupons", subtitle=ctx.branch.code)]',
                             "        while True:\n            pass")
    status, reason, report = submit(code=code)
    assert status == "rejected"
    assert calls(report) == [("canopy_storefront_tiles", None, "timeout"), ("canopy_page", "/", "ok")]
    assert report["smoke"]["calls"][0]["message"] == "no answer within its budget of 3000 ms; the worker was killed"
    assert reason.startswith("smoke: canopy_storefront_tiles: timeout: no answer within its budget")
    assert_healthy(demo_app)


def test_missing_templates_fail_the_lint_and_the_render(submit, sandbox_isolation):
    code = GOOD_CODE.replace('template="index.html"', 'template="coupons.html"')
    status, reason, report = submit(code=code, files={"templates/index.html": '{% extends "base.html" %}'})
    assert status == "rejected"
    assert codes(report["manifest"]) == [("failure", "template_missing"), ("failure", "template_missing")]
    assert [f["message"] for f in report["manifest"]["findings"]] == [
        "main.py refers to template 'coupons.html', which templates/ does not hold",
        "templates/index.html refers to template 'base.html', which templates/ does not hold"]
    page = report["smoke"]["calls"][1]
    assert (page["result"], page["message"]) == (
        "error", "TemplateNotFound: 'coupons.html' not found in search path: '/plugin/templates'")


def test_invalid_results_are_reported_as_invalid(submit, sandbox_isolation):
    code = GOOD_CODE.replace('return [Tile(title="Coupons", subtitle=ctx.branch.code)]', 'return "a tile"')
    status, _, report = submit(code=code)
    assert status == "rejected"
    tiles = report["smoke"]["calls"][0]
    assert (tiles["result"], tiles["message"]) == ("invalid", "canopy_storefront_tiles must return a list of Tile")


def test_an_added_sensitive_scope_is_flagged_against_the_last_approved_version(submit, demo_app, actors,
                                                                              sandbox_isolation):
    status, _, first = submit("1.0.0", manifest_text=manifest("1.0.0", ["payments:read", "payments:create"]))
    assert status == "pre_review" and first["scopes"]["basis"] == "none"
    approve(demo_app, actors, "1.0.0")
    status, _, report = submit("1.1.0", manifest_text=manifest(
        "1.1.0", ["payments:read", "profile.phone:read", "notifications:send"]))
    scopes = report["scopes"]
    assert (scopes["compared_with"], scopes["basis"]) == ("1.0.0", "approved")
    assert scopes["added"] == [
        {"scope": "profile.phone:read", "sensitivity": "high", "needs_consent": True, "flagged": True},
        {"scope": "notifications:send", "sensitivity": "low", "needs_consent": True, "flagged": False}]
    assert (scopes["removed"], scopes["unchanged"]) == (["payments:create"], ["payments:read"])
    assert codes(scopes) == [("warning", "scope_sensitive")]
    assert report["warnings"] == ["scopes: adds 'profile.phone:read', of high sensitivity: See your mobile phone number"]
    assert status == "pre_review" and report["passed"]  # flagged for the reviewer, not refused


def test_a_package_over_its_budgets_is_refused_with_each_measure(submit, sandbox_isolation):
    settings = prereview.Settings(hook_budget=SETTINGS.hook_budget,
                                  budgets=prereview.Budgets(total_bytes=10_000, files=3, largest_file_bytes=2_000,
                                                            pages=1))
    status, reason, report = submit(files={"static/app.js": os.urandom(1_500).hex()},
                                    manifest_text=manifest(pages=[("/", "首页", "Home"), ("/more", "更多", "More")]),
                                    settings=settings)
    assert status == "rejected"
    measures = {m["name"]: (m["value"], m["limit"], m["ok"]) for m in report["budgets"]["measures"]}
    assert measures["files"] == (4, 3, False) and measures["pages"] == (2, 1, False)
    assert measures["largest_file_bytes"] == (3_000, 2_000, False) and measures["total_bytes"][2] is True
    assert [f["message"] for f in report["budgets"]["findings"]] == [
        "files: 4, over the budget of 3",
        "largest file bytes (static/app.js): 3,000, over the budget of 2,000",
        "pages: 2, over the budget of 1"]
    assert calls(report)[-1] == ("canopy_page", "/more", "skipped")
    assert "budgets: files: 4, over the budget of 3" in reason


def test_a_plugin_that_cannot_load_is_reported(submit, demo_app, sandbox_isolation):
    status, reason, report = submit(code="raise RuntimeError('no config')\n")
    assert status == "rejected" and report["smoke"]["outcome"] == "fail"
    assert codes(report["smoke"]) == [("failure", "load_failed")]
    assert "importing 'main' failed: RuntimeError('no config')" in reason
    assert_healthy(demo_app)


#: The package's own tests: they load the plugin with the SDK's test kit, as a publisher's would.
OWN_TESTS = """from pathlib import Path

from canopy_sdk.testing import PluginHarness


def test_the_home_page_renders():
    harness = PluginHarness(Path(__file__).parents[1])
    assert harness.plugin is not None


def test_{name}():
    assert {verdict}
"""


def test_the_plugins_own_tests_run_in_the_jail_and_passing_ones_pass(submit, sandbox_isolation):
    status, _, report = submit(files={"tests/test_main.py": OWN_TESTS.format(name="truth", verdict="True")})
    tests = report["tests"]
    assert status == "pre_review" and tests["outcome"] == "pass" and tests["found"] is True
    assert tests["counts"] == {"passed": 2} and "2 passed" in tests["output"]


def test_failing_own_tests_reject_the_version_with_pytests_words(submit, sandbox_isolation):
    status, reason, report = submit(files={"tests/test_main.py": OWN_TESTS.format(name="math", verdict="1 + 1 == 3")})
    assert status == "rejected" and report["tests"]["outcome"] == "fail"
    assert report["tests"]["counts"] == {"failed": 1, "passed": 1}
    assert "tests: the package's own tests failed (1 failed, 1 passed" in reason
    assert "assert (1 + 1) == 3" in report["tests"]["output"] or "1 + 1 == 3" in report["tests"]["output"]


def test_own_tests_stay_in_the_jail(submit, sandbox_isolation):
    """A test that reaches for the network, the host's environment or files, or hangs, fails there."""
    hostile = """import os, socket, pathlib

def test_no_network():
    socket.create_connection(("127.0.0.1", 5432), timeout=2)

def test_no_secrets():
    assert "CANOPY_SECRET_KEY" in os.environ

def test_no_host_files():
    pathlib.Path("/etc/shadow").read_text()
"""
    status, _, report = submit(files={"tests/test_hostile.py": hostile})
    assert status == "rejected" and report["tests"]["counts"] == {"failed": 3}
    settings = prereview.Settings(hook_budget=SETTINGS.hook_budget, tests_timeout=3)
    status, reason, report = submit("1.0.1", manifest_text=manifest("1.0.1"), settings=settings,
                                    files={"tests/test_hang.py": "import time\n\ndef test_hang():\n    time.sleep(60)\n"})
    assert status == "rejected" and "did not finish within 3 s" in reason


def test_own_tests_are_not_run_where_the_sandbox_cannot_isolate_them(submit):
    settings = prereview.Settings(hook_budget=SETTINGS.hook_budget,
                                  probe=lambda: jail.Probe(False, "bubblewrap (bwrap) is not installed"))
    _, _, report = submit(settings=settings, files={"tests/test_main.py": "def test_x():\n    pass\n"})
    assert report["tests"]["outcome"] == "not_run" and "cannot isolate" in report["tests"]["reason"]


# -- without the sandbox (these run everywhere) ---------------------------------------------------


def test_where_the_sandbox_cannot_isolate_the_smoke_render_is_not_run_and_nothing_passes(submit):
    settings = prereview.Settings(hook_budget=SETTINGS.hook_budget,
                                  probe=lambda: jail.Probe(False, "bubblewrap (bwrap) is not installed"))
    status, reason, report = submit(settings=settings)
    assert status == "rejected" and report["smoke"]["outcome"] == "not_run"
    assert report["smoke"]["reason"] == "the sandbox cannot isolate plugins on this host (bubblewrap (bwrap) is not installed)"
    assert reason == ("smoke: the smoke render was not run: the sandbox cannot isolate plugins on this host "
                      "(bubblewrap (bwrap) is not installed); a version passes only after it ran")
    unsafe = prereview.Settings(hook_budget=SETTINGS.hook_budget, probe=lambda: jail.Probe(True, "UNSAFE", unsafe=True))
    status, _, report = submit("1.0.1", manifest_text=manifest("1.0.1"), settings=unsafe)
    assert status == "rejected" and report["smoke"]["outcome"] == "not_run"


def test_changed_stored_files_are_not_run(submit, demo_app, actors, package_zip):
    root = services.package_store(demo_app)
    data = package_zip(PLUGIN, "1.0.0", files={"plugin.toml": manifest(), "main.py": GOOD_CODE,
                                               "templates/index.html": "<h1>x</h1>"})
    with demo_app.app_context(), get_database(demo_app).transaction(write=True) as session:
        services.upload(session, actors["sh.operator"], PLUGIN, data, root)
    target = root / PLUGIN / "1.0.0" / "main.py"
    os.chmod(target, 0o644)
    target.write_text("import os\n")
    with demo_app.app_context(), get_database(demo_app).transaction(write=True) as session:
        services.submit(session, actors["sh.operator"], PLUGIN, "1.0.0", reason="")
    prereview_runs.run(demo_app, PLUGIN, "1.0.0", settings=SETTINGS)
    with get_database(demo_app).transaction() as session:
        row = lifecycle.find(session, PLUGIN, "1.0.0")
        assert row.status == "rejected"
        assert codes(row.prereview["integrity"]) == [("failure", "files_changed")]
        assert row.prereview["smoke"]["reason"] == "the stored files are missing or differ from the upload"


def test_the_lint_warns_of_missing_descriptions_keywords_and_translations():
    raw = {"id": PLUGIN, "name": {"zh": "Coupons", "en": "Coupons"}, "entry": "main:plugin", "keywords": ["coupons"],
           "pages": [{"path": "/", "title": {"zh": "Home", "en": "Home"}}, {"path": "/x", "title": {"zh": " ", "en": "X"}}]}
    section = prereview.lint_manifest(raw, {"main.py": b"plugin = object()\n"})
    assert section["outcome"] == "fail"
    assert codes(section) == [
        ("warning", "description_missing"), ("warning", "description_missing"), ("warning", "keywords_zh_missing"),
        ("warning", "name_untranslated"), ("warning", "page_title_untranslated"), ("failure", "page_title_missing")]
    missing = prereview.lint_manifest({**raw, "entry": "app.main:plugin"}, {"main.py": b""})
    assert ("failure", "entry_missing") in codes(missing)
    unseen = prereview.lint_manifest({**raw, "entry": "main:app"}, {"main.py": b"plugin = object()\n"})
    assert ("warning", "entry_attribute_not_found") in codes(unseen)


def test_a_summary_is_a_reason_the_lifecycle_accepts():
    report = {"problems": [f"smoke: page '/{n}': error: {'x' * 80}\x00\n" for n in range(30)]}
    text = prereview.summary(report)
    assert len(text) <= lifecycle.MAX_REASON and "\x00" not in text and text.endswith("…")
    assert lifecycle.clean_reason(text, required=True) == text
