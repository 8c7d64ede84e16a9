"""A branch's storefront in a real browser: one zone per mini-program that may run there."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

STOREFRONT = "/s/SH001?lang=en"


def test_storefront_has_a_zone_per_installed_miniprogram(page, shoot):
    page.goto(STOREFRONT)
    zones = page.locator("section.zone[data-plugin]")
    expect(zones).to_have_count(3)
    assert zones.evaluate_all("zones => zones.map(zone => zone.dataset.plugin)") == [
        "wealth.checkup", "sh.deals", "city.utilities"]  # the demo's grid order
    for plugin in ("wealth.checkup", "sh.deals", "city.utilities"):  # city.utilities: a partner's, in the sandbox
        expect(page.locator(f'section.zone[data-plugin="{plugin}"]')).to_be_visible()
    expect(page.locator(".zone-unavailable")).to_have_count(0)
    shoot(page, "storefront-SH001")


def test_a_zone_opens_its_miniprogram(page, live_server, shoot):
    page.goto(STOREFRONT)
    page.locator('[data-plugin="sh.deals"] h2 a').click()
    expect(page).to_have_url(live_server("/mp/sh.deals/?branch=SH001&lang=en"))  # the shell
    expect(page.frame_locator("iframe.mp-frame").get_by_role("heading", level=1)).to_have_text("Shanghai neighbourhood deals")
    shoot(page, "storefront-SH001-to-sh-deals")
