"""Consent in a real browser: a mini-program asks through the bridge, the bank's consent sheet
asks the customer, and "My authorisations" shows the grant and takes it back."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

CHECKUP = "/mp/wealth.checkup/?branch=SH001&lang=en"


def test_allow_on_the_banks_sheet_then_withdraw_under_my_authorisations(page, sign_in, shoot):
    sign_in(page, CHECKUP)
    frame = page.frame_locator("iframe.mp-frame")
    frame.get_by_role("button", name="Use my nickname").click()

    sheet = page.frame_locator("iframe.sheet-frame")
    expect(sheet.get_by_role("heading", level=1)).to_contain_text("Wealth Check-up")
    expect(sheet.get_by_text("See your nickname, avatar and preferred language")).to_be_visible()
    shoot(page, "consent-sheet")
    sheet.get_by_role("button", name="Allow", exact=True).click()
    expect(sheet.get_by_role("status")).to_contain_text("Allowed.")
    page.get_by_role("button", name="Close").click()
    expect(frame.locator("[data-status]")).to_have_text("Allowed. You can withdraw it under My authorisations.")

    page.goto("/me/authorisations?lang=en")
    grant = page.locator('section[data-plugin="wealth.checkup"] li[data-scope="profile.basic:read"]')
    expect(grant).to_be_visible()
    shoot(page, "my-authorisations")
    grant.get_by_role("button", name="Withdraw").click()
    # (after the redirect the page follows the customer's own language setting, Chinese)
    expect(page.get_by_role("status")).to_have_text(re.compile("Withdrawn. It takes effect at once.|已撤回，立即生效。"))
    expect(page.locator('section[data-plugin="wealth.checkup"]')).to_have_count(0)

    # Asked again, the mini-program no longer has it: the sheet comes back.
    page.goto(CHECKUP)
    frame.get_by_role("button", name="Use my nickname").click()
    expect(page.frame_locator("iframe.sheet-frame").get_by_role("button", name="Allow", exact=True)).to_be_visible()
