"""The pre-review runs after the submit has committed: claimed, run outside any write
transaction, recorded only by the runner that still holds the claim; in the submitting request
or in ``canopy worker``, and taken up again when a runner dies half way."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from host.config import ConfigError
from host.db import get_database, utcnow
from host.publishing import lifecycle, prereview, prereview_runs, services
from host.publishing.models import PackageVersion
from host.worker import Worker

from .conftest import PLUGIN


def uploaded(app, actors, package_zip, version: str = "1.0.0") -> None:
    """``sh.coupons`` ``version`` uploaded and submitted (the submit committed, nothing more)."""
    with app.app_context(), get_database(app).transaction(write=True) as session:
        services.upload(session, actors["sh.operator"], PLUGIN, package_zip(PLUGIN, version), services.package_store(app))
        services.submit(session, actors["sh.operator"], PLUGIN, version, reason="")


def row_of(app, version: str = "1.0.0") -> PackageVersion:
    with get_database(app).transaction() as session:
        row = lifecycle.find(session, PLUGIN, version)
        session.expunge(row)
        return row


def set_claim(app, until) -> None:
    with get_database(app).transaction(write=True) as session:
        session.execute(update(PackageVersion).where(PackageVersion.plugin_id == PLUGIN)
                        .values(prereview_claimed_until=until))


@pytest.fixture
def worker_app(app_factory, seed_demo):
    return seed_demo(app_factory(PREREVIEW_RUNS="worker"))


def test_a_submit_through_the_api_commits_before_the_pre_review_so_other_writers_go_on(
        demo_app, staff_client, package_zip, monkeypatch, sandbox_isolation):
    wrote = []
    real_run = prereview.run

    def run_while_someone_writes(session, row, **kwargs):
        # Another writer during the pre-review: it would wait for the request's write lock (and
        # fail after SQLite's busy timeout) if the request still held it.
        with get_database(demo_app).transaction(write=True) as other:
            other.execute(update(PackageVersion).where(PackageVersion.plugin_id == "nobody.else").values(size=0))
        wrote.append(row.status)
        return real_run(session, row, **kwargs)

    monkeypatch.setattr(prereview, "run", run_while_someone_writes)
    publisher = staff_client("sh.operator")
    assert publisher.post(f"/api/v1/publisher/plugins/{PLUGIN}/versions", data=package_zip(PLUGIN),
                          content_type="application/zip").status_code == 201
    response = publisher.post(f"/api/v1/publisher/plugins/{PLUGIN}/versions/1.0.0/submit", json={})

    assert response.status_code == 200 and response.get_json()["status"] == "pre_review"
    assert wrote == ["submitted"]  # the pre-review saw the submit committed
    row = row_of(demo_app)
    assert row.prereview["passed"] and row.prereview_claimed_until is None


def test_with_the_workers_the_submit_answers_at_once_and_a_worker_pass_runs_the_pre_review(
        worker_app, actors, package_zip, sandbox_isolation):
    uploaded(worker_app, actors, package_zip)
    with worker_app.app_context():
        prereview_runs.after_submit(worker_app, PLUGIN, "1.0.0")
    assert (row_of(worker_app).status, row_of(worker_app).prereview) == ("submitted", None)

    report = Worker(worker_app).run_pass()

    assert report.prereviewed == f"{PLUGIN} 1.0.0" and report.busy and not report.failures
    row = row_of(worker_app)
    assert row.status == "pre_review" and row.prereview["passed"]
    with worker_app.app_context(), get_database(worker_app).transaction() as session:
        history = [(h.action, h.actor) for h in lifecycle.history(session, lifecycle.find(session, PLUGIN, "1.0.0"))]
    assert history[-2:] == [("submit", "staff:sh.operator"), ("pass_precheck", "system:precheck")]
    assert Worker(worker_app).run_pass().prereviewed is None  # nothing left to take


def test_a_version_another_runner_holds_is_left_alone_until_its_claim_runs_out(
        worker_app, actors, package_zip, sandbox_isolation):
    uploaded(worker_app, actors, package_zip)
    set_claim(worker_app, utcnow() + timedelta(minutes=5))  # a runner (say, the request) is at it
    assert prereview_runs.run(worker_app) is None
    assert row_of(worker_app).status == "submitted"

    set_claim(worker_app, utcnow() - timedelta(seconds=1))  # that runner died half way
    assert prereview_runs.run(worker_app) == (PLUGIN, "1.0.0")
    assert row_of(worker_app).status == "pre_review"


def test_a_runner_whose_claim_passed_to_another_records_nothing(worker_app, actors, package_zip):
    uploaded(worker_app, actors, package_zip)
    database = get_database(worker_app)
    mine = utcnow() + timedelta(minutes=1)
    assert prereview_runs.claim(database, mine) == (PLUGIN, "1.0.0")
    set_claim(worker_app, utcnow() + timedelta(minutes=3))  # overran: another runner took it over
    failing = {"passed": False, "problems": ["tests: failed"], "warnings": []}

    prereview_runs._record(database, (PLUGIN, "1.0.0"), mine, failing)

    row = row_of(worker_app)
    assert (row.status, row.prereview) == ("submitted", None)


def test_two_runners_never_claim_the_same_version(worker_app, actors, package_zip):
    uploaded(worker_app, actors, package_zip)
    database = get_database(worker_app)
    until = utcnow() + timedelta(minutes=1)
    assert [prereview_runs.claim(database, until), prereview_runs.claim(database, until)] == [(PLUGIN, "1.0.0"), None]


def test_a_pre_review_that_fails_unexpectedly_leaves_the_submit_standing(demo_app, staff_client, package_zip,
                                                                          monkeypatch, caplog):
    def broken(session, row, **kwargs):
        raise OSError("the package store is unreachable")

    monkeypatch.setattr(prereview, "run", broken)
    publisher = staff_client("sh.operator")
    publisher.post(f"/api/v1/publisher/plugins/{PLUGIN}/versions", data=package_zip(PLUGIN), content_type="application/zip")
    response = publisher.post(f"/api/v1/publisher/plugins/{PLUGIN}/versions/1.0.0/submit", json={})

    assert response.status_code == 200 and response.get_json()["status"] == "submitted"
    assert "retried when its claim runs out" in caplog.text
    row = row_of(demo_app)
    assert row.prereview_claimed_until is not None and row.prereview_claimed_until > utcnow()  # the worker's retry waits


@pytest.mark.parametrize("value", ["later", "", "REQUEST ", 3])
def test_a_bad_setting_stops_the_start_naming_it(app_factory, value):
    if value == "REQUEST ":  # case and spaces are forgiven
        assert prereview_runs.mode({"PREREVIEW_RUNS": value}) == "request"
        return
    with pytest.raises(ConfigError, match="PREREVIEW_RUNS"):
        app_factory(PREREVIEW_RUNS=value)


def test_the_oldest_waiting_version_is_taken_first(worker_app, actors, package_zip):
    uploaded(worker_app, actors, package_zip, "1.0.0")
    uploaded(worker_app, actors, package_zip, "1.1.0")
    with get_database(worker_app).transaction(write=True) as session:  # 1.1.0 handed in earlier
        session.execute(update(PackageVersion).where(PackageVersion.version == "1.1.0")
                        .values(updated_at=utcnow() - timedelta(hours=1)))
    database = get_database(worker_app)
    until = utcnow() + timedelta(minutes=1)
    assert prereview_runs.claim(database, until) == (PLUGIN, "1.1.0")
    with database.transaction() as session:
        assert session.scalars(select(PackageVersion.version).where(
            PackageVersion.prereview_claimed_until.is_(None))).all() == ["1.0.0"]


def test_the_console_shows_a_pre_review_under_way_then_its_report(worker_app, actors, package_zip, sandbox_isolation):
    from host.identity.models import Staff

    uploaded(worker_app, actors, package_zip)
    client = worker_app.test_client()
    with get_database(worker_app).transaction() as session:
        staff_id = session.scalars(select(Staff.id).where(Staff.username == "sh.operator")).one()
    with client.session_transaction() as cookie:
        cookie["staff_id"] = staff_id
    page = f"/console/publishing/plugins/{PLUGIN}/versions/1.0.0"

    assert 'data-report="running"' in client.get(page).get_data(as_text=True)
    Worker(worker_app).run_pass()
    shown = client.get(page).get_data(as_text=True)
    assert 'data-report="running"' not in shown and 'data-passed="true"' in shown
