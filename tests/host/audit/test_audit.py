"""host.audit: one append-only row per event (UTC, who, what, where, outcome), never a secret."""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError

from host import audit
from host.audit import DENIED, FAILURE, SUCCESS, AuditEvent, SecretInAudit
from host.audit.models import AppendOnly
from host.db import get_database
from host.demo import CUSTOMERS

PHONE, PASSWORD = CUSTOMERS[0][:2]
TOKEN_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def events(app) -> list[AuditEvent]:
    with get_database(app).transaction() as session:
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def record_one(app, **overrides) -> AuditEvent:
    fields = {"action": "consent.granted", "outcome": SUCCESS, "actor": "staff-1", "subject": "customer-1", "plugin_id": "sh.deals",
              "branch": "SH001", "detail": {"scopes": ["profile"], "reason": "granted"}}
    with app.app_context():
        audit.record(**{**fields, **overrides})
    return events(app)[-1]


# --- writing ------------------------------------------------------------------------------


def test_record_writes_one_row_with_everything_given(app):
    before = datetime.now(timezone.utc)
    event = record_one(app)
    after = datetime.now(timezone.utc)
    assert len(events(app)) == 1
    assert (event.action, event.outcome, event.actor, event.subject, event.plugin_id, event.branch) == (
        "consent.granted", SUCCESS, "staff-1", "customer-1", "sh.deals", "SH001")
    assert event.detail == {"scopes": ["profile"], "reason": "granted"}
    assert isinstance(event.id, int)
    assert event.at.utcoffset() == timedelta(0)  # UTC
    assert before <= event.at <= after


def test_outside_a_request_there_is_no_request_id_or_address(app):
    event = record_one(app)
    assert (event.request_id, event.ip) == (None, None)


def test_in_a_request_the_request_id_and_address_are_kept(app):
    context = app.test_request_context("/", headers={"X-Request-Id": "req-42_ok"}, environ_base={"REMOTE_ADDR": "2001:db8::7"})
    with context:
        app.preprocess_request()  # assigns the request id, as a real request does
        audit.record("customer.sign_in", outcome=FAILURE)
    [event] = events(app)
    assert (event.request_id, event.ip) == ("req-42_ok", "2001:db8::7")


def test_the_minimum_is_an_action_and_an_outcome(app):
    with app.app_context():
        audit.record("staff.sign_out", outcome=SUCCESS)
    [event] = events(app)
    assert (event.actor, event.subject, event.plugin_id, event.branch, event.detail) == (None, None, None, None, {})


def test_rows_keep_their_order(app):
    with app.app_context():
        for n in range(5):
            audit.record(f"step.{n}", outcome=SUCCESS)
    assert [event.action for event in events(app)] == [f"step.{n}" for n in range(5)]


def test_the_detail_is_copied_not_kept(app):
    detail = {"scopes": ["profile"]}
    with app.app_context():
        audit.record("consent.granted", outcome=SUCCESS, detail=detail)
    detail["extra"] = "later"
    assert events(app)[0].detail == {"scopes": ["profile"]}


def test_long_values_are_cut_to_fit_not_refused(app):
    # An audited failure often carries hostile input; the row must still be written.
    event = record_one(app, action="a" * 500, outcome="o" * 100, actor="b" * 500, subject="c" * 500,
                       plugin_id="p" * 500, branch="B" * 500)
    assert (len(event.action), len(event.outcome), len(event.actor), len(event.subject)) == (64, 16, 128, 128)
    assert (len(event.plugin_id), len(event.branch)) == (64, 16)


def test_characters_no_database_stores_are_replaced_not_refused(app):
    event = record_one(app, actor="staff\x00-1", plugin_id="sh.deals\x00", branch="SH\x00001", subject="\ud800x")
    assert (event.actor, event.plugin_id, event.branch, event.subject) == ("staff\ufffd-1", "sh.deals\ufffd", "SH\ufffd001", "?x")


def test_empty_names_are_stored_as_none(app):
    event = record_one(app, actor="", subject="", plugin_id="", branch="")
    assert (event.actor, event.subject, event.plugin_id, event.branch) == (None, None, None, None)


def test_every_event_is_logged_too(app, caplog):
    caplog.set_level(logging.INFO, logger="canopy.audit")
    record_one(app)
    [entry] = [r for r in caplog.records if r.name == "canopy.audit"]
    assert entry.getMessage() == "consent.granted success"
    assert (entry.audit_action, entry.outcome, entry.actor, entry.plugin, entry.branch) == (
        "consent.granted", SUCCESS, "staff-1", "sh.deals", "SH001")


def test_outcomes():
    assert (SUCCESS, FAILURE, DENIED) == ("success", "failure", "denied")


# --- no secrets ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["password", "new_password", "Password", "PASSWORD_HASH", "pin", "payment_pin", "PIN", "token", "access_token",
     "refresh_token", "id_token", "secret", "client_secret", "key", "private_key", "api_key", "card", "card_number",
     "assertion", "client_assertion", "code_verifier"],
)
def test_details_that_name_a_secret_are_refused(app, key):
    with app.app_context(), pytest.raises(SecretInAudit, match=key):
        audit.record("customer.sign_in", outcome=FAILURE, detail={key: "s3cr3t"})
    assert events(app) == []  # nothing half-written


