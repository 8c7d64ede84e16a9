"""``GET /api/v1/search``: the search centre as JSON, errors as problem+json naming the field."""

from __future__ import annotations

import pytest

from host.api.openapi import build_spec


def test_search_as_json(client):
    response = client.get("/api/v1/search?q=coffee&branch=SH001&lang=en")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["query"] == "coffee" and body["branch"] == "SH001" and body["locale"] == "en"
    assert body["count"] == len(body["items"]) >= 2 and body["unavailable"] == []
    first = body["items"][0]
    assert first == {"kind": "miniprogram", "plugin_id": "sh.deals", "plugin_name": "Shanghai Neighbourhood Deals",
                     "title": "Shanghai Neighbourhood Deals", "summary": first["summary"],
                     "url": "/mp/sh.deals/?branch=SH001&lang=en", "score": 0.8, "matched": "keyword"}
    assert all(0 <= item["score"] <= 1 for item in body["items"])


def test_an_empty_query_lists_everything_at_the_branch(client):
    body = client.get("/api/v1/search?branch=BJ001").get_json()
    assert [item["plugin_id"] for item in body["items"]] == ["wealth.checkup"]
    assert body["items"][0]["matched"] == "all"


@pytest.mark.parametrize(("params", "status", "field"), [
    ({"q": "x" * 10_000}, 422, "q"),
    ({"q": "x" * 101}, 422, "q"),
    ({"q": "a\x00b"}, 422, "q"),
    ({"q": "a\x07b"}, 422, "q"),
    ({"branch": "NOPE"}, 404, "branch"),
    ({"branch": "x" * 10_000}, 404, "branch"),
    ({"branch": "SH001\x00"}, 404, "branch"),
    ({"q": "coffee", "limit": "5"}, 422, "limit"),
])
def test_bad_input_is_a_problem_naming_the_field(client, params, status, field):
    response = client.get("/api/v1/search", query_string=params)
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    assert field in response.get_json()["errors"]


def test_errors_come_in_the_requests_language(client):
    body = client.get("/api/v1/search", query_string={"q": "x" * 200, "lang": "zh-CN"}).get_json()
    assert body["errors"]["q"] == ["搜索内容最多 100 个字符。"]


@pytest.mark.parametrize("query", ["' OR '1'='1", "%", "_", "<script>", "; DROP TABLE branches", "\\x00"])
def test_metacharacters_are_just_text(client, query):
    response = client.get("/api/v1/search", query_string={"q": query, "branch": "SH001"})
    assert response.status_code == 200 and response.get_json()["query"] == query


def test_the_endpoint_is_in_the_openapi_document():
    operation = build_spec()["paths"]["/api/v1/search"]["get"]
    assert operation["operationId"] == "search"
    assert {p["name"] for p in operation["parameters"]} == {"q", "branch", "lang"}
    assert {"200", "404", "422"} <= set(operation["responses"])
    assert "SearchResults" in build_spec()["components"]["schemas"]
