"""Fixtures of the identity tests: the demo app in context, people's rows, the audit log."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from host.audit import AuditEvent
from host.db import get_database

TOKEN_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def in_app(demo_app):
    """The demo app with an app context pushed (the services need one)."""
    with demo_app.app_context():
        yield demo_app


@pytest.fixture
def row(demo_app):
    """``row(Customer, phone=...)``: one row as the database holds it now."""

    def read(model, **where):
        with get_database(demo_app).transaction() as session:
            return session.scalars(select(model).filter_by(**where)).one()

    return read


@pytest.fixture
def change(demo_app):
    """``change(Customer, {"phone": ...}, locked_until=...)``: set columns directly in the database."""

    def write(model, where: dict, **values):
        with get_database(demo_app).transaction(write=True) as session:
            found = session.scalars(select(model).filter_by(**where)).one()
            for name, value in values.items():
                setattr(found, name, value)

    return write


@pytest.fixture
def audit_log(demo_app):
    """``audit_log(action=None)``: the audit events written so far, oldest first."""

    def read(action: str | None = None) -> list[AuditEvent]:
        query = select(AuditEvent).order_by(AuditEvent.id)
        if action is not None:
            query = query.where(AuditEvent.action == action)
        with get_database(demo_app).transaction() as session:
            return list(session.scalars(query))

    return read


@pytest.fixture
def form_token():
    """``form_token(client, path="/signin")``: the CSRF token from the form a page renders."""

    def fetch(client, path: str = "/signin") -> str:
        page = client.get(path)
        assert page.status_code == 200, page.status_code
        found = TOKEN_FIELD.search(page.get_data(as_text=True))
        assert found, "the page has no CSRF field"
        return found.group(1)

    return fetch


@pytest.fixture
def sign_in(form_token):
    """``sign_in(client, login, password, staff=False, developer=False, next=None)``: post the
    sign-in form as a browser does (token from the rendered form); return the response."""

    def post(client, login, password, *, staff: bool = False, developer: bool = False, next: str | None = None, **options):
        path, field = ("/staff/signin", "username") if staff else ("/developer/signin", "email") if developer else ("/signin", "phone")
        data = {"csrf_token": form_token(client, path), field: login, "password": password}
        if next is not None:
            data["next"] = next
        return client.post(path, data=data, **options)

    return post


@pytest.fixture
def site(app_factory, seed_demo):
    """The demo app with a few pages of its own that use the session and CSRF helpers."""
    from flask import jsonify

    from host.identity import csrf
    from host.identity.models import StaffRole
    from host.identity.sessions import current_customer, current_staff, login_customer_required, staff_required

    app = app_factory()

    @app.get("/t/whoami")
    def whoami():
        customer, staff = current_customer(), current_staff()
        return jsonify(customer=customer.phone if customer else None, staff=staff.username if staff else None)

    @app.get("/t/statement")
    @login_customer_required
    def statement():
        return f"statement of {current_customer().phone}"

    @app.get("/t/review")
    @staff_required(StaffRole.HQ_ADMIN, StaffRole.HQ_REVIEWER)
    def review():
        return f"review by {current_staff().username}"

    @app.get("/t/any-staff")
    @staff_required()
    def any_staff():
        return f"hello {current_staff().username}"

    @app.route("/t/form", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    def form():
        return "ok"

    @app.post("/t/exempt")
    @csrf.exempt
    def exempt():
        return "ok"

    return seed_demo(app)
