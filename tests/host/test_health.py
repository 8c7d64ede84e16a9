"""Liveness and readiness."""

from __future__ import annotations

from host.problems import PROBLEM_JSON

DEAD_DATABASE = "postgresql://canopy:hunter2@127.0.0.1:1/canopy"


def test_liveness(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == {"status": "ok"}


def test_readiness_checks_the_database(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready", "checks": {"database": "ok"}}


def test_not_ready_when_the_database_cannot_be_reached(app_factory):
    response = app_factory(DATABASE_URL=DEAD_DATABASE).test_client().get("/readyz")
    assert response.status_code == 503
    assert response.mimetype == PROBLEM_JSON
    assert int(response.headers["Retry-After"]) > 0
    body = response.get_json(force=True)
    assert body["title"] == "Not ready"
    assert body["detail"] == "database unreachable: OperationalError"
    # the answer never carries the database address or its password
    text = response.get_data(as_text=True)
    assert "hunter2" not in text and "127.0.0.1" not in text


def test_health_endpoints_answer_json_even_to_browsers(app_factory):
    response = app_factory(DATABASE_URL=DEAD_DATABASE).test_client().get("/readyz", headers={"Accept": "text/html"})
    assert response.status_code == 503
    assert response.mimetype == PROBLEM_JSON

