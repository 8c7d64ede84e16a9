"""host.identity.views: the sign-in pages of customers and staff, and the staff home page."""

from __future__ import annotations

import pytest
from werkzeug.datastructures import MultiDict

from host.demo import CUSTOMERS, DEMO_PASSWORD, PARTNERS, STAFF
from host.identity.csrf import FIELD
from host.identity.models import Customer
from host.identity.services import MAX_FAILED_ATTEMPTS

PHONE, PASSWORD = CUSTOMERS[0][:2]
WRONG_ZH, WRONG_EN = "账号或密码错误。", "The sign-in name or password is wrong."
LOCKED_ZH, LOCKED_EN = "失败次数过多，账户已暂时锁定。", "Too many failed attempts. The account is locked for a while."


def text(response) -> str:
    return response.get_data(as_text=True)


# --- the pages ----------------------------------------------------------------------------


def test_the_customer_page_is_in_chinese_by_default(client):
    page = client.get("/signin")
    assert (page.status_code, page.mimetype) == (200, "text/html")
    html = text(page)
    assert '<html lang="zh-CN">' in html
    assert "登录手机银行" in html and "手机号" in html and "密码" in html
    assert "Sign in to your bank" not in html
    assert f'<input type="hidden" name="{FIELD}" value="' in html
    assert 'name="phone"' in html and 'type="password"' in html


def test_the_customer_page_in_english(client):
    html = text(client.get("/signin?lang=en"))
    assert '<html lang="en">' in html
    assert "Sign in to your bank" in html and "Mobile number" in html and "Password" in html
    assert "登录手机银行" not in html
    assert f'name="{FIELD}"' in html


def test_the_browser_language_is_followed(client):
    html = text(client.get("/signin", headers={"Accept-Language": "en-GB,en;q=0.9"}))
    assert "Sign in to your bank" in html


def test_the_staff_page_in_both_languages(client):
    zh, en = text(client.get("/staff/signin")), text(client.get("/staff/signin?lang=en"))
    assert "员工登录" in zh and "用户名" in zh and f'name="{FIELD}"' in zh
    assert "Staff sign-in" in en and "Username" in en and f'name="{FIELD}"' in en
    assert 'name="username"' in zh and 'name="phone"' not in zh


def test_the_form_keeps_a_safe_next(client):
    assert 'name="next" value="/s/SH001?lang=en"' in text(client.get("/signin?next=/s/SH001?lang=en"))
    assert 'name="next" value="/"' in text(client.get("/signin"))
    assert 'name="next" value="/staff"' in text(client.get("/staff/signin"))


# --- customers ----------------------------------------------------------------------------


def test_the_demo_customer_signs_in_and_goes_to_next(client, sign_in, row):
    response = sign_in(client, PHONE, PASSWORD, next="/s/SH001")
    assert (response.status_code, response.headers["Location"]) == (303, "/s/SH001")
    with client.session_transaction() as session:
        assert session["customer_id"] == row(Customer, phone=PHONE).id


def test_without_next_the_customer_goes_home(client, sign_in):
    assert sign_in(client, PHONE, PASSWORD).headers["Location"] == "/"


def test_next_in_the_query_string_is_followed_too(client, form_token):
    token = form_token(client)
    response = client.post("/signin?next=/s/BJ001", data={FIELD: token, "phone": PHONE, "password": PASSWORD})
    assert response.headers["Location"] == "/s/BJ001"


def test_an_unsafe_next_goes_home(client, sign_in):
    assert sign_in(client, PHONE, PASSWORD, next="https://evil.example/").headers["Location"] == "/"


def test_the_second_demo_customer_signs_in(client, sign_in):
    phone, password = CUSTOMERS[1][:2]
    assert sign_in(client, phone, password).status_code == 303


def test_a_wrong_password_answers_401_with_the_message(client, sign_in):
    response = sign_in(client, PHONE, "Zq-wrong-9")
    assert response.status_code == 401
    html = text(response)
    assert WRONG_ZH in html
    assert f'value="{PHONE}"' in html  # the number is kept for the next try
    assert "Zq-wrong-9" not in html  # the password is never sent back
    with client.session_transaction() as session:
        assert "customer_id" not in session


def test_the_message_in_english(client, form_token):
    token = form_token(client)
    response = client.post("/signin?lang=en", data={FIELD: token, "phone": PHONE, "password": "wrong"})
    assert response.status_code == 401
    assert WRONG_EN in text(response)


