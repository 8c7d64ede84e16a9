"""The host's own pages in both languages: sign-in and the staff's and developers' homes, the
consent screen and "My authorisations", the payment sheet, the risk centre and the error pages.

Each is rendered in Chinese and in English — chosen by ``Accept-Language``, by ``?lang=`` and by
the signed-in customer's setting — and checked for a few key texts; a Chinese page must not show
any of the English texts its catalog translates (docs/i18n.md)."""

from __future__ import annotations

import html
import re
import secrets
from datetime import timedelta
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from tests.host.oauth.conftest import ISSUER, Browser, Partner, PartnerKey, _write_plugin, form_token

ROOT = Path(__file__).resolve().parents[2]
HOST = ROOT / "host"
CATALOGS = ("identity", "oauth", "payments", "payments/risk", "")
EN_READER = ("13900000002", "canopy-demo-2")  # Wang Fang reads English
STAFF_PASSWORD = "canopy-demo"


def _english_texts() -> tuple[list[str], list[str]]:
    """The English texts of the converted pages' catalogs: those long enough to be unmistakable
    anywhere in a page, and the short ones (looked for as a whole element's text)."""
    found, short = [], []
    for package in CATALOGS:
        with (HOST / package / "translations/zh_Hans_CN/LC_MESSAGES/messages.po").open("rb") as handle:
            for message in read_po(handle):
                for text in (message.id if isinstance(message.id, tuple) else (message.id,)):
                    plain = re.sub(r"<[^>]+>|%\(\w+\)\w", "|", text or "")
                    found += [part.strip() for part in plain.split("|") if len(part.strip()) >= 10]
                    short += [text] if text and "%" not in text and len(text) < 10 else []
    return sorted(set(found)), sorted(set(short))


ENGLISH, SHORT_ENGLISH = _english_texts()


