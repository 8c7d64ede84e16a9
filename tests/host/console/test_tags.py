"""The staff console's customer tags: listing a branch's tags and a tag's customers, adding and
removing tags, who may do it, and bad input.

Demo: 林小姐 (13800000001) is a customer of SH001 tagged ``wealth``; Wang Fang (13900000002) of
BJ001, untagged. sh.operator and sh.admin work at SH001, bj.operator at BJ001.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from host.db import get_database
from host.identity.models import Customer
from host.storefront.models import CustomerTag, StorefrontSlot

LIN = "13800000001"  # SH001, tagged wealth
WANG = "13900000002"  # BJ001


@pytest.fixture
def customer_id(demo_app):
    """``customer_id(phone)``: the id of the customer with that mobile number."""

    def find(phone: str) -> str:
        with get_database(demo_app).transaction() as session:
            return session.scalars(select(Customer.id).where(Customer.phone == phone)).one()

    return find


@pytest.fixture
def new_customer(demo_app):
    """``new_customer(phone, branch)``: add a customer (who never signs in) and return their id."""

    def add(phone: str, branch: str = "SH001") -> str:
        with get_database(demo_app).transaction(write=True) as session:
            customer = Customer(phone=phone, password_hash="-", nickname=f"Customer {phone[-4:]}", branch_code=branch)
            session.add(customer)
            session.flush()
            return customer.id

    return add


def tags_of(rows, customer: str) -> list[str]:
    return sorted(row.tag for row in rows(CustomerTag, customer_id=customer))


def tag_rows(rows) -> list[tuple[str, str]]:
    return sorted((row.customer_id, row.tag) for row in rows(CustomerTag))


# -- pages and who may open them --------------------------------------------------------------------


@pytest.mark.parametrize(("username", "target"), [("sh.operator", "/console/branches/SH001/tags"),
                                                  ("sh.admin", "/console/branches/SH001/tags"),
                                                  ("bj.operator", "/console/branches/BJ001/tags")])
def test_branch_staff_go_to_their_own_branchs_tags(signed_in, username, target):
    response = signed_in(username).get("/console/tags")
    assert response.status_code == 303 and response.headers["Location"] == target


@pytest.mark.parametrize("username", ["hq.admin", "hq.reviewer"])
def test_head_office_sees_every_branchs_tags_with_counts(signed_in, username):
    html = signed_in(username).get("/console/tags?lang=en").get_data(as_text=True)
    for code in ("HQ", "SH001", "BJ001", "GZ001", "SH001-PD"):
        assert f'data-branch="{code}"' in html
    assert '<a href="/console/branches/SH001/tags?tag=wealth" data-tag="wealth">wealth</a> (1)' in html


def test_anonymous_visitors_go_to_the_staff_sign_in(signed_in):
    for path in ("/console/tags", "/console/branches/SH001/tags"):
        response = signed_in(None).get(path)
        assert response.status_code == 303 and response.headers["Location"].startswith("/staff/signin?next=")


@pytest.mark.parametrize(
    ("username", "path", "status"),
    [
        ("sh.operator", "/console/branches/SH001/tags", 200), ("sh.operator", "/console/branches/BJ001/tags", 403),
        ("bj.operator", "/console/branches/SH001/tags?tag=wealth", 403), ("sh.operator", "/console/branches/SH001-PD/tags", 403),
        ("hq.reviewer", "/console/branches/GZ001/tags", 200), ("hq.admin", "/console/branches/BJ001/tags", 200),
        ("hq.admin", "/console/branches/NOWHERE/tags", 404), ("hq.admin", "/console/branches/SH001%00/tags", 404),
    ],
)
def test_who_may_open_which_tags_page(signed_in, username, path, status):
    assert signed_in(username).get(path).status_code == status


def test_the_console_links_to_the_tags_pages(signed_in):
    for username, path in (("sh.operator", "/console/branches/SH001"), ("hq.admin", "/console"),
                           ("hq.admin", "/console/rights")):
        assert 'href="/console/tags"' in signed_in(username).get(path).get_data(as_text=True)
    page = signed_in("sh.operator").get("/console/branches/SH001").get_data(as_text=True)
    assert 'href="/console/branches/SH001/tags"' in page


def test_a_branchs_page_lists_its_tags_and_a_tags_customers_with_masked_numbers(signed_in, customer_id):
    client = signed_in("sh.operator")
    html = client.get("/console/branches/SH001/tags?lang=en").get_data(as_text=True)
    assert 'data-tag="wealth"' in html and "Tag a customer" in html
    html = client.get("/console/branches/SH001/tags?tag=wealth&lang=en").get_data(as_text=True)
    assert f'data-customer="{customer_id(LIN)}"' in html
    assert "138****0001" in html and LIN not in html  # the full number is never listed
    assert f'data-customer="{customer_id(WANG)}"' not in html
    # BJ001's page has no customer tagged wealth: the tag is only listed because a bank-wide banner targets it
    html = signed_in("bj.operator").get("/console/branches/BJ001/tags?tag=wealth&lang=en").get_data(as_text=True)
    assert "No customer of this branch carries this tag." in html
    assert f'data-customer="{customer_id(LIN)}"' not in html


def test_reviewers_read_without_forms(signed_in):
    html = signed_in("hq.reviewer").get("/console/branches/SH001/tags?tag=wealth&lang=en").get_data(as_text=True)
    assert "138****0001" in html and "csrf_token" not in html and "data-read-only" in html


def test_a_long_list_says_how_many_it_shows(signed_in, new_customer, post, monkeypatch):
    from host.storefront import tags

    client = signed_in("hq.admin")
    for number in range(3):
        new_customer(f"1370000000{number}")
        assert post(client, "/console/branches/SH001/tags", {"tag": "wealth", "customer": f"1370000000{number}"}).status_code == 303
    monkeypatch.setattr(tags, "LIST_LIMIT", 2)
    html = client.get("/console/branches/SH001/tags?tag=wealth&lang=en").get_data(as_text=True)
    assert "The first 2 of 4, by mobile number." in html and html.count("data-customer=") == 2


# -- adding and removing --------------------------------------------------------------------------


def test_an_operator_tags_a_customer_by_mobile_number_and_the_targeted_banner_shows(demo_app, signed_in, post, rows,
                                                                                    audit_log, customer_id):
    lin = customer_id(LIN)
    with get_database(demo_app).transaction(write=True) as session:
        session.add(StorefrontSlot(kind="banner", branch_code="SH001", title_zh="贵宾专享", title_en="For our VIPs",
                                   tags=["vip"], updated_by="test"))
    shopper = demo_app.test_client()
    with shopper.session_transaction() as cookie:
        cookie["customer_id"] = lin
    assert "For our VIPs" not in shopper.get("/s/SH001?lang=en").get_data(as_text=True)

    response = post(signed_in("sh.operator"), "/console/branches/SH001/tags", {"tag": "vip", "customer": " 138 0000 0001 "})
    assert response.status_code == 303
    assert response.headers["Location"] == "/console/branches/SH001/tags?tag=vip&saved=added"
    assert tags_of(rows, lin) == ["vip", "wealth"]
    assert "For our VIPs" in shopper.get("/s/SH001?lang=en").get_data(as_text=True)
    entry = audit_log()[-1]
    assert (entry.action, entry.outcome, entry.actor, entry.branch, entry.subject, entry.detail) == (
        "storefront.customer_tag_added", "success", "sh.operator", "SH001", f"customer:{lin}", {"tag": "vip"})
    assert LIN not in str(entry.detail)  # the number is not written to the audit log
    page = signed_in("sh.operator").get(response.headers["Location"] + "&lang=en").get_data(as_text=True)
    assert "Tag added." in page and f'data-customer="{lin}"' in page


def test_a_customer_is_also_named_by_id_and_a_branch_admin_may_tag(signed_in, post, rows, customer_id):
    lin = customer_id(LIN)
    assert post(signed_in("sh.admin"), "/console/branches/SH001/tags", {"tag": "new-customer", "customer": lin.upper()}).status_code == 303
    assert tags_of(rows, lin) == ["new-customer", "wealth"]


def test_head_office_tags_a_customer_of_any_branch(signed_in, post, rows, customer_id):
    assert post(signed_in("hq.admin"), "/console/branches/BJ001/tags", {"tag": "wealth", "customer": WANG}).status_code == 303
    assert tags_of(rows, customer_id(WANG)) == ["wealth"]


def test_an_operator_removes_a_tag_audited(signed_in, post, rows, audit_log, customer_id):
    lin = customer_id(LIN)
    response = post(signed_in("sh.operator"), "/console/branches/SH001/tags/remove", {"tag": "wealth", "customer": lin})
    assert response.status_code == 303
    assert response.headers["Location"] == "/console/branches/SH001/tags?tag=wealth&saved=removed"
    assert tags_of(rows, lin) == []
    entry = audit_log()[-1]
    assert (entry.action, entry.outcome, entry.subject, entry.detail) == (
        "storefront.customer_tag_removed", "success", f"customer:{lin}", {"tag": "wealth"})


def test_adding_a_tag_the_customer_carries_is_a_422_and_writes_nothing(signed_in, post, rows, audit_log):
    before = tag_rows(rows)
    response = post(signed_in("sh.operator"), "/console/branches/SH001/tags?lang=en", {"tag": "wealth", "customer": LIN})
    assert response.status_code == 422
    assert "this customer carries this tag already" in response.get_data(as_text=True)
    assert tag_rows(rows) == before
    assert (audit_log()[-1].action, audit_log()[-1].outcome) == ("storefront.customer_tag_added", "failure")


def test_removing_a_tag_the_customer_does_not_carry_is_a_422(signed_in, post, rows, customer_id):
    before = tag_rows(rows)
    response = post(signed_in("sh.operator"), "/console/branches/SH001/tags/remove?lang=en",
                    {"tag": "vip", "customer": customer_id(LIN)})
    assert response.status_code == 422 and 'data-field="tag"' in response.get_data(as_text=True)
    assert tag_rows(rows) == before


BAD_TAGS = ["", "   ", "Wealth", "x" * 33, "a" * 5000, "<script>alert(1)</script>", "wealth\x00", "wea\nlth",
            "-wealth", "high net worth", "财富", "wealth;drop table customer_tags", "ｗｅａｌｔｈ"]


@pytest.mark.parametrize("tag", BAD_TAGS)
def test_a_bad_tag_name_is_a_422_naming_the_field_and_nothing_is_written(signed_in, post, rows, audit_log, tag):
    before = tag_rows(rows)
    response = post(signed_in("sh.operator"), "/console/branches/SH001/tags?lang=en", {"tag": tag, "customer": LIN})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'data-field="tag"' in html and "tags are lower-case letters, digits and &#39;-&#39;, up to 32 each" in html
    assert "<script>alert(1)" not in html
    assert tag_rows(rows) == before
    entry = audit_log()[-1]
    assert (entry.action, entry.outcome, entry.detail) == ("storefront.customer_tag_added", "failure", {"fields": ["tag"]})


def test_a_missing_tag_field_is_a_422(signed_in, post, rows):
    before = tag_rows(rows)
    response = post(signed_in("sh.operator"), "/console/branches/SH001/tags", {"customer": LIN}, Accept="application/json")
    assert response.status_code == 422 and set(response.get_json()["errors"]) == {"tag"}
    assert tag_rows(rows) == before


@pytest.mark.parametrize(
    ("customer", "message"),
    [
        (None, "is required"), ("", "is required"), ("13700000000", "no customer of branch SH001"),
        ("0" * 32, "no customer of branch SH001"), ("' OR 1=1 --", "must be a mobile number"),
        ("1" * 5000, "must be a mobile number"), ("138000000012345678901", "must be a mobile number"),
        ("<b>13800000001</b>", "must be a mobile number"), ("1380000\x000001", "must be a mobile number"),
        (WANG, "no customer of branch SH001"),  # BJ001's: to SH001's operator, no customer at all
    ],
)
def test_an_unknown_or_malformed_customer_is_a_422(signed_in, post, rows, customer, message):
    before = tag_rows(rows)
    form = {"tag": "vip"} if customer is None else {"tag": "vip", "customer": customer}
    for path in ("/console/branches/SH001/tags?lang=en", "/console/branches/SH001/tags/remove?lang=en"):
        response = post(signed_in("sh.operator"), path, form)
        html = response.get_data(as_text=True)
        assert response.status_code == 422 and 'data-field="customer"' in html and message in html
        assert "BJ001" not in html.split("<main>")[1]  # nothing tells that the number is BJ001's
    assert tag_rows(rows) == before


def test_head_office_is_told_which_branch_a_customer_belongs_to(signed_in, post, rows):
    before = tag_rows(rows)
    response = post(signed_in("hq.admin"), "/console/branches/SH001/tags?lang=en", {"tag": "vip", "customer": WANG})
    assert response.status_code == 422
    assert "this customer belongs to branch BJ001; change their tags there" in response.get_data(as_text=True)
    assert tag_rows(rows) == before


def test_a_failed_form_is_shown_again_as_typed_escaped_and_in_chinese(signed_in, post):
    response = post(signed_in("sh.operator"), "/console/branches/SH001/tags?lang=zh-CN",
                    {"tag": '"><script>x</script>', "customer": '"><i>x'})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "<script>x" not in html and "<i>x" not in html
    assert 'value="&#34;&gt;&lt;script&gt;x&lt;/script&gt;"' in html
    assert "标签由小写字母、数字和“-”组成，每个最多 32 位" in html
    assert "须为手机号" in html


@pytest.mark.parametrize(
    ("username", "branch"),
    [("bj.operator", "SH001"), ("sh.operator", "BJ001"), ("sh.operator", "SH001-PD"), ("sh.admin", "GZ001"),
     ("hq.reviewer", "SH001")],
)
def test_staff_are_refused_other_branchs_customers_audited(signed_in, post, rows, audit_log, customer_id, username, branch):
    before = tag_rows(rows)
    client = signed_in(username)
    for path, form in (("/console/branches/%s/tags", {"tag": "vip", "customer": LIN}),
                       ("/console/branches/%s/tags/remove", {"tag": "wealth", "customer": customer_id(LIN)})):
        response = post(client, path % branch + "?lang=en", form, Accept="application/json")
        assert response.status_code == 403 and response.get_json()["title"] == "Not allowed"
        entry = audit_log()[-1]
        assert (entry.action, entry.outcome, entry.actor, entry.branch) == ("storefront.tags", "denied", username, branch)
    assert tag_rows(rows) == before
    page = post(client, f"/console/branches/{branch}/tags?lang=en", {"tag": "vip", "customer": LIN})
    assert page.status_code == 403 and "<h1>" in page.get_data(as_text=True)  # browsers get the 403 page


def test_an_operator_of_another_branch_is_told_why(signed_in, post):
    response = post(signed_in("bj.operator"), "/console/branches/SH001/tags?lang=en", {"tag": "vip", "customer": LIN},
                    Accept="application/json")
    assert "tags of your own branch's customers (BJ001) only" in response.get_json()["detail"]


@pytest.mark.parametrize("path", ["/console/branches/SH001/tags", "/console/branches/SH001/tags/remove"])
def test_every_tags_form_needs_the_csrf_token(signed_in, rows, audit_log, customer_id, path):
    before = tag_rows(rows)
    client = signed_in("hq.admin")
    for form in ({}, {"csrf_token": "forged"}, {"csrf_token": ""}):
        response = client.post(path, data={**form, "tag": "vip", "customer": customer_id(LIN)})
        assert response.status_code == 400
    assert tag_rows(rows) == before and audit_log() == []


def test_oversized_forms_are_refused_without_a_500(signed_in, post, rows):
    before = tag_rows(rows)
    response = post(signed_in("hq.admin"), "/console/branches/SH001/tags", {"tag": "x" * 3_000_000, "customer": LIN})
    assert response.status_code in (413, 422)
    assert tag_rows(rows) == before


@pytest.mark.parametrize("tag", ["Wealth", "<script>alert(1)</script>", "x" * 5000, "a\x00"])
def test_a_bad_tag_to_list_is_explained_not_reflected(signed_in, tag):
    response = signed_in("sh.operator").get("/console/branches/SH001/tags", query_string={"tag": tag, "lang": "en"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and 'data-field="tag"' in html
    assert "<script>alert(1)" not in html and "x" * 100 not in html


def test_a_customer_carries_at_most_so_many_tags(signed_in, post, rows, customer_id, monkeypatch):
    from host.storefront import tags

    monkeypatch.setattr(tags, "MAX_TAGS_PER_CUSTOMER", 2)
    client = signed_in("sh.operator")
    assert post(client, "/console/branches/SH001/tags", {"tag": "vip", "customer": LIN}).status_code == 303
    response = post(client, "/console/branches/SH001/tags?lang=en", {"tag": "young", "customer": LIN})
    assert response.status_code == 422 and "the most there may be" in response.get_data(as_text=True)
    assert tags_of(rows, customer_id(LIN)) == ["vip", "wealth"]


# -- at the same moment ------------------------------------------------------------------------------


def _at_once(demo_app, token, count: int, path: str, form: dict, username: str = "sh.operator") -> list[int]:
    """``count`` staff sessions post ``form`` to ``path`` at the same moment; their statuses."""
    from host.identity.models import Staff

    with get_database(demo_app).transaction() as session:
        staff_id = session.scalars(select(Staff.id).where(Staff.username == username)).one()
    clients = []
    for _ in range(count):
        client = demo_app.test_client()
        with client.session_transaction() as cookie:
            cookie["staff_id"] = staff_id
        clients.append(client)
    start = threading.Barrier(count)
    statuses: list[int] = []
    errors: list[BaseException] = []

    def send(client) -> None:
        data = {"csrf_token": token(client), **form}
        start.wait()
        try:
            statuses.append(client.post(path, data=data).status_code)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return sorted(statuses)


def test_the_same_tag_added_at_once_is_added_once(demo_app, token, rows, audit_log, customer_id):
    statuses = _at_once(demo_app, token, 4, "/console/branches/SH001/tags", {"tag": "vip", "customer": LIN})
    assert statuses == [303, 422, 422, 422]
    assert tags_of(rows, customer_id(LIN)) == ["vip", "wealth"]
    added = [e for e in audit_log() if e.action == "storefront.customer_tag_added"]
    assert sorted(e.outcome for e in added) == ["failure", "failure", "failure", "success"]


def test_the_same_tag_removed_at_once_is_removed_once(demo_app, token, rows, customer_id):
    lin = customer_id(LIN)
    statuses = _at_once(demo_app, token, 3, "/console/branches/SH001/tags/remove", {"tag": "wealth", "customer": lin})
    assert statuses == [303, 422, 422]
    assert tags_of(rows, lin) == []


def test_a_duplicate_that_slips_past_every_check_is_still_no_error(signed_in, post, rows, customer_id, monkeypatch):
    """The database's answer to a duplicate is read, not trusted to an earlier look: with the tag
    written by "another request" just before the insert, the answer is a 422, not a 409 or 500."""
    from host.storefront import tags

    real = tags._insert_once

    def racing(session, customer, tag):
        session.add(CustomerTag(customer_id=customer, tag=tag))  # the other request's row
        session.flush()
        return real(session, customer, tag)

    monkeypatch.setattr(tags, "_insert_once", racing)
    response = post(signed_in("sh.operator"), "/console/branches/SH001/tags?lang=en", {"tag": "vip", "customer": LIN})
    assert response.status_code == 422 and "carries this tag already" in response.get_data(as_text=True)
    assert tags_of(rows, customer_id(LIN)) == ["wealth"]  # the failed change wrote nothing, the racing row included
