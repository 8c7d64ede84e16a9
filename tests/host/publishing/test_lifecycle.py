"""The lifecycle of an uploaded version: random sequences of actions by random people against a
specification written here (not read from host.publishing.lifecycle), concurrent actions on one
version, and the table's own promises."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy import func, select

from host.audit import AuditEvent
from host.db import get_database, utcnow
from host.publishing import lifecycle, services
from host.publishing.errors import InvalidInput, NotAllowed, PublishingRefused, WrongState
from host.publishing.models import PackageVersion, PublisherNotification, VersionTransition

PLUGIN = "sh.lifecycle"

# -- the specification ---------------------------------------------------------------------------
#: (action, status before) → status after: every change there may be.
EDGES = {
    ("submit", "draft"): "submitted",
    ("pass_precheck", "submitted"): "pre_review",
    ("fail_precheck", "submitted"): "rejected",
    ("start_review", "pre_review"): "in_review",
    ("approve", "in_review"): "approved",
    ("reject", "in_review"): "rejected",
    ("start_gray", "approved"): "gray",
    ("widen", "gray"): "gray",
    ("release", "gray"): "released",
    ("supersede", "released"): "superseded",
    ("restore", "superseded"): "released",
    ("rollback", "gray"): "rolled_back",
    ("rollback", "released"): "rolled_back",
    ("suspend", "approved"): "suspended",
    ("suspend", "superseded"): "suspended",
    ("reinstate", "suspended"): "approved",
    ("retire", "draft"): "retired",
    ("retire", "approved"): "retired",
    ("retire", "superseded"): "retired",
    ("retire", "suspended"): "retired",
    ("retire", "rolled_back"): "retired",
}
SHANGHAI_PUBLISHERS = {"sh.admin", "sh.operator", "sh.reviewing-admin"}
REVIEWERS = {"hq.reviewer", "hq.reviewer2"}  # sh.reviewing-admin is a reviewer too, but publishes sh.*
#: Who may take each action on a Shanghai branch plugin.
WHO = {
    "submit": SHANGHAI_PUBLISHERS,
    "pass_precheck": {"system"},
    "fail_precheck": {"system"},
    "start_review": REVIEWERS,
    "approve": REVIEWERS,
    "reject": REVIEWERS,
    "start_gray": {"sh.admin", "sh.reviewing-admin", "hq.admin"},
    "widen": {"sh.admin", "sh.reviewing-admin", "hq.admin"},
    "release": {"sh.admin", "sh.reviewing-admin", "hq.admin"},
    "supersede": {"system"},
    "restore": {"system"},
    "rollback": {"sh.admin", "sh.reviewing-admin", "hq.admin", "system"},
    "suspend": {"hq.admin"},
    "reinstate": {"hq.admin"},
    "retire": {"sh.admin", "sh.reviewing-admin", "hq.admin"},
}
NEEDS_REASON = {"fail_precheck", "reject", "suspend", "reinstate", "rollback"}
REVIEW_ACTIONS = {"start_review", "approve", "reject"}
#: The statuses one after another on the way to suspension, and the step that leaves each.
PATH = ["draft", "submitted", "pre_review", "in_review", "approved", "gray", "released", "superseded", "suspended"]
ONWARD = {"draft": ("submit", "sh.operator"), "submitted": ("pass_precheck", "system"),
          "pre_review": ("start_review", "hq.reviewer"), "in_review": ("approve", "hq.reviewer2"),
          "approved": ("start_gray", "sh.admin"), "gray": ("release", "hq.admin"),
          "released": ("supersede", "system"), "superseded": ("suspend", "hq.admin")}
#: For each action, people who come close to being allowed (a wrong role, branch or organisation).
NEAR_MISSES = {
    "submit": ["bj.operator", "citypower", "hq.reviewer"],
    "pass_precheck": ["hq.admin", "hq.reviewer"], "fail_precheck": ["hq.admin", "hq.reviewer"],
    "start_review": ["sh.reviewing-admin", "hq.admin"], "approve": ["sh.reviewing-admin", "hq.admin"],
    "reject": ["sh.reviewing-admin", "hq.admin"], "suspend": ["hq.reviewer", "sh.admin"],
    "reinstate": ["hq.reviewer", "sh.admin"], "retire": ["sh.operator", "bj.operator", "citypower"],
    "start_gray": ["sh.operator", "bj.operator", "citypower", "hq.reviewer"],
    "widen": ["sh.operator", "bj.operator", "hq.reviewer"], "release": ["sh.operator", "bj.operator", "hq.reviewer"],
    "supersede": ["hq.admin", "sh.admin"], "restore": ["hq.admin", "sh.admin"],
    "rollback": ["sh.operator", "hq.reviewer", "citypower"],
}
ACTIONS = sorted(WHO) + ["publish", "upload"]  # two that are no actions of the table
REASONS = ["", "   ", "the pages match the description", "x" * 1001, "bad\x00reason"]


def allowed(action: str, actor: str, status: str, reason: str) -> bool:
    """What the specification says about one attempt."""
    good_reason = len(reason.strip()) <= 1000 and "\x00" not in reason and (action not in NEEDS_REASON or reason.strip())
    return actor in WHO.get(action, ()) and (action, status) in EDGES and bool(good_reason)


def upload_draft(app, actors, package_zip, version: str, uploader: str = "sh.operator") -> None:
    with app.app_context(), get_database(app).transaction(write=True) as session:
        services.upload(session, actors[uploader], PLUGIN, package_zip(PLUGIN, version), services.package_store(app))


def counts(session, version: str) -> dict[str, int]:
    row = session.scalar(select(PackageVersion).where(PackageVersion.plugin_id == PLUGIN, PackageVersion.version == version))
    return {
        "history": session.scalar(select(func.count()).select_from(VersionTransition).where(VersionTransition.version_pk == row.pk)),
        "audit": session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.subject == f"{PLUGIN}@{version}", AuditEvent.outcome == "success")),
        "notifications": session.scalar(select(func.count()).select_from(PublisherNotification).where(
            PublisherNotification.plugin_id == PLUGIN, PublisherNotification.version == version)),
    }


def test_random_actions_by_random_people_follow_the_table(app, actors, package_zip):
    database = get_database(app)
    serial = iter(range(10**6))

    class Lifecycle(RuleBasedStateMachine):
        """One version of a Shanghai branch plugin per example."""

        @initialize(uploader=st.sampled_from(sorted(SHANGHAI_PUBLISHERS)), goal=st.sampled_from(PATH))
        def upload(self, uploader, goal):
            self.goal = goal
            self.version = f"1.{next(serial)}.0"
            upload_draft(app, actors, package_zip, self.version, uploader)
            self.status, self.changes = "draft", 1
            self.uploader, self.submitter = actors[uploader].id, None

        @rule(data=st.data())
        def act(self, data):
            """Anything by anyone; many draws from what the specification allows now, and from
            the people most likely to be wrongly let through."""
            possible = sorted(name for (name, source) in EDGES if source == self.status) or ACTIONS
            action = data.draw(st.one_of(st.sampled_from(ACTIONS), st.sampled_from(possible)), label="action")
            actor = data.draw(st.one_of(st.sampled_from(sorted(actors)), st.sampled_from(sorted(WHO.get(action, actors))),
                                        st.sampled_from(NEAR_MISSES.get(action, ["sh.operator"]))), label="actor")
            reason = data.draw(st.one_of(st.sampled_from(REASONS), st.just("checked")), label="reason")
            self.attempt(action, actor, reason)

        @rule()
        def advance(self):
            """The next step along :data:`PATH` towards this example's goal, so that
            runs spend their steps in every status, not only the first few."""
            if self.status in PATH and PATH.index(self.status) < PATH.index(self.goal):
                action, actor = ONWARD[self.status]
                self.attempt(action, actor, "checked")

        def attempt(self, action: str, actor: str, reason: str) -> None:
            expected = allowed(action, actor, self.status, reason)
            with app.app_context():
                with database.transaction() as session:
                    before = counts(session, self.version)
                try:
                    with database.transaction(write=True) as session:
                        row = lifecycle.apply(session, actors[actor], PLUGIN, self.version, action, reason=reason)
                        status = row.status
                except PublishingRefused as exc:
                    assert not expected, f"{actor} {action} from {self.status} refused: {exc.reason}"
                    with database.transaction() as session:
                        assert counts(session, self.version) == before  # a refusal changes nothing
                        assert session.scalar(select(PackageVersion.status).where(
                            PackageVersion.plugin_id == PLUGIN, PackageVersion.version == self.version)) == self.status
                    return
            assert expected, f"{actor} could {action} from {self.status}"
            assert status == EDGES[(action, self.status)]
            self.status, self.changes = status, self.changes + 1
            if action == "submit":
                self.submitter = actors[actor].id

        @invariant()
        def every_change_has_one_history_row_one_audit_entry_and_one_notification(self):
            with app.app_context(), database.transaction() as session:
                assert counts(session, self.version) == {"history": self.changes, "audit": self.changes,
                                                         "notifications": self.changes}

        @invariant()
        def the_history_is_a_chain_of_allowed_changes_by_allowed_people(self):
            with app.app_context(), database.transaction() as session:
                row = session.scalar(select(PackageVersion).where(PackageVersion.plugin_id == PLUGIN,
                                                                  PackageVersion.version == self.version))
                rows = lifecycle.history(session, row)
            assert (rows[0].action, rows[0].from_status, rows[0].to_status) == ("upload", None, "draft")
            names = {actor.id: name for name, actor in actors.items()}
            for previous, entry in zip(rows, rows[1:]):
                assert entry.from_status == previous.to_status
                assert EDGES[(entry.action, entry.from_status)] == entry.to_status
                assert names[entry.actor] in WHO[entry.action]
                if entry.action in REVIEW_ACTIONS:  # a publisher never reviews its own
                    assert entry.actor not in (self.uploader, self.submitter)
                    assert names[entry.actor] not in SHANGHAI_PUBLISHERS
            assert rows[-1].to_status == row.status == self.status

    run_state_machine_as_test(Lifecycle, settings=settings(
        max_examples=50, stateful_step_count=25, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))


def test_the_specification_can_be_failed(app, actors, package_zip):
    """The model above is not a copy of the table: an attempt it forbids is refused by the host."""
    upload_draft(app, actors, package_zip, "0.1.0")
    with app.app_context(), pytest.raises(NotAllowed, match="another reviewer"):
        with get_database(app).transaction(write=True) as session:
            lifecycle.apply(session, actors["sh.operator"], PLUGIN, "0.1.0", "submit")
            lifecycle.apply(session, actors["system"], PLUGIN, "0.1.0", "pass_precheck")
            lifecycle.apply(session, actors["sh.reviewing-admin"], PLUGIN, "0.1.0", "start_review")
    assert not allowed("start_review", "sh.reviewing-admin", "pre_review", "")


def _race(app, n: int, attempt) -> list[str]:
    """Run ``attempt(session)`` in ``n`` threads at once, each in its own write transaction;
    return ``"ok"`` or the refusal's class name for each."""
    barrier, results = threading.Barrier(n), []

    def worker():
        barrier.wait()
        try:
            with app.app_context(), get_database(app).transaction(write=True) as session:
                attempt(session)
            results.append("ok")
        except PublishingRefused as exc:
            results.append(type(exc).__name__)

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_concurrent_submits_and_approvals_move_a_version_once(app, actors, package_zip):
    upload_draft(app, actors, package_zip, "2.0.0")
    results = _race(app, 4, lambda session: lifecycle.apply(session, actors["sh.admin"], PLUGIN, "2.0.0", "submit"))
    assert sorted(results) == ["WrongState"] * 3 + ["ok"]
    with app.app_context(), get_database(app).transaction(write=True) as session:
        lifecycle.apply(session, actors["system"], PLUGIN, "2.0.0", "pass_precheck")
        lifecycle.apply(session, actors["hq.reviewer"], PLUGIN, "2.0.0", "start_review")
    reviewers = iter(["hq.reviewer", "hq.reviewer2", "hq.reviewer", "hq.reviewer2"])
    lock = threading.Lock()

    def approve_or_reject(session):
        with lock:
            name = next(reviewers)
        action = "approve" if name == "hq.reviewer" else "reject"
        lifecycle.apply(session, actors[name], PLUGIN, "2.0.0", action, reason="decided")

    results = _race(app, 4, approve_or_reject)
    assert sorted(results) == ["WrongState"] * 3 + ["ok"]
    with app.app_context(), get_database(app).transaction() as session:
        row = lifecycle.find(session, PLUGIN, "2.0.0")
        actions = [entry.action for entry in lifecycle.history(session, row)]
        assert actions[:4] == ["upload", "submit", "pass_precheck", "start_review"] and len(actions) == 5
        assert row.status in ("approved", "rejected") and row.revision == 5


