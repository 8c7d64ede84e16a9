"""The wealth check-up questionnaire, filled in and submitted in the browser."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

CHECKUP = "/?branch=SH001&lang=en"  # on the mini-program's own origin (docs/bridge.md)


def test_questionnaire_gives_an_allocation_that_sums_to_100(page, plugin_origin, shoot):
    page.goto(plugin_origin("wealth.checkup") + CHECKUP)
    questions = page.locator("fieldset.question")
    expect(questions).to_have_count(6)
    shoot(page, "wealth-checkup")
    for index in range(6):
        answer = questions.nth(index).get_by_role("radio").nth(1)
        answer.check()
        expect(answer).to_be_checked()
    page.get_by_role("button", name="See my result").click()
    expect(page).to_have_url(re.compile(re.escape(plugin_origin("wealth.checkup") + "/result?")))
    expect(page.locator("#level-heading")).not_to_be_empty()
    expect(page.get_by_role("heading", name="Suggested asset mix")).to_be_visible()
    percents = page.locator(".allocation .asset-percent")
    expect(percents.first).to_be_visible()
    values = [int(text.strip().rstrip("%")) for text in percents.all_inner_texts()]
    assert len(values) >= 2 and sum(values) == 100, values
    shoot(page, "wealth-checkup-result")
