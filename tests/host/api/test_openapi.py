"""The OpenAPI 3 document and the docs page rendered from it."""

from __future__ import annotations

import re
from typing import Any, Iterator

import pytest
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate

from host.api.openapi import build_spec

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def operations(spec: dict) -> Iterator[tuple[str, str, dict]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def openapi_path(rule: str) -> str:
    """``/api/v1/plugins/<plugin_id>`` → ``/api/v1/plugins/{plugin_id}``."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


@pytest.fixture
def spec(client) -> dict:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def test_the_document_is_valid_openapi_3(spec):
    assert spec["openapi"].startswith("3.")
    validate(spec)  # raises on any violation of the OpenAPI 3 schema


def test_the_served_document_is_the_built_one(spec):
    assert spec == build_spec()


def test_every_route_of_the_api_blueprint_is_documented(spec, demo_app):
    routes = [rule for rule in demo_app.url_map.iter_rules() if rule.endpoint.startswith("api.")]
    assert len(routes) >= 4
    for rule in routes:
        path = openapi_path(rule.rule)
        assert path in spec["paths"], f"{rule.rule} is not in the OpenAPI document"
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in spec["paths"][path], f"{method} {rule.rule} is not documented"


def test_every_documented_api_operation_exists(spec, demo_app):
    adapter = demo_app.url_map.bind("localhost")
    for path, method, _ in operations(spec):
        concrete = re.sub(r"\{[^}]+\}", "wealth.checkup", path)
        endpoint, _ = adapter.match(concrete, method=method.upper())
        assert endpoint


def test_path_parameters_are_declared(spec):
    for path, method, operation in operations(spec):
        declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
        assert declared == set(re.findall(r"\{([^}]+)\}", path)), f"{method} {path}"


def test_every_reference_resolves(spec):
    schemas = spec["components"]["schemas"]
    found = list(refs(spec))
    assert found
    for ref in found:
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.rsplit("/", 1)[1] in schemas, f"{ref} does not exist"


def test_every_response_has_a_description_and_every_operation_a_unique_id(spec):
    ids = [operation["operationId"] for _, _, operation in operations(spec)]
    assert len(ids) == len(set(ids))
    for path, method, operation in operations(spec):
        assert operation["responses"], f"{method} {path}"
        for code, response in operation["responses"].items():
            assert response["description"], f"{method} {path} {code}"


def test_the_list_query_parameters_are_documented(spec):
    parameters = spec["paths"]["/api/v1/plugins"]["get"]["parameters"]
    assert {(p["name"], p["in"]) for p in parameters} == {("kind", "query"), ("state", "query")}
    by_name = {p["name"]: p for p in parameters}
    assert set(by_name["kind"]["schema"]["enum"]) == {"bank", "branch", "partner"}
    assert set(by_name["state"]["schema"]["enum"]) == {"active", "refused", "disabled"}


def conforms(spec: dict, path: str, method: str, status: int, body: Any) -> None:
    """Check ``body`` against the schema the document gives for that answer."""
    response = spec["paths"][path][method]["responses"][str(status)]
    (content,) = response["content"].values()
    schema = {**content["schema"], "components": spec["components"]}
    errors = sorted(OAS30Validator(schema).iter_errors(body), key=str)
    assert not errors, [error.message for error in errors]


def test_real_answers_conform_to_the_document(spec, client):
    answers = [
        ("/api/v1/plugins", "/api/v1/plugins", 200),
        ("/api/v1/plugins?kind=alien", "/api/v1/plugins", 422),
        ("/api/v1/plugins/wealth.checkup", "/api/v1/plugins/{plugin_id}", 200),
        ("/api/v1/plugins/nope", "/api/v1/plugins/{plugin_id}", 404),
        ("/healthz", "/healthz", 200),
        ("/readyz", "/readyz", 200),
    ]
    for url, path, status in answers:
        response = client.get(url)
        assert response.status_code == status, url
        conforms(spec, path, "get", status, response.get_json(force=True))


def test_the_schemas_reject_a_wrong_answer(spec):
    with pytest.raises(AssertionError):
        conforms(spec, "/api/v1/plugins", "get", 200, {"items": [{"id": 3}], "count": "one"})


def test_the_docs_page_renders_every_operation(client, spec):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert spec["info"]["title"] in html
    for path, method, operation in operations(spec):
        assert f'id="{operation["operationId"]}"' in html
        assert f"<code>{method.upper()} {path}</code>" in html
        for code in operation["responses"]:
            assert f"<code>{code}</code>" in html
        for parameter in operation.get("parameters", []):
            assert f"<code>{parameter['name']}</code>" in html
    assert 'href="/api/v1/openapi.json"' in html