def test_a_refused_action_names_its_reason(app, actors, package_zip):
    upload_draft(app, actors, package_zip, "3.0.0")
    cases = [
        (actors["sh.operator"], "approve", "", NotAllowed, "hq_reviewer"),
        (actors["citypower"], "submit", "", NotAllowed, "you do not publish for branch:SH001"),
        (actors["bj.operator"], "submit", "", NotAllowed, "you do not publish for branch:SH001"),
        (actors["sh.operator"], "retire", "", NotAllowed, "branch_admin"),
        (actors["hq.reviewer"], "approve", "", WrongState, "is draft; approve starts from in_review"),
        (actors["hq.admin"], "suspend", "", InvalidInput, "needs a reason"),
        (actors["sh.admin"], "publish", "", InvalidInput, "must be one of"),
    ]
    for actor, action, reason, error, words in cases:
        with app.app_context(), pytest.raises(error, match=words):
            with get_database(app).transaction(write=True) as session:
                lifecycle.apply(session, actor, PLUGIN, "3.0.0", action, reason=reason)


def test_release_at_belongs_to_an_approval_in_the_future(app, actors, package_zip):
    upload_draft(app, actors, package_zip, "4.0.0")
    with app.app_context(), get_database(app).transaction(write=True) as session:
        for actor, action in (("sh.admin", "submit"), ("system", "pass_precheck"), ("hq.reviewer", "start_review")):
            lifecycle.apply(session, actors[actor], PLUGIN, "4.0.0", action)
    for when in (utcnow() - timedelta(minutes=1), utcnow().replace(tzinfo=None) + timedelta(days=1)):
        with app.app_context(), pytest.raises(InvalidInput, match="release_at"):
            with get_database(app).transaction(write=True) as session:
                lifecycle.apply(session, actors["hq.reviewer"], PLUGIN, "4.0.0", "approve", release_at=when)
    later = utcnow() + timedelta(days=2)
    with app.app_context(), get_database(app).transaction(write=True) as session:
        row = lifecycle.apply(session, actors["hq.reviewer2"], PLUGIN, "4.0.0", "approve", release_at=later)
        assert row.status == "approved" and row.release_at == later and row.reviewed_by == "staff:hq.reviewer2"


def test_every_action_of_the_table_is_in_the_specification():
    assert set(lifecycle.TRANSITIONS) == set(WHO)
    for action, transition in lifecycle.TRANSITIONS.items():
        reachable = {source for (name, source) in EDGES if name == action}
        assert reachable == transition.sources
        assert all(EDGES[(action, source)] == transition.target for source in reachable)