def test_secret_in_audit_is_a_value_error():
    assert issubclass(SecretInAudit, ValueError)


def test_harmless_details_are_kept(app):
    detail = {"login": "138******01", "locked": True, "scopes": ["profile", "accounts:read"], "attempt": 3,
              "branch": "SH001", "nested": {"reason": "expired"}}
    event = record_one(app, detail=detail)
    assert event.detail == detail


# --- append-only --------------------------------------------------------------------------


def test_the_orm_refuses_to_change_an_event(app):
    record_one(app)
    with pytest.raises(AppendOnly):
        with get_database(app).transaction(write=True) as session:
            session.scalars(select(AuditEvent)).one().outcome = FAILURE
    assert events(app)[0].outcome == SUCCESS


def test_the_orm_refuses_to_delete_an_event(app):
    record_one(app)
    with pytest.raises(AppendOnly):
        with get_database(app).transaction(write=True) as session:
            session.delete(session.scalars(select(AuditEvent)).one())
    assert len(events(app)) == 1


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET outcome = 'success'",
        "UPDATE audit_events SET detail = '{}' WHERE id = (SELECT min(id) FROM audit_events)",
        "DELETE FROM audit_events",
        "DELETE FROM audit_events WHERE outcome = 'failure'",
    ],
)
def test_the_database_refuses_raw_updates_and_deletes(app, statement):
    record_one(app, outcome=FAILURE)
    with pytest.raises(DBAPIError, match="append-only"):
        with get_database(app).engine.begin() as connection:
            connection.execute(text(statement))
    [event] = events(app)
    assert (event.outcome, event.detail) == (FAILURE, {"scopes": ["profile"], "reason": "granted"})


def test_the_database_refuses_bulk_orm_statements_that_skip_the_orm_events(app):
    record_one(app, outcome=FAILURE)
    with pytest.raises(DBAPIError, match="append-only"):
        with get_database(app).transaction(write=True) as session:
            session.execute(update(AuditEvent).values(outcome=SUCCESS))
    with pytest.raises(DBAPIError, match="append-only"):
        with get_database(app).transaction(write=True) as session:
            session.execute(delete(AuditEvent))
    assert [event.outcome for event in events(app)] == [FAILURE]


def test_appending_still_works_after_a_refusal(app):
    record_one(app)
    with pytest.raises(DBAPIError):
        with get_database(app).engine.begin() as connection:
            connection.execute(text("DELETE FROM audit_events"))
    record_one(app)
    assert len(events(app)) == 2


def test_record_keeps_the_event_when_the_callers_work_rolls_back(app):
    with app.app_context(), pytest.raises(RuntimeError):
        with get_database(app).transaction() as session:
            session.execute(text("SELECT 1"))
            audit.record("payment.refused", outcome=DENIED)
            raise RuntimeError("the caller's work fails")
    assert [event.action for event in events(app)] == ["payment.refused"]


# --- through the sign-in page -------------------------------------------------------------


def _sign_in(client, password: str, **options):
    token = TOKEN_FIELD.search(client.get("/signin").get_data(as_text=True)).group(1)
    return client.post("/signin", data={"csrf_token": token, "phone": PHONE, "password": password}, **options)


def test_a_failed_sign_in_is_audited_though_the_sign_in_fails(client, demo_app):
    response = _sign_in(client, "wrong", headers={"X-Request-Id": "signin-1"}, environ_base={"REMOTE_ADDR": "198.51.100.9"})
    assert response.status_code == 401
    [event] = events(demo_app)
    assert (event.action, event.outcome) == ("customer.sign_in", FAILURE)
    assert (event.request_id, event.ip) == ("signin-1", "198.51.100.9")
    assert event.actor is not None
    assert event.detail == {"login": PHONE[:3] + "******" + PHONE[-2:], "locked": False}


def test_a_successful_sign_in_is_audited(client, demo_app):
    assert _sign_in(client, PASSWORD).status_code == 303
    [event] = events(demo_app)
    assert (event.action, event.outcome, event.ip) == ("customer.sign_in", SUCCESS, "127.0.0.1")
    assert event.request_id


def test_no_password_in_the_audit_log_of_the_sign_in_page(client, demo_app, caplog):
    caplog.set_level(logging.DEBUG)
    _sign_in(client, PASSWORD)
    _sign_in(client, "Zq-wrong-Password-9")
    written = repr([(e.action, e.outcome, e.actor, e.subject, e.ip, e.request_id, e.detail) for e in events(demo_app)])
    for secret in (PASSWORD, "Zq-wrong-Password-9"):
        assert secret not in written
        assert secret not in caplog.text


@pytest.mark.parametrize("key", ["shipping", "keyboard", "keys", "pinned_at", "tokenizer_name"])
def test_detail_keys_that_only_contain_a_secret_word_are_allowed(key):
    from host.audit import _check_detail

    assert _check_detail({key: 1}) == {key: 1}


@pytest.mark.parametrize("key", ["pin", "new_pin", "apiKey", "access-token", "password_hash", "code_verifier", "cardNumber"])
def test_detail_keys_naming_a_secret_word_are_refused(key):
    from host.audit import SecretInAudit, _check_detail

    with pytest.raises(SecretInAudit):
        _check_detail({key: 1})
