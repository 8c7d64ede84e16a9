"""Errors: RFC 9457 problem documents for the API, short HTML pages for pages, never a 500
for bad input or a dead database."""

from __future__ import annotations

import pytest

from host.problems import PROBLEM_JSON, RETRY_AFTER_SECONDS, Problem, validation_problem

PROBLEM_MEMBERS = {"type", "title", "status", "detail", "instance"}
#: A PostgreSQL address where nothing listens: connecting is refused at once.
DEAD_DATABASE = "postgresql://postgres@127.0.0.1:1/canopy"


def assert_problem(response, status: int, path: str) -> dict:
    assert response.status_code == status
    assert response.mimetype == PROBLEM_JSON
    body = response.get_json(force=True)
    assert PROBLEM_MEMBERS <= set(body)
    assert body["status"] == status
    assert body["instance"] == path
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    return body


def assert_error_page(response, status: int) -> str:
    assert response.status_code == status
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert f'<p class="status">{status}</p>' in html
    return html


# -- the Problem type ------------------------------------------------------------


def test_a_problem_takes_its_title_from_the_status_and_keeps_extension_members(app):
    problem = Problem(409, detail="Already there.", type="/problems/conflict", holder="someone")
    assert problem.title == "Conflict"
    with app.test_request_context("/api/v1/things/1"):
        assert problem.to_dict() == {
            "type": "/problems/conflict",
            "title": "Conflict",
            "status": 409,
            "detail": "Already there.",
            "instance": "/api/v1/things/1",
            "holder": "someone",
        }


def test_a_validation_problem_is_422_with_the_field_messages():
    problem = validation_problem({"kind": ["Not one of the choices."]})
    assert problem.status == 422
    assert problem.type == "/problems/validation"
    assert problem.extra == {"errors": {"kind": ["Not one of the choices."]}}


# -- HTTP errors -------------------------------------------------------------------


def test_unknown_api_path_is_a_404_problem(client):
    body = assert_problem(client.get("/api/v1/no-such-thing"), 404, "/api/v1/no-such-thing")
    assert body["type"] == "about:blank"
    assert body["title"] == "Not Found"


def test_unknown_page_is_a_404_html_page(client):
    html = assert_error_page(client.get("/no-such-page", headers={"Accept": "text/html"}), 404)
    assert "Not Found" in html


def test_a_page_asked_for_as_json_gets_a_problem(client):
    assert_problem(client.get("/no-such-page", headers={"Accept": "application/json"}), 404, "/no-such-page")


def test_wrong_method_on_the_api_is_405_with_allow(client):
    response = client.post("/api/v1/plugins", json={})
    body = assert_problem(response, 405, "/api/v1/plugins")
    allowed = {method.strip() for method in response.headers["Allow"].split(",")}
    assert "GET" in allowed and "POST" not in allowed
    assert set(body["allow"]) == allowed


def test_wrong_method_on_a_page_is_405_html_with_allow(client):
    response = client.delete("/s/HQ", headers={"Accept": "text/html"})
    assert_error_page(response, 405)
    assert "GET" in response.headers["Allow"]


#: A mini-program's API, on its own origin (docs/bridge.md).
WEALTH = "http://wealth.checkup.mp.localhost:8000"


def test_a_body_over_the_limit_is_413(app_factory, seed_demo):
    client = seed_demo(app_factory(MAX_CONTENT_LENGTH=64)).test_client()
    path = "/api/answers"
    body = assert_problem(client.post(WEALTH + path, data=b"[" + b"1," * 100 + b"1]", content_type="application/json"), 413, path)
    assert "64" in body["detail"]


def test_a_form_post_to_a_json_api_is_415(client):
    path = "/api/answers"
    assert_problem(client.post(WEALTH + path, data={"a": "1"}), 415, path)


def test_malformed_json_is_400(client):
    path = "/api/answers"
    body = assert_problem(client.post(WEALTH + path, data=b'{"a": ', content_type="application/json"), 400, path)
    assert body["title"] == "Malformed JSON"


def test_invalid_query_parameters_are_422_with_per_field_errors(client):
    response = client.get("/api/v1/plugins?kind=alien&colour=red")
    body = assert_problem(response, 422, "/api/v1/plugins")
    assert body["type"] == "/problems/validation"
    assert set(body["errors"]) == {"kind", "colour"}
    assert all(isinstance(messages, list) and messages for messages in body["errors"].values())


def test_an_unexpected_error_is_a_500_problem_that_reveals_nothing(app_factory):
    app = app_factory()

    def explode():
        raise RuntimeError("internal secret: the vault code is 1234")

    app.add_url_rule("/api/v1/explode", "explode", explode)
    response = app.test_client().get("/api/v1/explode")
    body = assert_problem(response, 500, "/api/v1/explode")
    assert "vault" not in response.get_data(as_text=True)
    assert body["title"] == "Internal server error"


def test_a_problem_raised_in_a_view_keeps_its_members(app_factory):
    app = app_factory()

    def conflict():
        raise Problem(409, "Already claimed", "You hold this coupon already.", type="/problems/claimed", coupon="c1")

    app.add_url_rule("/api/v1/conflict", "conflict", conflict)
    body = assert_problem(app.test_client().get("/api/v1/conflict"), 409, "/api/v1/conflict")
    assert body["type"] == "/problems/claimed"
    assert body["coupon"] == "c1"
    assert body["title"] == "Already claimed"


# -- a database that cannot be reached ------------------------------------------------


@pytest.fixture
def dead_database_client(app_factory):
    return app_factory(DATABASE_URL=DEAD_DATABASE).test_client()


@pytest.mark.parametrize("path", ["/readyz", "/api/v1/plugins", "/api/v1/plugins/wealth.checkup", "/mp/wealth.checkup/api/x"])
def test_an_unreachable_database_is_503_with_retry_after_for_the_api(dead_database_client, path):
    response = dead_database_client.get(path)
    assert_problem(response, 503, path)
    assert response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)


@pytest.mark.parametrize("path", ["/s/HQ", "/mp/wealth.checkup/"])
def test_an_unreachable_database_is_503_with_retry_after_for_pages(dead_database_client, path):
    response = dead_database_client.get(path, headers={"Accept": "text/html"})
    assert_error_page(response, 503)
    assert response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)


def test_liveness_does_not_need_the_database(dead_database_client):
    response = dead_database_client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
