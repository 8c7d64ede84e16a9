"""host.catalogs and the gettext set-up: every catalog complete and compiled, pages translated
into the request's language, and the check catching what a translator or a developer forgot."""

from __future__ import annotations

import pytest

from host import catalogs
from host.i18n import catalog_folders


def test_every_catalog_of_the_host_is_complete_and_compiled(capsys):
    assert catalog_folders(), "no package has a translations folder"
    assert catalogs.main(["check"]) == 0, capsys.readouterr().out


@pytest.fixture
def empty_branch(demo_app):
    from host.db import get_database
    from host.storefront.models import Branch

    with demo_app.app_context(), get_database(demo_app).transaction(write=True) as session:
        session.add(Branch(code="XX001", name_zh="测试支行", name_en="Test branch", parent_code="HQ"))
    return "/s/XX001"


def test_pages_are_translated_into_the_requests_language(demo_app, empty_branch):
    client = demo_app.test_client()
    assert "这里还没有小程序。" in client.get(empty_branch, headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert "No mini-programs here yet." in client.get(empty_branch, headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "这里还没有小程序。" in client.get(empty_branch + "?lang=zh").get_data(as_text=True)


def test_the_signed_in_customers_setting_beats_the_browsers_header_and_lang_beats_both(demo_app, empty_branch):
    from tests.host.oauth.conftest import Browser

    browser = Browser(demo_app)
    browser.sign_in("13900000002", "canopy-demo-2")  # Wang Fang reads English
    page = browser.http.get(empty_branch, headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert "No mini-programs here yet." in page
    page = browser.http.get(empty_branch + "?lang=zh-CN", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "这里还没有小程序。" in page


# -- the check, on a package of its own ----------------------------------------------------------


@pytest.fixture
def package(tmp_path):
    root = tmp_path / "shop"
    (root / "templates").mkdir(parents=True)
    (root / "translations").mkdir()
    (root / "templates" / "page.html").write_text('<p>{{ _("Hello") }}</p>', encoding="utf-8")
    (root / "views.py").write_text('from flask_babel import gettext as _\n\n\ndef title():\n    return _("Welcome")\n',
                                   encoding="utf-8")
    return root / "translations"


def _translate(translations, **texts):
    from babel.messages.pofile import read_po, write_po

    path = catalogs.po_path(translations, "zh_Hans_CN")
    with path.open("rb") as handle:
        catalog = read_po(handle)
    for message_id, text in texts.items():
        catalog.get(message_id).string = text
    with path.open("wb") as handle:
        write_po(handle, catalog)
    return catalog


def test_the_check_names_what_is_missing_untranslated_fuzzy_or_stale(package):
    assert any("'Hello' is missing" in p for p in catalogs.problems(package))  # nothing collected yet
    catalogs.update(package)
    found = catalogs.problems(package)
    assert any("'Hello' has no translation" in p for p in found) and any("'Welcome' has no translation" in p for p in found)

    _translate(package, Hello="你好", Welcome="欢迎")
    assert catalogs.problems(package) == ["shop/translations/zh_Hans_CN/LC_MESSAGES/messages.mo is out of date (run make translations)"]
    catalogs.compile_catalog(package, "zh_Hans_CN")
    assert catalogs.problems(package) == []

    from babel.messages.pofile import read_po, write_po

    path = catalogs.po_path(package, "zh_Hans_CN")
    with path.open("rb") as handle:
        catalog = read_po(handle)
    catalog.get("Hello").flags.add("fuzzy")
    with path.open("wb") as handle:
        write_po(handle, catalog)
    assert any("'Hello' is marked fuzzy" in p for p in catalogs.problems(package))


def test_an_update_keeps_translations_and_drops_texts_no_longer_used(package):
    catalogs.update(package)
    _translate(package, Hello="你好", Welcome="欢迎")
    (package.parent / "views.py").write_text("def title():\n    return 'plain'\n", encoding="utf-8")
    catalogs.update(package)
    from babel.messages.pofile import read_po

    with catalogs.po_path(package, "zh_Hans_CN").open("rb") as handle:
        kept = {m.id: m.string for m in read_po(handle) if m.id}
    assert kept == {"Hello": "你好"}
    assert catalogs.problems(package) == []


def test_a_sub_package_with_its_own_catalog_keeps_its_texts(package, monkeypatch):
    inner = package.parent / "inner"
    (inner / "translations").mkdir(parents=True)
    (inner / "templates").mkdir()
    (inner / "templates" / "x.html").write_text('{{ _("Inner") }}', encoding="utf-8")
    monkeypatch.setattr(catalogs, "catalog_folders", lambda: [package, inner / "translations"])
    assert "Inner" not in {m.id for m in catalogs.collect(package)}
    assert {m.id for m in catalogs.collect(inner / "translations") if m.id} == {"Inner"}


def test_the_command_says_how_to_use_it(capsys):
    assert catalogs.main(["bogus"]) == 2
    assert "usage" in capsys.readouterr().err


def test_two_catalogs_translating_one_text_differently_are_named(tmp_path):
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import write_po

    folders = []
    for name, text in (("consent", "同意授权"), ("shop", "允许"), ("other", "允许")):
        folder = tmp_path / name / "translations"
        path = catalogs.po_path(folder, "zh_Hans_CN")
        path.parent.mkdir(parents=True)
        catalog = Catalog(locale="zh_Hans_CN")
        catalog.add("Allow", text)
        catalog.add(f"Only in {name}", "仅此")
        with path.open("wb") as handle:
            write_po(handle, catalog)
        folders.append(folder)
    [found] = catalogs.conflicts(folders)
    assert "'Allow'" in found and "consent ('同意授权')" in found and "shop ('允许')" in found
    assert catalogs.conflicts(folders[1:]) == []
