"""The console and the storefront together in a real browser: head office reorders a branch's
icon grid and a customer sees the new order at once; an operator of another branch is refused."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from host.demo import DEMO_PASSWORD

pytestmark = pytest.mark.e2e

BRANCH = "SH001-PD"  # wealth.checkup and sh.deals installed; only head office may order its grid


@pytest.fixture
def desk(browser, live_server):
    """A member of staff's browser: a desktop-sized window (the console is an office tool)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US", base_url=live_server.url)
    yield context.new_page()
    context.close()


def _staff_sign_in(page, live_server, username: str, next: str) -> None:
    page.goto(f"/staff/signin?lang=en&next={next}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(live_server(next))


def _zones(page) -> list[str]:
    return page.locator("section.zone[data-plugin]").evaluate_all("zones => zones.map(z => z.dataset.plugin)")


def _order(page, positions: dict[str, int]) -> None:
    for plugin_id, position in positions.items():
        page.locator(f'input[name="position.{plugin_id}"]').fill(str(position))
    page.get_by_role("button", name="Save the order").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")


def test_head_office_reorders_the_grid_and_the_customer_sees_it(live_server, page, desk, shoot):
    shopper, page = page, desk
    shopper.goto(f"/s/{BRANCH}?lang=en")
    before = _zones(shopper)
    assert sorted(before) == ["sh.deals", "wealth.checkup"]
    try:
        _staff_sign_in(page, live_server, "hq.admin", f"/console/branches/{BRANCH}")
        shoot(page, "console-branch-grid")
        _order(page, {before[0]: 20, before[1]: 10})
        shoot(page, "console-branch-grid-saved")

        shopper.reload()
        assert _zones(shopper) == before[::-1]  # the very next request
        shoot(shopper, "storefront-reordered")
    finally:
        page.goto(f"/console/branches/{BRANCH}?lang=en")
        _order(page, {before[0]: 10, before[1]: 20})  # other tests share this server


def test_an_operator_of_another_branch_is_refused(desk, live_server, shoot):
    page = desk
    _staff_sign_in(page, live_server, "bj.operator", "/console/branches/BJ001")
    response = page.goto("/console/branches/SH001?lang=en")
    assert response.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    shoot(page, "console-refused")
    # Nor can a hand-made form change it: the same check refuses before anything is read.
    status = page.evaluate("""async () => {
        const form = new URLSearchParams({"position.sh.deals": "0"});
        const answer = await fetch("/console/branches/SH001/grid", {method: "POST", body: form});
        return answer.status;
    }""")
    assert status in (400, 403)  # no CSRF token (400) or no right (403): refused either way