def visible(page: str) -> str:
    """The text a reader sees: tags dropped, entities decoded, spaces squeezed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def assert_chinese(page: str) -> None:
    assert '<html lang="zh-CN">' in page
    squeezed = re.sub(r">\s+|\s+<", lambda m: m.group().strip(), page)
    shown = [text for text in ENGLISH if text in visible(page)]
    shown += [text for text in SHORT_ENGLISH if f">{text}<" in squeezed]
    assert not shown, f"English texts on a Chinese page: {shown}"


def assert_english(page: str) -> None:
    assert '<html lang="en">' in page
    assert not re.search(r"[\u4e00-\u9fff]", visible(page).replace("测试钱包", "").replace("林小姐", "")), visible(page)


def text(response, status: int = 200) -> str:
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_data(as_text=True)


@pytest.fixture
def site(app_factory, seed_demo, tmp_path):
    """The demo app with a test mini-program that asks for the profile scopes."""
    folder = tmp_path / "i18n_plugins"
    _write_plugin(folder, "test.wallet", ["profile.basic:read", "profile.phone:read"])
    app = app_factory(PLUGIN_PATHS=[str(ROOT / "plugins"), str(folder)], OAUTH_ISSUER=ISSUER)
    return seed_demo(app)


def _staff(site, username: str = "hq.admin"):
    client = site.test_client()
    page = text(client.get("/staff/signin"))
    response = client.post("/staff/signin", data={"username": username, "password": STAFF_PASSWORD,
                                                  "csrf_token": form_token(page)})
    assert response.status_code == 303
    return client


def _customer(site, phone: str = "13800000001", password: str = "canopy-demo-1") -> Browser:
    browser = Browser(site)
    browser.sign_in(phone, password)
    return browser


# -- sign-in, staff and developer homes ---------------------------------------------------------


@pytest.mark.parametrize("path, zh, en", [
    ("/signin", ["登录手机银行", "手机号", "密码", "登录"], ["Sign in to your bank", "Mobile number", "Password", "Sign in"]),
    ("/staff/signin", ["员工登录", "用户名"], ["Staff sign-in", "Username"]),
    ("/developer/signin", ["合作方开发者登录", "电子邮箱"], ["Partner developer sign-in", "E-mail"]),
])
def test_the_sign_in_pages_follow_accept_language_and_lang(site, path, zh, en):
    def fresh(query: str = "", **headers) -> str:  # a new browser each time: no language remembered
        return text(site.test_client().get(path + query, headers=headers))

    for page in (fresh(**{"Accept-Language": "zh-CN"}), fresh("?lang=zh-CN"), fresh("?lang=zh", **{"Accept-Language": "en"})):
        assert all(word in page for word in zh)
        assert_chinese(page)
    for page in (fresh(**{"Accept-Language": "en-GB,en;q=0.9"}), fresh("?lang=en", **{"Accept-Language": "zh-CN"})):
        assert all(word in page for word in en)
        assert_english(page)


def test_a_failed_sign_in_says_so_in_the_readers_language(site):
    client = site.test_client()
    for lang, wrong in (("zh-CN", "账号或密码错误。"), ("en", "The sign-in name or password is wrong.")):
        token = form_token(text(client.get("/signin")))
        page = text(client.post(f"/signin?lang={lang}", data={"phone": "13800000001", "password": "nope",
                                                                "csrf_token": token}), 401)
        assert wrong in page


def test_the_staff_and_developer_homes_are_translated(site):
    staff = _staff(site)
    assert ">退出<" in text(staff.get("/staff", headers={"Accept-Language": "zh-CN"}))
    assert ">Sign out<" in text(staff.get("/staff", headers={"Accept-Language": "en"}))
    developer = site.test_client()
    page = text(developer.get("/developer/signin"))
    assert developer.post("/developer/signin", data={"email": "dev@citypower.example", "password": STAFF_PASSWORD,
                                                     "csrf_token": form_token(page)}).status_code == 303
    chinese = text(developer.get("/developer?lang=zh-CN"))
    assert ">退出<" in chinese
    assert_chinese(chinese)
    assert ">Sign out<" in text(developer.get("/developer?lang=en"))


# -- the consent screen and "My authorisations" -------------------------------------------------


@pytest.fixture
def wallet(site):
    partner = Partner(site, "test.wallet", PartnerKey("ES256"))
    partner.register()
    return partner


def _consent_page(browser, wallet, lang: str | None = None) -> str:
    pushed = wallet.par(scope="profile.basic:read profile.phone:read")
    assert pushed.status_code == 201, pushed.get_json()
    query = {"client_id": wallet.plugin_id, "request_uri": pushed.get_json()["request_uri"]}
    if lang:
        query["lang"] = lang
    return text(browser.http.get("/oauth/authorize", query_string=query))


def test_the_consent_screen_in_both_languages(site, wallet):
    browser = _customer(site)  # her own setting: Chinese
    chinese = _consent_page(browser, wallet)
    assert "<strong>测试钱包 test.wallet</strong> 希望获得以下权限" in chinese
    assert "同意授权" in chinese and "拒绝" in chinese and "发布方: branch SH001" in chinese
    assert "您可随时在“我的授权”中撤回。" in chinese
    assert_chinese(chinese)

    english = _consent_page(browser, wallet, lang="en")
    assert "<strong>Test wallet test.wallet</strong> would like to" in english
    assert ">Agree and allow<" in english and "Don't allow" in english and "Published by: branch SH001" in english
    assert "You can withdraw this at any time in My authorisations." in english
    assert_english(english)

    reader = _customer(site, *EN_READER)  # her own setting: English, whatever the browser says
    page = text(reader.http.get("/oauth/authorize", query_string={
        "client_id": wallet.plugin_id, "request_uri": wallet.par().get_json()["request_uri"]},
        headers={"Accept-Language": "zh-CN"}))
    assert "would like to" in page


def test_a_plugin_name_is_escaped_inside_the_translated_heading(site, wallet):
    from host.db import get_database
    from host.runtime.models import PluginRecord

    with site.app_context(), get_database(site).transaction(write=True) as session:
        record = session.get(PluginRecord, "test.wallet")
        record.name = {"zh": "<script>x</script>", "en": "<b>x</b>"}
    page = _consent_page(_customer(site), wallet)
    assert "<script>x" not in page and "<strong>&lt;script&gt;x&lt;/script&gt;</strong> 希望获得以下权限" in page


def test_my_authorisations_in_both_languages(site, wallet):
    browser = _customer(site)
    empty = text(browser.http.get("/me/authorisations"))
    assert "我的授权" in empty and "目前没有小程序获得您的授权。" in empty
    assert_chinese(empty)
    assert "No mini-program holds an authorisation from you." in text(browser.http.get("/me/authorisations?lang=en"))

    pushed = wallet.par(scope="profile.basic:read profile.phone:read")
    assert browser.decide(pushed.get_json()["request_uri"], wallet.plugin_id).status_code == 303
    chinese = text(browser.http.get("/me/authorisations?lang=zh-CN"))  # ?lang=en was remembered: choose again
    assert re.search(r"授权于 \d{4}-\d\d-\d\d \d\d:\d\d UTC", chinese) and "有效期至 " in chinese
    assert ">撤回<" in chinese and ">全部撤回<" in chinese
    assert_chinese(chinese)
    english = text(browser.http.get("/me/authorisations?lang=en"))
    assert re.search(r"Allowed \d{4}-\d\d-\d\d \d\d:\d\d UTC", english) and "until " in english
    assert ">Withdraw<" in english and ">Withdraw everything<" in english
    assert_english(english)

    token = form_token(chinese)
    done = browser.http.post("/me/authorisations/withdraw", data={"plugin_id": wallet.plugin_id, "csrf_token": token})
    assert done.status_code == 303
    assert "已撤回，立即生效。" in text(browser.http.get(done.headers["Location"] + "&lang=zh-CN"))
    assert "Withdrawn. It takes effect at once." in text(browser.http.get(done.headers["Location"] + "&lang=en"))


# -- the payment sheet --------------------------------------------------------------------------


@pytest.fixture
def intent_id(site):
    """A payment of CNY 12.34 to City Power by the first demo customer, waiting for her PIN."""
    from sqlalchemy import select

    from host.db import get_database
    from host.identity.models import Customer
    from host.payments.models import Account, AccountKind, PaymentIntent
    from host.db import utcnow

    with site.app_context(), get_database(site).transaction(write=True) as session:
        customer_id = session.scalars(select(Customer.id).where(Customer.phone == "13800000001")).one()
        merchant = session.scalar(select(Account).where(Account.kind == AccountKind.MERCHANT,
                                                        Account.owner == "partner:CITYPOWER", Account.currency == "CNY"))
        if merchant is None:
            merchant = Account(kind=AccountKind.MERCHANT, owner="partner:CITYPOWER", currency="CNY", balance=0)
            session.add(merchant)
            session.flush()
        now = utcnow()
        intent = PaymentIntent(id="pi_" + secrets.token_hex(12), plugin_id="city.utilities",
                               merchant_account_id=merchant.id, customer_id=customer_id, branch_code="SH001",
                               amount=1234, currency="CNY", description="electricity", created_at=now, updated_at=now,
                               expires_at=now + timedelta(minutes=15))
        session.add(intent)
        return intent.id


def test_the_payment_sheet_and_its_pin_messages_in_both_languages(site, intent_id):
    browser = _customer(site)
    chinese = text(browser.http.get(f"/pay/{intent_id}"))
    for word in ("确认付款", "收款方", "金额", "用途", "付款账户", "支付账户，余额", "支付密码"):
        assert word in chinese
    assert_chinese(chinese)
    english = text(browser.http.get(f"/pay/{intent_id}?lang=en"))
    for word in ("Confirm payment", ">To<", ">Amount<", ">For<", ">From<", "Payment account, balance", "Payment PIN", ">Pay "):
        assert word in english
    assert_english(english)

    def wrong_pin(lang: str, status: int = 400) -> str:
        token = form_token(text(browser.http.get(f"/pay/{intent_id}")))
        return text(browser.http.post(f"/pay/{intent_id}?lang={lang}", data={"pin": "000000", "csrf_token": token}),
                    status)

    assert "支付密码错误，还可尝试 4 次。" in wrong_pin("zh-CN")
    assert "Wrong payment PIN; 3 attempts left." in wrong_pin("en")
    assert "支付密码错误，还可尝试 2 次。" in wrong_pin("zh-CN")
    assert "Wrong payment PIN; 1 attempt left." in wrong_pin("en")  # one attempt: the singular
    assert "Payments are locked for 30 minutes after too many wrong PINs." in wrong_pin("en", 403)
    assert "支付密码错误次数过多，已锁定 30 分钟。" in wrong_pin("zh-CN", 403)


# -- the risk centre ----------------------------------------------------------------------------


def test_the_risk_centre_in_both_languages(site):
    staff = _staff(site)
    chinese = text(staff.get("/staff/risk", headers={"Accept-Language": "zh-CN"}))
    for word in ("风控中心", "机构", "查看", "全行设置：未单独设置的机构均适用。", "参数（JSON）", "保存", ">全行 (*)<"):
        assert word in chinese
    assert_chinese(chinese)
    english = text(staff.get("/staff/risk?lang=en"))
    for word in ("Risk centre", "Bank-wide settings: every branch without its own setting uses these.",
                 "Parameters (JSON)", ">Save<", ">Bank-wide (*)<"):
        assert word in english
    assert '<html lang="en">' in english

    branch = text(staff.get("/staff/risk?branch=SH001", headers={"Accept-Language": "en"}))
    assert "Settings in effect for SH001." in branch
    assert "适用于 SH001." in text(staff.get("/staff/risk?branch=SH001&lang=zh-CN"))


# -- error pages --------------------------------------------------------------------------------


def test_error_pages_are_in_the_readers_language_and_problem_documents_stay_english(site):
    client = site.test_client()
    chinese = text(client.get("/no-such-page", headers={"Accept": "text/html", "Accept-Language": "zh-CN"}), 404)
    assert "<h1>页面不存在</h1>" in chinese and '<html lang="zh-CN">' in chinese
    assert 'data-title="Not Found"' in chinese  # the English title, as problem documents give it
    english = text(client.get("/no-such-page?lang=en", headers={"Accept": "text/html"}), 404)
    assert "<h1>Not Found</h1>" in english and '<html lang="en">' in english
    problem = client.get("/no-such-page", headers={"Accept": "application/json", "Accept-Language": "zh-CN"})
    assert problem.get_json()["title"] == "Not Found"

    staff = _staff(site, "bj.operator")
    refused = text(staff.get("/staff/risk?branch=SH001", headers={"Accept-Language": "zh-CN"}), 403)
    assert "<h1>无权操作</h1>" in refused
    assert "<h1>Not allowed</h1>" in text(staff.get("/staff/risk?branch=SH001&lang=en"), 403)


# -- a language chosen with ?lang= is kept across a form's POST and its redirect ----------------------


def test_a_customers_choice_outlives_the_sign_in_post_and_beats_her_own_setting(site):
    client = site.test_client()
    page = text(client.get("/signin?lang=en", headers={"Accept-Language": "zh-CN"}))
    wrong = client.post("/signin", data={"phone": "13800000001", "password": "nope", "csrf_token": form_token(page)},
                        headers={"Accept-Language": "zh-CN"})
    assert "The sign-in name or password is wrong." in text(wrong, 401)
    done = client.post("/signin", data={"phone": "13800000001", "password": "canopy-demo-1",
                                        "csrf_token": form_token(page), "next": "/me/authorisations"})
    assert done.status_code == 303 and "lang=" not in done.headers["Location"]
    # 林小姐's own setting is Chinese, but she chose English in this browser
    english = text(client.get(done.headers["Location"], headers={"Accept-Language": "zh-CN"}))
    assert "No mini-program holds an authorisation from you." in english
    assert_english(english)


def test_a_staff_members_choice_outlives_a_console_post_and_its_redirect(site):
    staff = _staff(site, "sh.operator")
    assert '<html lang="en">' in text(staff.get("/console/branches/SH001?lang=en", headers={"Accept-Language": "zh-CN"}))
    token = form_token(text(staff.get("/console/slots/new?scope=SH001&kind=banner")))
    form = {"csrf_token": token, "scope": "SH001", "kind": "banner", "title_zh": "春季理财", "title_en": "Spring savings"}
    invalid = staff.post("/console/slots", data={**form, "link": "javascript:x"}, headers={"Accept-Language": "zh-CN"})
    assert "must be an https:// address or a mini-program page" in text(invalid, 422)
    saved = staff.post("/console/slots", data=form, headers={"Accept-Language": "zh-CN"})
    assert saved.status_code == 303 and "lang=" not in saved.headers["Location"]
    page = text(staff.get(saved.headers["Location"], headers={"Accept-Language": "zh-CN"}))
    assert "Saved." in page and '<html lang="en">' in page
    chinese = text(staff.get(saved.headers["Location"] + "&lang=zh-CN"))  # choosing again replaces it
    assert "已保存。" in chinese
    assert '<html lang="zh-CN">' in text(staff.get("/console/branches/SH001", headers={"Accept-Language": "en"}))


def test_a_remembered_choice_beats_the_customers_setting_until_she_chooses_again(site):
    reader = _customer(site, *EN_READER)  # her own setting: English
    assert "No mini-program holds an authorisation from you." in text(reader.http.get("/me/authorisations"))
    reader.http.set_cookie("canopy_lang", "zh-CN")
    assert "目前没有小程序获得您的授权。" in text(reader.http.get("/me/authorisations"))
    reader.http.set_cookie("canopy_lang", "ja")  # not a supported locale: as if there were none
    assert "No mini-program holds an authorisation from you." in text(reader.http.get("/me/authorisations"))
