"""city.utilities, a partner mini-program, in the shell of a real browser (docs/bridge.md).

Its pages are served on its own origin without the customer, so the customer's accounts and
bills come from its API through the bridge (``canopy.fetch``). The customer links an
electricity account, sees the bill, pays it on the bank's sheet with the PIN and sees it paid
once the bank's ``payment_intent.succeeded`` event reached the plugin — whose code runs in the
sandbox (docs/sandbox.md), never in the server's process.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import tomllib
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PLUGINS
from tests.live import canopy

pytestmark = pytest.mark.e2e

PLUGIN = "city.utilities"
FOLDER = PLUGINS / "city_utilities"
CITY = f"/mp/{PLUGIN}/?branch=SH001&lang=en"
PIN = "147258"  # the payment PIN of 13800000001 (host/demo.py)
ACCOUNT = "310012345678"  # an electricity account number: 8 to 12 digits (accounts.py)


def _billing():
    """The plugin's simulated billing back end (standard library only), to know the bill to expect."""
    spec = importlib.util.spec_from_file_location("city_utilities_billing", FOLDER / "billing.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # its dataclasses look their module up
    spec.loader.exec_module(sys.modules[spec.name])
    return sys.modules[spec.name]


def _frame(page, plugin_origin, heading: str):
    frame = page.frame_locator("iframe.mp-frame")
    expect(frame.get_by_role("heading", level=1)).to_have_text(heading)
    assert [f.url for f in page.frames if f.url.startswith(plugin_origin(PLUGIN))], [f.url for f in page.frames]
    return frame


def _descendants(pid: int) -> list[int]:
    """The processes started by ``pid``, their children and so on (Linux ``/proc``)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rpartition(")")[2].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # ended meanwhile
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _command_line(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def test_a_customer_links_an_account_and_pays_the_bill_on_the_banks_sheet(page, sign_in, plugin_origin, shoot):
    billing = _billing()
    bill = billing.monthly_bill("electricity", ACCOUNT, billing.billing_period(billing.shanghai_today()))

    sign_in(page, CITY)
    expect(page.locator(".shell-title h1")).to_have_text("City Utilities")
    frame = _frame(page, plugin_origin, "City utilities")
    # The page was rendered without the customer; the bridge brought them to the API.
    expect(frame.locator("[data-sign-in-notice]")).to_have_count(0)
    frame.get_by_role("link", name="Link an account").click()

    frame = _frame(page, plugin_origin, "Link an account")
    number = frame.get_by_label("Account number")
    expect(number).to_be_enabled()
    frame.get_by_label("Utility").select_option("electricity")
    number.fill(ACCOUNT)
    frame.get_by_role("button", name="Link", exact=True).click()
    linked = frame.locator("[data-statement=accounts] li")
    expect(linked).to_have_count(1)
    expect(linked).to_contain_text(f"Electricity · {ACCOUNT}")
    expect(linked.get_by_role("button", name="Unlink")).to_be_visible()

    frame.get_by_role("link", name="Bills", exact=True).click()
    frame = _frame(page, plugin_origin, "Bills due")
    card = frame.locator(f"article#bill-{bill.id}")
    expect(card.locator("[data-field=amount_display]")).to_have_text(billing.format_amount(bill.amount))
    expect(card.locator("[data-field=account_no]")).to_have_text(ACCOUNT)
    expect(card.locator("[data-field=usage]")).to_have_text(str(bill.usage))
    expect(frame.locator(".summary strong")).to_have_text(billing.format_amount(bill.amount))
    expect(card.locator("[data-paid]")).to_have_count(0)
    shoot(page, "shell-city-utilities-bills")

    card.get_by_role("button", name="Pay", exact=True).click()
    # The bank's sheet: above the frame, on the host's origin.
    sheet = page.frame_locator("iframe.sheet-frame")
    expect(page.locator(".sheet")).to_be_visible()
    expect(sheet.get_by_role("heading", name="Confirm payment")).to_be_visible()
    expect(sheet.locator("body")).to_contain_text(f"{bill.amount // 100:,}.{bill.amount % 100:02d} CNY")
    shoot(page, "shell-city-utilities-payment-sheet")
    sheet.get_by_label("Payment PIN").fill(PIN)
    sheet.get_by_role("button", name=re.compile("^Pay")).click()
    # A browser the bank has not seen: the risk centre asks to check and enter the PIN again.
    acknowledge = sheet.locator("input[name=acknowledge]")
    expect(acknowledge.or_(sheet.locator("section.payment[data-state=succeeded]"))).to_be_visible()
    if acknowledge.count():
        acknowledge.check()
        sheet.locator("input[name=pin]").fill(PIN)
        sheet.locator("button[type=submit]").click()
    expect(sheet.locator("section.payment")).to_have_attribute("data-state", "succeeded")
    page.get_by_role("button", name="Close").click()
    expect(page.locator(".sheet")).to_be_hidden()

    # Marked paid by the plugin once the bank's event reached it; nothing left to pay.
    expect(card.locator("[data-paid]")).to_have_text(re.compile(r"^Paid · \d{4}-\d{2}-\d{2}$"))
    expect(card.get_by_role("button", name="Pay")).to_have_count(0)
    expect(frame.locator(".summary strong")).to_have_text(billing.format_amount(0))
    shoot(page, "shell-city-utilities-paid")

    # Kept by the plugin's back end: the overview, loaded afresh, says so too.
    frame.get_by_role("link", name="Overview").click()
    frame = _frame(page, plugin_origin, "City utilities")
    row = frame.locator("[data-statement=overview] li", has_text=ACCOUNT[-4:])
    expect(row.locator("strong")).to_have_text("Paid")
    expect(frame.locator(".total .amount")).to_have_text(billing.format_amount(0))


def test_the_page_offers_sign_in_when_the_customer_is_not_signed_in(page, plugin_origin):
    page.goto(f"/mp/{PLUGIN}/bills?branch=SH001&lang=en")
    frame = _frame(page, plugin_origin, "Bills due")
    # canopy.fetch could not log in: the page stays as rendered, inviting to sign in.
    expect(frame.locator("[data-sign-in-notice]")).to_have_text("Sign in to link your accounts and see your bills.")
    expect(frame.locator("[data-load-status]")).to_be_hidden()
    expect(frame.locator("[data-statement=bills] article")).to_have_count(0)


def test_it_runs_in_the_sandbox_not_in_the_server(live_server):
    version = tomllib.loads((FOLDER / "plugin.toml").read_text())["version"]
    listed = json.loads(canopy("plugins", "list", "--json", env=live_server.env, cwd=live_server.cwd).stdout)
    [row] = [row for row in listed if row["id"] == PLUGIN]
    assert (row["publisher"], row["version"], row["state"], row["loaded"]) == ("partner:CITYPOWER", version, "active", True)
    # The server's processes run the plugin's code in bubblewrap jails holding its folder (and
    # nothing else of the server) at /plugin; without a jail a partner plugin is refused.
    folder = str(FOLDER.resolve())
    jails = [pid for pid in _descendants(live_server.process.pid)
             if Path(_command_line(pid)[0]).name == "bwrap"
             and any(args == ["--ro-bind", folder, "/plugin"] for args in _pairs(_command_line(pid)))]
    assert jails, "no bubblewrap jail of city.utilities among the server's processes"


def _pairs(command: list[str]) -> list[list[str]]:
    return [command[i:i + 3] for i in range(len(command) - 2)]
