"""Signing in through the real /signin form: landing on ``next``, wrong passwords, CSRF."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from host.demo import CUSTOMERS

CUSTOMER_PHONE, CUSTOMER_PASSWORD = CUSTOMERS[0][:2]
OTHER_CUSTOMER_PHONE = CUSTOMERS[1][0]  # the wrong-password test never counts against the first

pytestmark = pytest.mark.e2e


def _host_cookies(context, live_server) -> list[dict]:
    return [cookie for cookie in context.cookies(live_server.url) if cookie["httpOnly"]]


def test_customer_signs_in_and_lands_on_next(page, context, live_server, sign_in, shoot):
    sign_in(page, "/s/SH001?lang=en", screenshot="signin")
    expect(page.locator('[data-plugin="sh.deals"]')).to_be_visible()
    assert _host_cookies(context, live_server), "signed in, but the browser holds no session cookie"
    shoot(page, "signin-landed-on-storefront")


def test_a_wrong_password_shows_the_error(page, live_server, shoot):
    page.goto("/signin?lang=en&next=%2Fs%2FSH001")
    page.get_by_label("Mobile number").fill(OTHER_CUSTOMER_PHONE)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("The sign-in name or password is wrong.")
    expect(page).to_have_url(re.compile(re.escape(live_server("/signin"))))
    expect(page.get_by_label("Mobile number")).to_have_value(OTHER_CUSTOMER_PHONE)
    expect(page.get_by_label("Password")).to_have_value("")
    shoot(page, "signin-wrong-password")


def test_the_form_carries_a_csrf_token_and_a_post_without_it_is_refused(page, live_server, shoot):
    page.goto("/signin?lang=en")
    field = page.locator('form input[type="hidden"][name="csrf_token"]')
    expect(field).to_have_count(1)
    token = field.input_value()
    assert len(token) >= 32
    shoot(page, "signin-form")
    form = {"phone": CUSTOMER_PHONE, "password": CUSTOMER_PASSWORD, "next": "/s/SH001"}
    # page.request shares the page's cookies: the session that holds the token is sent along.
    refused = page.request.post(live_server("/signin"), form=form, max_redirects=0)
    assert refused.status == 400
    assert "security token" in refused.text()
    # The same post with the token is accepted, so the token was the only thing missing.
    accepted = page.request.post(live_server("/signin"), form={**form, "csrf_token": token}, max_redirects=0)
    assert accepted.status == 303
    assert accepted.headers["location"].endswith("/s/SH001")
