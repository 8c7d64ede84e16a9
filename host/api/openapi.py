"""The OpenAPI 3 document (``/api/v1/openapi.json``), generated from the marshmallow
schemas, and a readable docs page (``/api/v1/docs``) rendered from that document."""

from __future__ import annotations

from functools import lru_cache

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import jsonify, render_template

from . import bp
from .schemas import (HealthSchema, ListQuerySchema, PluginDetailSchema, PluginListSchema, ProblemSchema,
                      SearchQuerySchema, SearchResultsSchema)

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
    "/api/v1/search": {
        "get": {
            "operationId": "search",
            "summary": "The search centre: a branch's mini-programs and the services they offer, best first",
            "description": "Names, keywords and descriptions match in Chinese and English (case-insensitive, "
            "substrings); the branch's installed plugins add hits through canopy_search. See docs/search.md.",
            "tags": ["search"],
            "parameters": [{"in": "query", "schema": SearchQuerySchema}],
            "responses": {
                "200": _ok("SearchResults", "What was found"),
                "404": {"description": "No such branch (errors.branch)", **PROBLEM},
                "422": {"description": "A query too long or with control characters (errors.q), or an unknown parameter", **PROBLEM},
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
    # -- OAuth-protected (docs/oauth.md): Authorization: DPoP <token> plus a DPoP proof --
    "/api/v1/me": {
        "get": {
            "operationId": "getMe",
            "summary": "The customer behind a DPoP-bound access token, as the token's scopes allow",
            "description": "Needs profile.basic:read (nickname, avatar, locale) and/or profile.phone:read (phone); "
            "sub is the customer's pairwise id for the calling mini-program.",
            "tags": ["oauth"],
            "parameters": [
                {"in": "header", "name": "Authorization", "required": True, "schema": {"type": "string", "pattern": "^DPoP "}},
                {"in": "header", "name": "DPoP", "required": True, "schema": {"type": "string"}},
            ],
            "responses": {
                "200": {"description": "The profile", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["sub"],
                    "properties": {"sub": {"type": "string"}, "nickname": {"type": "string"},
                                   "avatar": {"type": "string", "nullable": True}, "locale": {"type": "string"},
                                   "phone": {"type": "string"}}}}}},
                "400": {"description": "A token in the query string or body, or a malformed request", **PROBLEM},
                "401": {"description": "No, unknown, expired or revoked token, or a bad DPoP proof (WWW-Authenticate: DPoP)", **PROBLEM},
                "403": {"description": "insufficient_scope, or a token without a customer", **PROBLEM},
            },
        }
    },
    "/api/v1/clients/{plugin_id}": {
        "put": {
            "operationId": "putClient",
            "summary": "A client replaces its own JWKS and/or redirect URIs (client credentials token with client:manage)",
            "tags": ["oauth"],
            "parameters": [{"in": "path", "name": "plugin_id", "required": True, "schema": {"type": "string"}}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object",
                "properties": {"jwks": {"type": "object"}, "redirect_uris": {"type": "array", "items": {"type": "string"}}}}}}},
            "responses": {
                "200": {"description": "The registration now", "content": {"application/json": {"schema": {"type": "object"}}}},
                "401": {"description": "Token or DPoP proof not accepted", **PROBLEM},
                "403": {"description": "Not this client's own registration, or no client:manage", **PROBLEM},
                "422": {"description": "Invalid keys or redirect URIs; see errors", **PROBLEM},
            },
        }
    },
    "/api/v1/miniprogram/sessions": {
        "post": {
            "operationId": "createMiniProgramSession",
            "summary": "A plugin's back end exchanges a one-time login code for the pairwise id and a short session",
            "description": "Client authentication: private_key_jwt (client_assertion_type, client_assertion).",
            "tags": ["oauth"],
            "requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": {
                "type": "object", "required": ["code", "client_assertion_type", "client_assertion"],
                "properties": {"code": {"type": "string"}, "client_assertion_type": {"type": "string"},
                               "client_assertion": {"type": "string"}}}}}},
            "responses": {
                "200": {"description": "The session", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["sub", "session_token", "expires_in"],
                    "properties": {"sub": {"type": "string"}, "session_token": {"type": "string"},
                                   "expires_in": {"type": "integer"}}}}}},
                "400": {"description": "invalid_client, invalid_request or invalid_grant (used, expired, another plugin's code)", **PROBLEM},
            },
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
    spec.components.schema("SearchResults", schema=SearchResultsSchema)
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