def test_an_unknown_number_gets_the_same_page_as_a_wrong_password(client, sign_in):
    unknown, wrong = sign_in(client, "13700000000", PASSWORD), sign_in(client, PHONE, "wrong")
    assert unknown.status_code == wrong.status_code == 401
    assert text(unknown).replace("13700000000", PHONE) == text(wrong)


def test_a_locked_account_answers_423(client, sign_in):
    for _ in range(MAX_FAILED_ATTEMPTS - 1):
        assert sign_in(client, PHONE, "wrong").status_code == 401
    fifth = sign_in(client, PHONE, "wrong")
    assert fifth.status_code == 423
    assert LOCKED_ZH in text(fifth)
    right = sign_in(client, PHONE, PASSWORD)
    assert right.status_code == 423
    assert LOCKED_ZH in text(right)
    with client.session_transaction() as session:
        assert "customer_id" not in session


def test_the_locked_message_in_english(client, form_token):
    token = form_token(client)
    for _ in range(MAX_FAILED_ATTEMPTS):
        response = client.post("/signin?lang=en", data={FIELD: token, "phone": PHONE, "password": "wrong"})
    assert response.status_code == 423
    assert LOCKED_EN in text(response)


def test_a_wrong_password_sign_in_is_audited(client, sign_in, audit_log, row):
    sign_in(client, PHONE, "wrong", environ_base={"REMOTE_ADDR": "198.51.100.23"})
    [event] = audit_log("customer.sign_in")
    assert (event.outcome, event.actor, event.ip) == ("failure", row(Customer, phone=PHONE).id, "198.51.100.23")


# --- staff --------------------------------------------------------------------------------


@pytest.mark.parametrize("username, display_name, role, branch", STAFF)
def test_demo_staff_sign_in_and_see_their_role(client, sign_in, username, display_name, role, branch):
    response = sign_in(client, username, DEMO_PASSWORD, staff=True)
    assert (response.status_code, response.headers["Location"]) == (303, "/staff")
    home = client.get("/staff")
    assert home.status_code == 200
    html = text(home)
    assert display_name in html
    assert f'data-role="{role}"' in html
    assert (f" · {branch}" in html) if branch else (" · " not in html.split("data-role")[1].split("</p>")[0])


def test_a_wrong_staff_password_answers_401(client, sign_in):
    response = sign_in(client, "hq.admin", "wrong", staff=True)
    assert response.status_code == 401
    assert WRONG_ZH in text(response)
    assert 'value="hq.admin"' in text(response)


def test_a_locked_staff_account_answers_423(client, sign_in):
    for _ in range(MAX_FAILED_ATTEMPTS):
        response = sign_in(client, "hq.admin", "wrong", staff=True)
    assert response.status_code == 423
    assert sign_in(client, "hq.admin", DEMO_PASSWORD, staff=True).status_code == 423


def test_a_customer_password_does_not_open_the_staff_page(client, sign_in):
    assert sign_in(client, PHONE, PASSWORD, staff=True).status_code == 401


def test_the_staff_page_needs_a_staff_session(client, sign_in):
    response = client.get("/staff")
    assert (response.status_code, response.headers["Location"]) == (303, "/staff/signin?next=%2Fstaff")
    sign_in(client, PHONE, PASSWORD)
    assert client.get("/staff").status_code == 303


def test_staff_next_is_followed(client, sign_in):
    response = sign_in(client, "hq.admin", DEMO_PASSWORD, staff=True, next="/staff?lang=en")
    assert response.headers["Location"] == "/staff?lang=en"
    assert "Sign out" in text(client.get("/staff?lang=en"))


# --- partner developers ---------------------------------------------------------------------


def test_the_demo_developer_signs_in_and_sees_their_organisation(client, sign_in):
    org_id, _, _, email, name = PARTNERS[0]
    response = sign_in(client, email, DEMO_PASSWORD, developer=True)
    assert (response.status_code, response.headers["Location"]) == (303, "/developer")
    html = text(client.get("/developer"))
    assert name in html and f'data-org="{org_id}"' in html


def test_the_developer_page_in_english_names_the_email_field(client):
    html = text(client.get("/developer/signin?lang=en"))
    assert "Partner developer sign-in" in html and 'name="email"' in html and 'type="email"' in html


def test_a_wrong_developer_password_answers_401(client, sign_in):
    assert sign_in(client, PARTNERS[0][3], "wrong", developer=True).status_code == 401


def test_the_developer_page_needs_a_developer_session(client, sign_in):
    response = client.get("/developer")
    assert (response.status_code, response.headers["Location"]) == (303, "/developer/signin?next=%2Fdeveloper")
    sign_in(client, "hq.admin", DEMO_PASSWORD, staff=True)
    assert client.get("/developer").status_code == 303  # a staff session is not a developer's


