"""The OpenAPI 3 document (``/api/v1/openapi.json``), generated from the marshmallow
schemas, and a readable docs page (``/api/v1/docs``) rendered from that document."""

from __future__ import annotations

from functools import lru_cache

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import jsonify, render_template

from . import bp
from .schemas import HealthSchema, ListQuerySchema, PluginDetailSchema, PluginListSchema, ProblemSchema

PROBLEM = {"content": {"application/problem+json": {"schema": "Problem"}}}


def _ok(schema: str, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


#: Every operation of the API: path → method → OpenAPI operation.
OPERATIONS: dict[str, dict[str, dict]] = {
    "/api/v1/plugins": {
        "get": {
            "operationId": "listPlugins",
            "summary": "List registered mini-programs with their newest version",
            "tags": ["plugins"],
            "parameters": [{"in": "query", "schema": ListQuerySchema}],
            "responses": {
                "200": _ok("PluginList", "The plugins, by id"),
                "422": {"description": "Invalid query parameters", **PROBLEM},
            },
        }
    },
    "/api/v1/plugins/{plugin_id}": {
        "get": {
            "operationId": "getPlugin",
            "summary": "One mini-program with every registered version",
            "tags": ["plugins"],
            "parameters": [{"in": "path", "name": "plugin_id", "required": True, "schema": {"type": "string"}}],
            "responses": {
                "200": _ok("PluginDetail", "The plugin"),
                "404": {"description": "No such plugin", **PROBLEM},
            },
        }
    },
    "/api/v1/openapi.json": {
        "get": {
            "operationId": "openapiDocument",
            "summary": "This OpenAPI 3 document",
            "tags": ["documentation"],
            "responses": {"200": {"description": "The document", "content": {"application/json": {"schema": {"type": "object"}}}}},
        }
    },
    "/api/v1/docs": {
        "get": {
            "operationId": "docsPage",
            "summary": "A readable page of this API",
            "tags": ["documentation"],
            "responses": {"200": {"description": "The page", "content": {"text/html": {"schema": {"type": "string"}}}}},
        }
    },
    "/healthz": {
        "get": {
            "operationId": "liveness",
            "summary": "The process is up",
            "tags": ["operations"],
            "responses": {"200": _ok("Health", "Alive")},
        }
    },
    "/readyz": {
        "get": {
            "operationId": "readiness",
            "summary": "The process can serve: its database answers",
            "tags": ["operations"],
            "responses": {
                "200": _ok("Health", "Ready"),
                "503": {"description": "Not ready; see Retry-After", **PROBLEM},
            },
        }
    },
}


@lru_cache(maxsize=1)
def build_spec() -> dict:
    """Build the OpenAPI document."""
    spec = APISpec(
        title="Canopy API",
        version="1.0.0",
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={"description": "The Canopy host's JSON API. Errors are RFC 9457 problem documents."},
    )
    spec.components.schema("Problem", schema=ProblemSchema)
    spec.components.schema("PluginList", schema=PluginListSchema)
    spec.components.schema("PluginDetail", schema=PluginDetailSchema)
    spec.components.schema("Health", schema=HealthSchema)
    for path, operations in OPERATIONS.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()


@bp.get("/openapi.json")
def openapi_document():
    """The OpenAPI 3 document of this API."""
    return jsonify(build_spec())


@bp.get("/docs")
def docs_page():
    """A readable page of the API, rendered from the OpenAPI document."""
    return render_template("api/docs.html", spec=build_spec())
