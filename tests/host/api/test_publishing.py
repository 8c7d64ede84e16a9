"""``/api/v1/publisher`` and ``/api/v1/review``: uploads (and every hostile one), who may do what,
reviews, history, notifications, and the audit of refusals."""

from __future__ import annotations

import io
import os
import stat
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import select

from host.audit import AuditEvent
from host.db import get_database
from host.problems import PROBLEM_JSON
from host.publishing.models import PackageVersion

ZIP = "application/zip"
UPLOAD = "/api/v1/publisher/plugins/{}/versions"


def upload(client, data: bytes, plugin_id: str = "sh.coupons", **kwargs):
    return client.post(UPLOAD.format(plugin_id), data=data, content_type=ZIP, **kwargs)


def act(client, plugin_id: str, version: str, action: str, **body):
    prefix = "publisher" if action in ("submit", "retire") else "review"
    return client.post(f"/api/v1/{prefix}/plugins/{plugin_id}/versions/{version}/{action}", json=body)


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM_JSON
    return response.get_json()


def versions(app, plugin_id: str) -> list[PackageVersion]:
    with app.app_context(), get_database(app).transaction() as session:
        return list(session.scalars(select(PackageVersion).where(PackageVersion.plugin_id == plugin_id)))


# -- uploads -------------------------------------------------------------------------------------


def test_a_branch_uploads_a_draft_and_the_same_files_again_are_the_same_version(demo_app, staff_client, package_zip):
    client = staff_client("sh.operator")
    first = upload(client, package_zip())
    assert first.status_code == 201, first.get_json()
    body = first.get_json()
    assert (body["status"], body["uploaded_by"], body["publisher"]) == ("draft", "staff:sh.operator",
                                                                          {"kind": "branch", "id": "SH001"})
    assert body["checksum"].startswith("sha256:") and body["actions"] == ["submit"]
    assert first.headers["Location"] == "/api/v1/publisher/plugins/sh.coupons/versions/1.0.0"
    assert [h["action"] for h in body["history"]] == ["upload"]
    stored = Path(demo_app.instance_path) / "packages" / "sh.coupons" / "1.0.0"
    assert (stored / "plugin.toml").is_file() and stat.S_IMODE((stored / "main.py").stat().st_mode) == 0o444
    again = upload(client, package_zip())
    assert again.status_code == 200 and again.get_json()["checksum"] == body["checksum"]
    assert len(versions(demo_app, "sh.coupons")) == 1


def test_a_version_never_changes(demo_app, staff_client, package_zip):
    client = staff_client("sh.admin")
    assert upload(client, package_zip()).status_code == 201
    changed = package_zip(files={"templates/index.html": "<h1>other</h1>"})
    assert "new version number" in problem(upload(client, changed), 409)["detail"]
    # a version the registry holds (the bundled sh.deals 1.2.0) with other files
    registered = package_zip("sh.deals", "1.2.0")
    assert "new version number" in problem(upload(client, registered, "sh.deals"), 409)["detail"]
    assert [v.checksum for v in versions(demo_app, "sh.coupons")] == [upload(client, package_zip()).get_json()["checksum"]]


def test_a_package_may_be_larger_than_other_request_bodies(demo_app, staff_client, package_zip):
    picture = os.urandom(1536 * 1024)  # does not compress: the archive is larger than MAX_CONTENT_LENGTH
    data = package_zip(files={"static/photo.png": picture})
    assert demo_app.config["MAX_CONTENT_LENGTH"] < len(data) < 5 * 1024 * 1024
    response = upload(staff_client("sh.operator"), data)
    assert response.status_code == 201, response.get_json()


class _Spy(io.BytesIO):
    """A request body that records whether anything read it."""

    touched = False

    def read(self, *args):
        _Spy.touched = True
        return super().read(*args)


def test_an_oversized_body_is_refused_before_it_is_read(staff_client):
    client = staff_client("sh.operator")
    _Spy.touched = False
    body = _Spy(b"PK" + b"\0" * 100)
    response = client.post(UPLOAD.format("sh.coupons"), input_stream=body, content_type=ZIP,
                           environ_overrides={"CONTENT_LENGTH": str(5 * 1024 * 1024 + 1)})
    assert "at most 5,242,880 bytes" in problem(response, 413)["detail"]
    assert not _Spy.touched


