"""Publishing in the staff console: uploading through the form (and every refusal), a version's
page with its pre-review report, history and the viewer's actions, reviews, who may see and do
what, the review queue and the publisher's notifications.

Demo staff: sh.operator and sh.admin publish Shanghai's (SH001) mini-programs, bj.operator
Beijing's; hq.reviewer reviews; hq.admin publishes the bank's and suspends, reinstates, retires.
"""

from __future__ import annotations

import html
import io
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import pytest

from host.publishing.models import PackageVersion
from host.publishing.packages import Limits

UPLOAD = "/console/publishing/upload"
PAGE = "/console/publishing/plugins/sh.coupons/versions/1.0.0"


def text(response) -> str:
    """The page as a reader sees it (entities decoded)."""
    return html.unescape(response.get_data(as_text=True))


def upload(post, client, data: bytes, name: str = "sh.coupons-1.0.0.zip"):
    return post(client, UPLOAD, {"package": (io.BytesIO(data), name)})


def act(post, client, action: str, version: str = "1.0.0", **form):
    return post(client, f"/console/publishing/plugins/sh.coupons/versions/{version}/{action}", form)


def stored(app, plugin_id: str = "sh.coupons") -> Path:
    return Path(app.instance_path) / "packages" / plugin_id


def status_of(rows, version: str = "1.0.0") -> str:
    [row] = rows(PackageVersion, plugin_id="sh.coupons", version=version)
    return row.status


@pytest.fixture
def signed_in(signed_in_english):
    """These pages are read in English (one test reads Chinese): see the console conftest."""
    return signed_in_english


@pytest.fixture
def draft(signed_in, post, package_zip):
    """``draft(version="1.0.0", **package)``: upload a version of sh.coupons as sh.operator."""

    def make(version: str = "1.0.0", **package):
        response = upload(post, signed_in("sh.operator"), package_zip(version=version, **package))
        assert response.status_code == 303, text(response)
        return response

    return make


@pytest.fixture
def in_review(draft, signed_in, post, sandbox_isolation):
    """sh.coupons 1.0.0 submitted by sh.operator (passing the pre-review) and taken by hq.reviewer."""
    draft()
    assert act(post, signed_in("sh.operator"), "submit").status_code == 303
    assert act(post, signed_in("hq.reviewer"), "start_review").status_code == 303


# -- uploading ------------------------------------------------------------------------------------


def test_a_branch_uploads_a_package_and_lands_on_its_draft(demo_app, signed_in, post, rows, package_zip):
    client = signed_in("sh.operator")
    response = upload(post, client, package_zip())
    assert response.status_code == 303
    assert response.headers["Location"] == f"{PAGE}?done=upload"
    [row] = rows(PackageVersion, plugin_id="sh.coupons")
    assert (row.version, row.status, row.uploaded_by) == ("1.0.0", "draft", "staff:sh.operator")
    assert (stored(demo_app) / "1.0.0" / "plugin.toml").is_file()

    page = text(client.get(response.headers["Location"]))
    assert 'data-status="draft"' in page and "Uploaded as a draft." in page
    assert 'data-action="submit"' in page and 'data-action="retire"' not in page  # operators do not retire
    assert 'data-action="approve"' not in page
    assert 'data-history="upload"' in page and 'data-report="none"' in page
    assert row.checksum in page and 'data-scopes=""' in page

    listing = text(client.get("/console/publishing"))
    assert 'data-plugin="sh.coupons"' in listing and 'data-version="1.0.0"' in listing
    assert f'<code title="{row.checksum}">{row.checksum[:19]}…</code>' in listing
    assert f'href="{PAGE}"' in listing

    again = upload(post, client, package_zip())
    assert again.headers["Location"] == f"{PAGE}?done=same"
    assert len(rows(PackageVersion, plugin_id="sh.coupons")) == 1


