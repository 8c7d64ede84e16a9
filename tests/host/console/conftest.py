"""Fixtures of the staff console tests: the demo app, staff sessions, CSRF tokens, rows and the audit log.

With ``--import-mode=importlib`` test modules cannot import this file, so helpers are fixtures.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from host.audit import AuditEvent
from host.db import get_database
from host.identity.models import Staff

TOKEN_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def signed_in(demo_app):
    """``signed_in(username)``: a test client with that demo staff member's session (None: nobody)."""

    def make(username: str | None):
        client = demo_app.test_client()
        if username is not None:
            with get_database(demo_app).transaction() as session:
                staff_id = session.scalars(select(Staff.id).where(Staff.username == username)).one()
            with client.session_transaction() as cookie:
                cookie["staff_id"] = staff_id
        return client

    return make


@pytest.fixture
def signed_in_english(signed_in):
    """``signed_in_english(username, locale="en")``: :func:`signed_in`'s client with the language
    cookie set (pages whose words are asserted in the source language; a test may ask for another)."""

    def make(username: str | None, locale: str = "en"):
        client = signed_in(username)
        client.set_cookie("canopy_lang", locale)
        return client

    return make


@pytest.fixture
def token():
    """``token(client)``: the client's CSRF token (set in its session)."""

    def make(client) -> str:
        with client.session_transaction() as cookie:
            cookie.setdefault("csrf_token", "test-csrf-token-0123456789")
            return cookie["csrf_token"]

    return make


@pytest.fixture
def post(token):
    """``post(client, path, **form)``: a form post carrying the client's CSRF token."""

    def send(client, path: str, data: dict | None = None, **headers):
        form = {"csrf_token": token(client), **(data or {})}
        return client.post(path, data=form, headers=headers or None)

    return send


@pytest.fixture
def rows(demo_app):
    """``rows(Model, **where)``: the rows of ``Model`` now, as the database holds them."""

    def read(model, **where):
        with get_database(demo_app).transaction() as session:
            return list(session.scalars(select(model).filter_by(**where)))

    return read


@pytest.fixture
def audit_log(demo_app):
    """``audit_log(prefix="storefront.")``: audit events whose action starts with ``prefix``, oldest first."""

    def read(prefix: str = "storefront.") -> list[AuditEvent]:
        with get_database(demo_app).transaction() as session:
            return list(session.scalars(select(AuditEvent).where(AuditEvent.action.startswith(prefix))
                                        .order_by(AuditEvent.id)))

    return read