# --- hostile input ------------------------------------------------------------------------

HOSTILE = {
    "long phone": {"phone": "1" * 100_000, "password": PASSWORD},
    "long password": {"phone": PHONE, "password": "x" * 500_000},
    "long next": {"phone": PHONE, "password": "x", "next": "/" + "a" * 100_000},
    "unicode phone": {"phone": "１３８０００００００１", "password": PASSWORD},
    "emoji": {"phone": "🏦" * 30, "password": "🔑" * 30},
    "rtl and zero width": {"phone": "\u202e13800000001\u200b", "password": PASSWORD},
    "nul in phone": {"phone": "138\x0000000001", "password": PASSWORD},
    "nul phone": {"phone": "\x00", "password": "\x00"},
    "nul after phone": {"phone": PHONE + "\x00", "password": PASSWORD},
    "nul in password": {"phone": PHONE, "password": PASSWORD + "\x00"},
    "control characters": {"phone": "\x1b[2J\r\n", "password": "\x07\x08"},
    "markup": {"phone": '"><script>alert(1)</script>', "password": "x"},
    "sql": {"phone": "' OR 1=1 --", "password": "' OR 1=1 --"},
    "missing phone": {"password": PASSWORD},
    "missing password": {"phone": PHONE},
    "missing both": {},
    "empty both": {"phone": "", "password": ""},
    "crlf next": {"phone": PHONE, "password": "x", "next": "/\r\nLocation: https://evil.example"},
    "odd field names": {"phone[]": PHONE, "password[0]": PASSWORD, "__proto__": "x"},
}


@pytest.mark.parametrize("path", ["/signin", "/staff/signin", "/developer/signin"])
@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_fields_answer_4xx_never_500(client, form_token, path, name):
    fields = dict(HOSTILE[name])
    if path.startswith("/staff") and "phone" in fields:
        fields["username"] = fields.pop("phone")
    response = client.post(path, data={FIELD: form_token(client, path), **fields})
    assert 400 <= response.status_code < 500, response.status_code
    assert "<script>alert(1)" not in text(response)
    assert "\x00" not in response.headers.get("Location", "")


def test_repeated_fields_use_the_first(client, form_token):
    token = form_token(client)
    data = MultiDict([(FIELD, token), ("phone", "13700000000"), ("phone", PHONE), ("password", PASSWORD), ("password", "x")])
    assert client.post("/signin", data=data).status_code == 401
    data = MultiDict([(FIELD, token), ("phone", PHONE), ("phone", "13700000000"), ("password", PASSWORD), ("password", "x")])
    assert client.post("/signin", data=data).status_code == 303


def test_markup_in_the_phone_is_escaped(client, form_token):
    response = client.post("/signin", data={FIELD: form_token(client), "phone": '"><b>x', "password": "x"})
    html = text(response)
    assert '"><b>x' not in html
    assert "&#34;&gt;&lt;b&gt;x" in html


@pytest.mark.parametrize(
    "body, content_type",
    [
        (b"phone=%FF%FE&password=%C0%AF&csrf_token=", "application/x-www-form-urlencoded"),
        (b"\xff\xfe\x00\x00", "application/x-www-form-urlencoded"),
        (b"phone=1&phone=2&" * 10_000, "application/x-www-form-urlencoded"),
        (b"--xyz\r\nContent-Disposition: form-data; name=\"phone\"\r\n\r\n" + b"1" * 100, "multipart/form-data; boundary=xyz"),
        (b"x" * (2 * 1024 * 1024), "application/x-www-form-urlencoded"),
        (b'{"phone": "13800000001"}', "application/json"),
    ],
    ids=["bad-utf8", "binary", "many-fields", "truncated-multipart", "too-large", "json"],
)
def test_broken_bodies_answer_4xx_never_500(client, form_token, body, content_type):
    form_token(client)
    response = client.post("/signin", data=body, content_type=content_type)
    assert 400 <= response.status_code < 500, response.status_code


def test_the_token_with_bad_utf8_fields_still_counts(client, form_token):
    token = form_token(client)
    body = f"{FIELD}={token}&phone=%FF%FE&password=%C0%AF".encode()
    response = client.post("/signin", data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 401


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_other_methods_answer_405(client, method):
    assert client.open("/signin", method=method).status_code == 405
    assert client.open("/staff/signin", method=method).status_code == 405


def test_signout_only_by_post(client):
    assert client.get("/signout").status_code == 405