def _zip(entries: dict[str, bytes | str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        for name, data in entries.items():
            out.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize(("make", "status", "words"), [
    (lambda z: b"not a zip at all", 422, "not a readable zip archive"),
    (lambda z: _zip({"plugin.toml": "x", "../evil.py": "x"}), 422, "'..'"),
    (lambda z: _zip({"/etc/evil.py": "x"}), 422, "absolute paths"),
    (lambda z: z("sh.other"), 422, "is not the plugin of this address"),
    (lambda z: z(publisher="BJ001"), 403, "you do not publish for branch:BJ001"),
    (lambda z: z(kind="partner", publisher="CITYPOWER"), 403, "you do not publish for partner:CITYPOWER"),
    (lambda z: z(kind="bank", publisher="HQ"), 403, "you do not publish for bank:HQ"),
    (lambda z: z(files={"run.sh": "rm -rf /"}), 422, "this type of file is not accepted"),
])
def test_hostile_or_wrong_uploads_are_refused_with_the_reason(demo_app, staff_client, package_zip, make, status, words):
    response = upload(staff_client("sh.operator"), make(package_zip))
    assert words in problem(response, status)["detail"]
    assert versions(demo_app, "sh.coupons") == [] and versions(demo_app, "sh.other") == []


def test_an_upload_must_be_a_zip_from_a_signed_in_publisher_with_the_csrf_token(staff_client, package_zip):
    assert problem(staff_client("sh.operator").post(UPLOAD.format("sh.coupons"), data=package_zip(),
                                                    content_type="application/octet-stream"), 415)
    assert problem(upload(staff_client(None), package_zip()), 401)
    assert "X-CSRF-Token" in problem(upload(staff_client("sh.operator", csrf=False), package_zip()), 403)["detail"]
    assert problem(upload(staff_client("hq.reviewer"), package_zip()), 403)


def test_a_branch_cannot_publish_into_another_branchs_or_a_partners_id(demo_app, staff_client, package_zip):
    beijing = staff_client("bj.operator")
    taken = problem(upload(beijing, package_zip("sh.deals", "9.0.0", publisher="BJ001"), "sh.deals"), 403)
    assert "belongs to another publisher" in taken["detail"]
    partners = problem(upload(beijing, package_zip("city.utilities", "9.0.0", publisher="BJ001"), "city.utilities"), 403)
    assert "belongs to another publisher" in partners["detail"]
    with demo_app.app_context(), get_database(demo_app).transaction() as session:
        denied = session.scalars(select(AuditEvent).where(AuditEvent.action == "publishing.upload")).all()
    assert [(e.outcome, e.actor, e.plugin_id) for e in denied] == [("denied", "staff:bj.operator", "sh.deals"),
                                                                   ("denied", "staff:bj.operator", "city.utilities")]


def test_a_branch_publishes_a_new_version_of_its_own_plugin(demo_app, staff_client, package_zip):
    response = upload(staff_client("sh.admin"), package_zip("sh.deals", "1.3.0"), "sh.deals")
    assert response.status_code == 201 and response.get_json()["status"] == "draft"


# -- partners ------------------------------------------------------------------------------------


def test_a_partner_back_end_publishes_for_its_organisation_only(publishing_app, partner_back_end, package_zip,
                                                                sandbox_isolation):
    partner = partner_back_end()
    own = partner.open("POST", UPLOAD.format("cp.bills"), data=package_zip("cp.bills", kind="partner", publisher="CITYPOWER"),
                       content_type=ZIP)
    assert own.status_code == 201 and own.get_json()["uploaded_by"] == "client:cp.publisher"
    other_org = partner.open("POST", UPLOAD.format("xy.bills"), data=package_zip("xy.bills", kind="partner", publisher="OTHER"),
                             content_type=ZIP)
    assert "partner:OTHER" in problem(other_org, 403)["detail"]
    branch_id = partner.open("POST", UPLOAD.format("sh.deals"),
                             data=package_zip("sh.deals", "9.0.0", kind="partner", publisher="CITYPOWER"), content_type=ZIP)
    assert "belongs to another publisher" in problem(branch_id, 403)["detail"]
    submitted = partner.open("POST", "/api/v1/publisher/plugins/cp.bills/versions/1.0.0/submit")
    assert submitted.status_code == 200 and submitted.get_json()["status"] == "pre_review"
    # a partner never reviews: not even with its token on the review endpoints
    approve = partner.open("POST", "/api/v1/review/plugins/cp.bills/versions/1.0.0/approve", json={})
    assert problem(approve, 403)["detail"] == "Reviews are head office's: use a staff session."
    listed = partner.open("GET", "/api/v1/publisher/notifications")
    assert [n["action"] for n in listed.get_json()["items"]] == ["upload", "submit", "pass_precheck"]


def test_publishing_needs_the_plugins_publish_scope(publishing_app, partner_back_end, package_zip):
    partner = partner_back_end(scope="client:manage")
    response = partner.open("POST", UPLOAD.format("cp.bills"), content_type=ZIP,
                            data=package_zip("cp.bills", kind="partner", publisher="CITYPOWER"))
    assert response.status_code == 403 and response.get_json()["error"] == "insufficient_scope"


# -- the review ----------------------------------------------------------------------------------


def submitted(staff_client, package_zip, version="1.0.0", **kwargs) -> None:
    publisher = staff_client("sh.operator")
    assert upload(publisher, package_zip(version=version, **kwargs)).status_code == 201
    response = act(publisher, "sh.coupons", version, "submit")
    assert response.status_code == 200, response.get_json()


def test_a_version_goes_through_review_and_its_publisher_hears_of_every_step(staff_client, package_zip, sandbox_isolation):
    submitted(staff_client, package_zip)
    reviewer = staff_client("hq.reviewer")
    queue = reviewer.get("/api/v1/review/versions").get_json()
    assert [(v["plugin_id"], v["status"], v["actions"]) for v in queue["items"]] == [
        ("sh.coupons", "pre_review", ["start_review"])]
    assert act(reviewer, "sh.coupons", "1.0.0", "start_review").status_code == 200
    approved = act(reviewer, "sh.coupons", "1.0.0", "approve", reason="pages and scopes checked",
                   release_at="2099-01-01T08:00:00+08:00")
    body = approved.get_json()
    assert (body["status"], body["reviewed_by"], body["release_at"]) == ("approved", "staff:hq.reviewer",
                                                                         "2099-01-01T00:00:00+00:00")
    assert [(h["action"], h["from_status"], h["to_status"]) for h in body["history"]] == [
        ("upload", None, "draft"), ("submit", "draft", "submitted"), ("pass_precheck", "submitted", "pre_review"),
        ("start_review", "pre_review", "in_review"), ("approve", "in_review", "approved")]
    notes = staff_client("sh.admin").get("/api/v1/publisher/notifications").get_json()["items"]
    assert notes[-1]["message"] == "sh.coupons 1.0.0 was approved: pages and scopes checked"
    assert staff_client("bj.operator").get("/api/v1/publisher/notifications").get_json()["items"] == []
    after = staff_client("sh.admin").get(f"/api/v1/publisher/notifications?after={notes[-2]['id']}").get_json()
    assert [n["action"] for n in after["items"]] == ["approve"]


@pytest.mark.parametrize(("username", "action", "status"), [
    ("sh.operator", "approve", 403), ("sh.admin", "approve", 403), ("hq.admin", "approve", 403),
    ("sh.operator", "start_review", 403), ("hq.reviewer", "suspend", 403), ("sh.operator", "retire", 403),
    ("hq.reviewer", "approve", 409), ("hq.reviewer", "reject", 409), ("bj.operator", "retire", 403),
])
def test_who_may_not(staff_client, package_zip, demo_app, username, action, status, sandbox_isolation):
    submitted(staff_client, package_zip)
    response = act(staff_client(username), "sh.coupons", "1.0.0", action, reason="because")
    problem(response, status)
    assert [v.status for v in versions(demo_app, "sh.coupons")] == ["pre_review"]


def test_a_rejection_needs_a_reason_and_is_final(staff_client, package_zip, sandbox_isolation):
    submitted(staff_client, package_zip)
    reviewer = staff_client("hq.reviewer")
    act(reviewer, "sh.coupons", "1.0.0", "start_review")
    assert problem(act(reviewer, "sh.coupons", "1.0.0", "reject"), 422)["errors"] == {
        "reason": ["say why: this action needs a reason"]}
    assert problem(act(reviewer, "sh.coupons", "1.0.0", "approve", release_at="2020-01-01T00:00:00Z"), 422)["errors"]
    assert problem(act(reviewer, "sh.coupons", "1.0.0", "approve", colour="red"), 422)["errors"] == {
        "colour": ["Unknown field."]}
    assert act(reviewer, "sh.coupons", "1.0.0", "reject", reason="asks for the phone number without need").status_code == 200
    assert problem(act(staff_client("hq.admin"), "sh.coupons", "1.0.0", "retire"), 409)


def test_the_pre_review_rejects_unknown_scopes_and_older_versions(staff_client, package_zip, sandbox_isolation):
    publisher = staff_client("sh.operator")
    assert upload(publisher, package_zip(version="0.9.0", scopes=["teleport:use"])).status_code == 201
    rejected = act(publisher, "sh.coupons", "0.9.0", "submit").get_json()
    assert (rejected["status"], rejected["status_reason"]) == (
        "rejected", "scopes: scope 'teleport:use' is not in the scope catalog")
    submitted(staff_client, package_zip, "2.0.0")
    reviewer = staff_client("hq.reviewer")
    act(reviewer, "sh.coupons", "2.0.0", "start_review")
    act(reviewer, "sh.coupons", "2.0.0", "approve")
    assert upload(publisher, package_zip(version="1.5.0")).status_code == 201
    older = act(publisher, "sh.coupons", "1.5.0", "submit").get_json()
    assert older["status_reason"] == "integrity: version 1.5.0 is not newer than 2.0.0, approved already"


def test_the_reviewer_sees_the_pre_review_report(staff_client, package_zip, sandbox_isolation):
    publisher = staff_client("sh.operator")
    draft = upload(publisher, package_zip(scopes=["payments:read", "profile.phone:read"])).get_json()
    assert draft["prereview"] is None
    assert act(publisher, "sh.coupons", "1.0.0", "submit").get_json()["status"] == "pre_review"
    reviewer = staff_client("hq.reviewer")
    [queued] = reviewer.get("/api/v1/review/versions").get_json()["items"]
    report = reviewer.get("/api/v1/publisher/plugins/sh.coupons/versions/1.0.0").get_json()["prereview"]
    assert queued["prereview"] == report
    assert report["passed"] is True and report["problems"] == []
    assert [(c["hook"], c["path"], c["result"]) for c in report["smoke"]["calls"]] == [
        ("canopy_storefront_tiles", None, "not_implemented"), ("canopy_page", "/", "ok")]
    assert [(a["scope"], a["sensitivity"], a["flagged"]) for a in report["scopes"]["added"]] == [
        ("payments:read", "low", False), ("profile.phone:read", "high", True)]
    assert "scopes: adds 'profile.phone:read', of high sensitivity: See your mobile phone number" in report["warnings"]
    assert report["tests"] == {"outcome": "not_run", "found": False, "findings": [],
                               "reason": "the package has no tests/ folder"}


def test_a_rejected_version_shows_its_publisher_why(staff_client, package_zip, sandbox_isolation):
    publisher = staff_client("sh.operator")
    code = b"from canopy_sdk import Page, hookimpl\n\n\nclass P:\n    @hookimpl\n    def canopy_page(self, ctx, path, query):\n" \
           b"        return Page(title='x', template='gone.html')\n\n\nplugin = P()\n"
    assert upload(publisher, package_zip(files={"main.py": code})).status_code == 201
    body = act(publisher, "sh.coupons", "1.0.0", "submit").get_json()
    assert body["status"] == "rejected" and body["prereview"]["passed"] is False
    assert body["prereview"]["problems"][0] == "manifest: main.py refers to template 'gone.html', which templates/ does not hold"
    assert body["status_reason"].startswith("manifest: main.py refers to template 'gone.html'")
    assert [c["result"] for c in body["prereview"]["smoke"]["calls"]] == ["not_implemented", "error"]


def test_versions_are_seen_by_their_publisher_and_head_office_only(staff_client, package_zip, sandbox_isolation):
    submitted(staff_client, package_zip)
    path = "/api/v1/publisher/plugins/sh.coupons/versions"
    for username, status in (("sh.admin", 200), ("hq.reviewer", 200), ("hq.admin", 200), ("bj.operator", 403)):
        assert staff_client(username).get(path).status_code == status
        assert staff_client(username).get(f"{path}/1.0.0").status_code == status
    assert staff_client("sh.admin").get(f"{path}/9.9.9").status_code == 404
    assert staff_client("sh.admin").get("/api/v1/publisher/plugins/NOT%20AN%20ID/versions").status_code == 404
    assert staff_client("sh.admin").get(f"{path}/1.0.0%00").status_code == 404
    assert problem(staff_client("sh.admin").get("/api/v1/review/versions"), 403)


def test_the_csrf_token_for_the_header(staff_client):
    client = staff_client("sh.admin", csrf=False)
    body = client.get("/api/v1/staff/csrf-token").get_json()
    assert body == {"csrf_token": "test-csrf-token-0123456789", "header": "X-CSRF-Token"}
    assert problem(staff_client(None).get("/api/v1/staff/csrf-token"), 401)


@pytest.mark.parametrize("query", ["after=-1", "after=x", "after=²", "after=١٢", "limit=0", "limit=501", "after=" + "9" * 30])
def test_a_bad_notifications_query_is_422_not_500(staff_client, query):
    problem(staff_client("sh.admin").get(f"/api/v1/publisher/notifications?{query}"), 422)