def _zip(entries: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        for name, data in entries.items():
            out.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize(("make", "status", "words"), [
    (lambda z: _zip({"plugin.toml": "x", "../evil.py": "x"}), 422, "'..'"),
    (lambda z: _zip({"/etc/evil.py": "x"}), 422, "absolute paths"),
    (lambda z: b"not a zip at all", 422, "not a readable zip archive"),
    (lambda z: z(files={"run.sh": "rm -rf /"}), 422, "this type of file is not accepted"),
    (lambda z: z(publisher="BJ001"), 403, "you do not publish for branch:BJ001"),
    (lambda z: z(kind="bank", publisher="HQ"), 403, "you do not publish for bank:HQ"),
    (lambda z: z("sh.deals", "9.0.0", publisher="BJ001"), 403, "you do not publish for branch:BJ001"),
])
def test_a_hostile_or_wrong_package_is_refused_on_the_form_and_nothing_is_stored(
        demo_app, signed_in, post, rows, audit_log, package_zip, make, status, words):
    response = upload(post, signed_in("sh.operator"), make(package_zip))
    assert response.status_code == status
    page = text(response)
    assert "Nothing was uploaded." in page and words in page and 'type="file"' in page
    assert rows(PackageVersion) == []
    assert not stored(demo_app).exists() and not stored(demo_app, "sh.deals").exists()
    refused = audit_log("publishing.upload")[-1]
    assert refused.outcome == ("denied" if status == 403 else "failure") and refused.actor == "staff:sh.operator"


def test_a_form_without_a_package_names_the_field(signed_in, post, rows):
    response = post(signed_in("sh.admin"), UPLOAD, {})
    assert response.status_code == 422
    assert 'data-field="package"' in text(response) and "choose the package" in text(response)
    assert rows(PackageVersion) == []


class _Spy(io.BytesIO):
    """A request body that records whether anything read it."""

    touched = False

    def read(self, *args):
        _Spy.touched = True
        return super().read(*args)

    readline = read


def test_an_oversized_upload_is_refused_before_it_is_read(demo_app, signed_in, rows):
    client = signed_in("sh.operator")
    _Spy.touched = False
    response = client.post(UPLOAD, input_stream=_Spy(b"--x\r\n" + b"\0" * 100),
                           content_type="multipart/form-data; boundary=x",
                           environ_overrides={"CONTENT_LENGTH": str(Limits().archive_bytes * 2)})
    assert response.status_code == 413
    assert "A package may have at most 5,242,880 bytes" in text(response) and 'type="file"' in text(response)
    assert not _Spy.touched
    assert rows(PackageVersion) == [] and not stored(demo_app).exists()


def test_an_oversized_upload_sent_in_chunks_is_refused_with_the_form(demo_app, signed_in, rows):
    client = signed_in("sh.operator")
    body = b"--x\r\nContent-Disposition: form-data; name=\"package\"; filename=\"p.zip\"\r\n\r\n"
    body += b"\0" * (Limits().archive_bytes * 2) + b"\r\n--x--\r\n"
    response = client.post(UPLOAD, input_stream=io.BytesIO(body), content_type="multipart/form-data; boundary=x",
                           environ_overrides={"wsgi.input_terminated": True, "HTTP_TRANSFER_ENCODING": "chunked"})
    assert response.status_code == 413
    assert "A package may have at most 5,242,880 bytes" in text(response) and 'type="file"' in text(response)
    assert rows(PackageVersion) == [] and not stored(demo_app).exists()


def test_a_package_one_byte_over_the_limit_is_refused(demo_app, signed_in, post, rows):
    response = upload(post, signed_in("sh.operator"), b"PK" + b"\0" * (Limits().archive_bytes - 1))
    assert response.status_code == 413 and "A package may have at most 5,242,880 bytes" in text(response)
    assert rows(PackageVersion) == [] and not stored(demo_app).exists()


def test_a_form_without_the_csrf_token_changes_nothing(demo_app, signed_in, rows, package_zip, draft):
    client = signed_in("sh.operator")
    response = client.post(UPLOAD, data={"package": (io.BytesIO(package_zip(version="2.0.0")), "p.zip")})
    assert response.status_code == 400 and "Form expired" in text(response)
    assert not (stored(demo_app) / "2.0.0").exists()
    draft()
    response = client.post(f"{PAGE}/submit", data={"reason": "ready"})
    assert response.status_code == 400 and status_of(rows) == "draft"
    assert client.post(f"{PAGE}/submit", data={"csrf_token": "forged", "reason": "ready"}).status_code == 400
    assert status_of(rows) == "draft"


def test_staff_who_publish_nothing_get_no_upload_form(signed_in, post, rows, package_zip):
    client = signed_in("hq.reviewer")
    page = text(client.get(UPLOAD))
    assert 'data-publishes="none"' in page and 'type="file"' not in page
    assert 'data-publishes="none"' in text(client.get("/console/publishing"))
    response = upload(post, client, package_zip())
    assert response.status_code == 403 and rows(PackageVersion) == []


def test_anonymous_visitors_go_to_the_staff_sign_in(signed_in):
    for path in ("/console/publishing", UPLOAD, PAGE, "/console/publishing/review",
                 "/console/publishing/notifications"):
        response = signed_in(None).get(path)
        assert response.status_code == 303 and response.headers["Location"].startswith("/staff/signin?next=")


# -- a version's page and its actions -------------------------------------------------------------


def test_submitting_runs_the_pre_review_and_the_page_shows_its_report(signed_in, post, rows, draft, sandbox_isolation):
    draft(scopes=["payments:read", "profile.phone:read"])
    client = signed_in("sh.operator")
    response = act(post, client, "submit", reason="first version")
    assert response.status_code == 303 and response.headers["Location"] == f"{PAGE}?done=submit"
    assert status_of(rows) == "pre_review"
    page = text(client.get(response.headers["Location"]))
    assert 'data-status="pre_review"' in page and 'data-passed="true"' in page
    assert 'data-section="smoke" data-outcome="pass"' in page and 'data-result="ok"' in page
    assert 'data-section="scopes" data-outcome="warn"' in page
    assert 'data-scope="profile.phone:read" data-flagged' in page and 'data-scope="payments:read">' in page
    assert 'data-section="tests" data-outcome="not_run"' in page and "the package has no tests/ folder" in page
    assert "adds 'profile.phone:read', of high sensitivity" in page
    assert [h for h in ("upload", "submit", "pass_precheck") if f'data-history="{h}"' in page] == [
        "upload", "submit", "pass_precheck"]
    assert "first version" in page
    assert 'data-action="submit"' not in page and 'data-actions="none"' in page


def test_a_version_the_pre_review_rejects_shows_why(signed_in, post, rows, draft, sandbox_isolation):
    draft(scopes=["teleport:use"])
    client = signed_in("sh.operator")
    assert act(post, client, "submit").status_code == 303
    assert status_of(rows) == "rejected"
    page = text(client.get(f"{PAGE}"))
    assert 'data-passed="false"' in page and 'data-section="scopes" data-outcome="fail"' in page
    assert "scopes: scope 'teleport:use' is not in the scope catalog" in page
    assert 'data-history="fail_precheck"' in page


def test_a_reviewer_takes_the_version_and_approves_it_with_a_release_time(signed_in, post, rows, draft,
                                                                          sandbox_isolation):
    draft()
    act(post, signed_in("sh.operator"), "submit")
    reviewer = signed_in("hq.reviewer")
    page = text(reviewer.get(PAGE))
    assert 'data-action="start_review"' in page and 'data-action="approve"' not in page
    assert act(post, reviewer, "start_review").status_code == 303 and status_of(rows) == "in_review"
    page = text(reviewer.get(PAGE))
    assert 'data-action="approve"' in page and 'data-action="reject"' in page and 'type="datetime-local"' in page

    past = act(post, reviewer, "approve", release_at="2020-01-01T08:00", release_zone="UTC")
    assert past.status_code == 422 and 'data-field="release_at"' in text(past) and status_of(rows) == "in_review"
    wrong = act(post, reviewer, "approve", release_at="next tuesday", release_zone="UTC")
    assert wrong.status_code == 422 and "like 2025-03-04T06:00" in text(wrong)

    response = act(post, reviewer, "approve", reason="pages and scopes checked", release_at="2099-01-01T08:00",
                   release_zone="UTC+08:00")
    assert response.status_code == 303 and response.headers["Location"] == f"{PAGE}?done=approve"
    [row] = rows(PackageVersion, plugin_id="sh.coupons")
    assert (row.status, row.reviewed_by) == ("approved", "staff:hq.reviewer")
    assert row.release_at == datetime(2099, 1, 1, 0, 0, tzinfo=timezone.utc)
    page = text(reviewer.get(response.headers["Location"]))
    assert "2099-01-01 00:00 UTC" in page and 'data-history="approve"' in page and "pages and scopes checked" in page


def test_a_rejection_needs_a_reason(signed_in, post, rows, in_review):
    reviewer = signed_in("hq.reviewer")
    response = act(post, reviewer, "reject", reason="  ")
    assert response.status_code == 422 and status_of(rows) == "in_review"
    assert "say why: this action needs a reason" in text(response) and 'data-field="reason"' in text(response)
    response = act(post, reviewer, "reject", reason="asks for the phone number without need")
    assert response.status_code == 303 and status_of(rows) == "rejected"
    page = text(signed_in("sh.admin").get(PAGE))
    assert "asks for the phone number without need" in page and 'data-status="rejected"' in page


def test_a_publisher_sees_no_review_actions_and_a_forged_approval_is_refused(signed_in, post, rows, audit_log,
                                                                             in_review):
    publisher = signed_in("sh.operator")
    page = text(publisher.get(PAGE))
    assert 'data-status="in_review"' in page
    assert 'data-action="approve"' not in page and 'data-action="reject"' not in page
    response = act(post, publisher, "approve", reason="looks fine to me")
    assert response.status_code == 403
    refused = text(response)
    assert 'data-refused="403"' in refused and "only head office's reviewers (hq_reviewer) review versions" in refused
    assert status_of(rows) == "in_review"
    entry = audit_log("publishing.approve")[-1]
    assert (entry.outcome, entry.actor, entry.subject) == ("denied", "staff:sh.operator", "sh.coupons@1.0.0")


def test_an_action_from_the_wrong_status_is_a_409_message(signed_in, post, rows, draft):
    draft()
    response = act(post, signed_in("hq.admin"), "reinstate", reason="by mistake")
    assert response.status_code == 409 and "reinstate starts from suspended" in text(response)
    assert status_of(rows) == "draft"


def test_a_branch_admin_retires_a_draft(signed_in, post, rows, draft):
    draft()
    admin = signed_in("sh.admin")
    assert 'data-action="retire"' in text(admin.get(PAGE))
    assert act(post, admin, "retire", reason="replaced by 1.0.1").status_code == 303
    assert status_of(rows) == "retired"
    assert act(post, signed_in("sh.operator"), "submit").status_code == 409


def test_another_branch_neither_sees_nor_acts_on_the_version(signed_in, post, rows, audit_log, draft):
    draft()
    beijing = signed_in("bj.operator")
    assert beijing.get(PAGE).status_code == 404
    assert act(post, beijing, "submit").status_code == 404
    assert act(post, beijing, "retire", reason="mine now").status_code == 404
    assert status_of(rows) == "draft"
    assert 'data-plugin="sh.coupons"' not in text(beijing.get("/console/publishing"))
    assert audit_log("publishing.read")[-1].outcome == "denied"


@pytest.mark.parametrize("path", [f"{PAGE[:-6]}/9.9.9", f"{PAGE}%00", f"{PAGE[:-6]}/not-a-version",
                                  "/console/publishing/plugins/NOT%20AN%20ID/versions/1.0.0"])
def test_what_names_no_version_is_a_404(signed_in, draft, path):
    draft()
    assert signed_in("hq.admin").get(path).status_code == 404


def test_only_the_consoles_actions_are_taken(signed_in, post, rows, draft):
    draft()
    assert act(post, signed_in("sh.operator"), "publish").status_code == 404  # no action of the table
    assert act(post, signed_in("hq.admin"), "pass_precheck").status_code == 404  # the host's own
    assert status_of(rows) == "draft"


# -- queue and notifications ----------------------------------------------------------------------


def test_the_review_queue_is_head_offices_oldest_first(signed_in, post, draft, sandbox_isolation):
    draft()
    draft("1.1.0")
    publisher = signed_in("sh.operator")
    act(post, publisher, "submit", "1.0.0")
    act(post, publisher, "submit", "1.1.0")
    for username in ("hq.reviewer", "hq.admin"):
        page = text(signed_in(username).get("/console/publishing/review"))
        assert page.index('data-version="1.0.0"') < page.index('data-version="1.1.0"')
        assert f'href="{PAGE}"' in page
        assert 'href="/console/publishing/review"' in page  # the navigation
    for username in ("sh.operator", "sh.admin", "bj.operator"):
        client = signed_in(username)
        assert client.get("/console/publishing/review").status_code == 403
        assert 'href="/console/publishing/review"' not in text(client.get("/console/publishing"))


def test_an_empty_queue_says_so(signed_in):
    page = text(signed_in("hq.reviewer").get("/console/publishing/review"))
    assert "Nothing waits for review." in page


def test_notifications_are_listed_for_their_publisher(signed_in, post, draft):
    draft()
    act(post, signed_in("sh.admin"), "retire", reason="not needed")
    page = text(signed_in("sh.operator").get("/console/publishing/notifications"))
    uploaded, retired = "sh.coupons 1.0.0 was uploaded as a draft.", "sh.coupons 1.0.0 was retired: not needed"
    assert page.index(uploaded) < page.index(retired)
    assert f'href="{PAGE}"' in page
    assert 'data-notification=' not in text(signed_in("bj.operator").get("/console/publishing/notifications"))
    assert signed_in("hq.reviewer").get("/console/publishing/notifications").status_code == 403
    later = text(signed_in("sh.operator").get("/console/publishing/notifications?after=999999"))
    assert 'data-notification=' not in later


def test_head_office_publishes_the_banks_mini_programs(signed_in, post, rows, package_zip):
    client = signed_in("hq.admin")
    response = upload(post, client, package_zip("hq.savings", kind="bank", publisher="HQ"))
    assert response.status_code == 303
    page = text(client.get("/console/publishing"))
    assert 'data-publisher="bank:HQ"' in page and 'data-plugin="hq.savings"' in page
    assert 'data-plugin="hq.savings"' not in text(signed_in("sh.admin").get("/console/publishing"))
    assert 'href="/console/publishing"' in page and 'href="/console/publishing/review"' in page


def test_the_pages_read_in_chinese(signed_in, draft):
    draft()
    client = signed_in("sh.operator", locale="zh-CN")
    page = text(client.get(f"{PAGE}?done=upload"))
    assert "已作为草稿上传。" in page and ">草稿</span>" in page and "提交审核" in page
    assert "我发布的小程序" in text(client.get("/console/publishing"))


def test_head_office_lists_versions_by_status(signed_in, post, draft):
    draft()
    draft("1.1.0")
    act(post, signed_in("sh.admin"), "retire", "1.1.0", reason="a mistake")
    client = signed_in("hq.admin")
    drafts = text(client.get("/console/publishing/review?status=draft"))
    assert 'data-version="1.0.0"' in drafts and 'data-version="1.1.0"' not in drafts
    retired = text(client.get("/console/publishing/review?status=retired"))
    assert 'data-version="1.1.0"' in retired and 'data-version="1.0.0"' not in retired
    response = client.get("/console/publishing/review?status=lost")
    assert response.status_code == 422 and "status must be one of" in text(response)
