"""The OpenAPI 3 document (``/api/v1/openapi.json``), generated from the marshmallow
schemas, and a readable docs page (``/api/v1/docs``) rendered from that document."""

from __future__ import annotations

from functools import lru_cache

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import jsonify, render_template

from . import bp
from .schemas import (HealthSchema, ListQuerySchema, PackageVersionDetailSchema, PackageVersionListSchema,
                      PluginDetailSchema, PluginListSchema, ProblemSchema, PublisherNotificationListSchema,
                      PromotionSchema, ReleaseActionSchema, ReleaseSchema, SearchQuerySchema, SearchResultsSchema, VersionActionSchema)

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


# -- publishing (docs/publishing.md) --

#: How each publishing caller authenticates, as the operations describe it.
PUBLISHER_AUTH = ("A partner's back end: Authorization: DPoP <client credentials token with plugins:publish> and a "
                  "DPoP proof; or a staff session cookie, with X-CSRF-Token on changes.")
STAFF_AUTH = "A staff session cookie (head office), with X-CSRF-Token on changes."
_PLUGIN = {"in": "path", "name": "plugin_id", "required": True, "schema": {"type": "string"}}
_VERSION = {"in": "path", "name": "version", "required": True, "schema": {"type": "string"}}
_REFUSALS = {
    "401": {"description": "Not signed in, or no usable token", **PROBLEM},
    "403": {"description": "Not allowed: the caller's role, not its plugin, its own version (reviews), or no CSRF token", **PROBLEM},
    "404": {"description": "No such plugin or version", **PROBLEM},
}
#: What each action does, for its operation's summary.
ACTION_SUMMARIES = {
    "submit": ("submitVersion", "Submit a draft for review; the automatic pre-review follows the commit (the answer: pre_review or rejected, or submitted when CANOPY_PREREVIEW_RUNS=worker)"),
    "retire": ("retireVersion", "Retire a version for good (branch_admin or partner back end of the publisher, or hq_admin)"),
    "start_review": ("startReview", "Take a version from the queue (pre_review → in_review); hq_reviewer, never its publisher"),
    "approve": ("approveVersion", "Approve a version under review, optionally with release_at; hq_reviewer, never its publisher"),
    "reject": ("rejectVersion", "Reject a version under review, with a reason; hq_reviewer, never its publisher"),
    "suspend": ("suspendVersion", "Suspend an approved or superseded version (never released again until "
                                  "reinstated), with a reason; hq_admin"),
    "reinstate": ("reinstateVersion", "Reinstate a suspended version (to approved), with a reason; hq_admin"),
}


def _action_operation(action: str, prefix: str) -> dict:
    operation_id, summary = ACTION_SUMMARIES[action]
    return {"post": {
        "operationId": operation_id, "summary": summary, "tags": ["publishing"],
        "description": PUBLISHER_AUTH if prefix == "publisher" else STAFF_AUTH,
        "parameters": [_PLUGIN, _VERSION],
        "requestBody": {"required": False, "content": {"application/json": {"schema": "VersionAction"}}},
        "responses": {"200": _ok("PackageVersionDetail", "The version now, with its history"), **_REFUSALS,
                      "409": {"description": "Not possible from the version's status, or changed meanwhile", **PROBLEM},
                      "415": {"description": "A body that is not JSON", **PROBLEM},
                      "422": {"description": "A missing or bad reason or release_at (errors)", **PROBLEM}},
    }}


OPERATIONS.update({
    "/api/v1/publisher/plugins/{plugin_id}/versions": {
        "post": {
            "operationId": "uploadVersion",
            "summary": "Upload a package (the body: a zip archive) as a draft version",
            "description": PUBLISHER_AUTH + " The manifest's id must be the path's and its publisher the caller's; "
            "the same files again answer 200 with the version recorded, other files under a recorded version 409.",
            "tags": ["publishing"],
            "parameters": [_PLUGIN],
            "requestBody": {"required": True, "content": {"application/zip": {"schema": {"type": "string", "format": "binary",
                                                                                          "maxLength": 5 * 1024 * 1024}}}},
            "responses": {
                "201": _ok("PackageVersionDetail", "Recorded as a draft (Location: the version)"),
                "200": _ok("PackageVersionDetail", "These files were uploaded as this version already"),
                **_REFUSALS,
                "409": {"description": "The version number is taken by other files", **PROBLEM},
                "413": {"description": "Larger than a package may be (refused before the body is read)", **PROBLEM},
                "415": {"description": "Not sent as application/zip", **PROBLEM},
                "422": {"description": "The package is refused: the detail names the file and the reason", **PROBLEM},
            },
        },
        "get": {
            "operationId": "listVersions",
            "summary": "The uploaded versions of a plugin, newest first (its publisher and head office)",
            "description": PUBLISHER_AUTH,
            "tags": ["publishing"],
            "parameters": [_PLUGIN],
            "responses": {"200": _ok("PackageVersionList", "The versions"), **_REFUSALS},
        },
    },
    "/api/v1/publisher/plugins/{plugin_id}/versions/{version}": {
        "get": {
            "operationId": "getVersion",
            "summary": "One uploaded version with its history",
            "description": PUBLISHER_AUTH,
            "tags": ["publishing"],
            "parameters": [_PLUGIN, _VERSION],
            "responses": {"200": _ok("PackageVersionDetail", "The version"), **_REFUSALS},
        },
    },
    **{f"/api/v1/publisher/plugins/{{plugin_id}}/versions/{{version}}/{action}": _action_operation(action, "publisher")
       for action in ("submit", "retire")},
    **{f"/api/v1/review/plugins/{{plugin_id}}/versions/{{version}}/{action}": _action_operation(action, "review")
       for action in ("start_review", "approve", "reject", "suspend", "reinstate")},
    "/api/v1/review/versions": {
        "get": {
            "operationId": "reviewQueue",
            "summary": "Head office's queue: versions by status, oldest change first",
            "description": STAFF_AUTH,
            "tags": ["publishing"],
            "parameters": [{"in": "query", "name": "status", "schema": {"type": "string"},
                            "description": "Comma-separated statuses (default pre_review,in_review)"}],
            "responses": {"200": _ok("PackageVersionList", "The versions"), **_REFUSALS,
                          "422": {"description": "An unknown status", **PROBLEM}},
        },
    },
    "/api/v1/publisher/notifications": {
        "get": {
            "operationId": "listPublisherNotifications",
            "summary": "The caller's publisher's notifications (one per status change of its versions), oldest first",
            "description": PUBLISHER_AUTH,
            "tags": ["publishing"],
            "parameters": [{"in": "query", "name": "after", "schema": {"type": "integer", "minimum": 0},
                            "description": "Only notifications with a larger id"},
                           {"in": "query", "name": "limit", "schema": {"type": "integer", "minimum": 1, "maximum": 500}}],
            "responses": {"200": _ok("PublisherNotificationList", "The notifications"), **_REFUSALS,
                          "422": {"description": "after or limit out of range", **PROBLEM}},
        },
    },
    "/api/v1/staff/csrf-token": {
        "get": {
            "operationId": "staffCsrfToken",
            "summary": "The staff session's CSRF token, to send as X-CSRF-Token",
            "tags": ["publishing"],
            "responses": {"200": {"description": "The token", "content": {"application/json": {"schema": {
                "type": "object", "properties": {"csrf_token": {"type": "string"}, "header": {"type": "string"}}}}}},
                "401": {"description": "Not signed in as staff", **PROBLEM}},
        },
    },
})


#: The release actions: (operation id, summary, who).
ROLLOUT_SUMMARIES = {
    "gray": ("startGrayRelease", "Serve an approved version to the customers a rule selects (body: version, rule, "
                                 "reason); one gray version at a time"),
    "widen": ("widenGrayRelease", "Give the gray version to more customers (body: rule, which keeps everyone the "
                                  "current rule selects)"),
    "release": ("releaseVersion", "Serve the gray version to every customer; the stable one before it becomes previous"),
    "rollback": ("rollBack", "Return every customer to the version before (a gray version is taken back, else the "
                             "stable one replaced by previous), with a reason"),
    "suspend": ("suspendPlugin", "The kill switch: serve nothing of the mini-program anywhere, refuse its tokens and "
                                 "consents; hq_admin, with a reason"),
    "reinstate": ("reinstatePlugin", "Lift the kill switch; hq_admin, with a reason"),
}


def _rollout_operation(action: str) -> dict:
    operation_id, summary = ROLLOUT_SUMMARIES[action]
    return {"post": {
        "operationId": operation_id, "summary": summary, "tags": ["publishing"],
        "description": STAFF_AUTH if action in ("suspend", "reinstate") else (
            PUBLISHER_AUTH + " The publisher's branch_admin or back end, or hq_admin (never a branch_operator)."),
        "parameters": [_PLUGIN],
        "requestBody": {"required": action in ("gray", "widen"),
                        "content": {"application/json": {"schema": "ReleaseAction"}}},
        "responses": {"200": _ok("Release", "What customers get now"), **_REFUSALS,
                      "409": {"description": "Not possible now (no gray version, one already, suspended, nothing "
                                             "to return to, not yet release_at), or changed meanwhile", **PROBLEM},
                      "413": {"description": "A body over 64 KiB", **PROBLEM},
                      "415": {"description": "A body that is not JSON", **PROBLEM},
                      "422": {"description": "A bad rule, version or reason (errors name the field)", **PROBLEM}},
    }}


def _promotion_operation(action: str, summary: str) -> dict:
    return {"post": {
        "operationId": f"{action}Promotion", "summary": summary, "tags": ["publishing"], "description": STAFF_AUTH,
        "parameters": [_PLUGIN],
        "requestBody": {"required": action in ("propose", "decline", "withdraw"),
                        "content": {"application/json": {"schema": "ReleaseAction"}}},
        "responses": {"200": _ok("Promotion", "The promotion now"), **_REFUSALS,
                      "409": {"description": "Not from its status, not a branch's mini-program, or changed meanwhile",
                              **PROBLEM},
                      "415": {"description": "A body that is not JSON", **PROBLEM},
                      "422": {"description": "A missing or bad reason", **PROBLEM}},
    }}


OPERATIONS.update({
    "/api/v1/publisher/plugins/{plugin_id}/rollout": {
        "get": {
            "operationId": "getRelease",
            "summary": "Which versions the plugin's customers get: stable, gray with its rule, previous, suspended",
            "description": PUBLISHER_AUTH,
            "tags": ["publishing"],
            "parameters": [_PLUGIN],
            "responses": {"200": _ok("Release", "The release"), **_REFUSALS},
        },
    },
    **{f"/api/v1/publisher/plugins/{{plugin_id}}/rollout/{action}": _rollout_operation(action)
       for action in ("gray", "widen", "release", "rollback")},
    **{f"/api/v1/review/plugins/{{plugin_id}}/{action}": _rollout_operation(action) for action in ("suspend", "reinstate")},
    "/api/v1/publisher/plugins/{plugin_id}/promotion": {
        "get": {
            "operationId": "getPromotion",
            "summary": "Whether a branch's mini-program is proposed, approved, declined or withdrawn for the whole bank",
            "description": PUBLISHER_AUTH,
            "tags": ["publishing"],
            "parameters": [_PLUGIN],
            "responses": {"200": _ok("Promotion", "The promotion (status null: never proposed)"), **_REFUSALS},
        },
    },
    **{path: _promotion_operation(action, summary) for action, path, summary in (
        ("propose", "/api/v1/publisher/plugins/{plugin_id}/promotion/propose",
         "Propose a branch's mini-program for every branch (its branch_admin, with a reason)"),
        ("approve", "/api/v1/review/plugins/{plugin_id}/promotion/approve",
         "Offer a proposed mini-program to every branch (hq_admin)"),
        ("decline", "/api/v1/review/plugins/{plugin_id}/promotion/decline",
         "Decline a proposal, with a reason (hq_admin)"),
        ("withdraw", "/api/v1/review/plugins/{plugin_id}/promotion/withdraw",
         "Stop offering it to further branches, with a reason (hq_admin)"))},
})


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
    spec.components.schema("PackageVersionDetail", schema=PackageVersionDetailSchema)
    spec.components.schema("PackageVersionList", schema=PackageVersionListSchema)
    spec.components.schema("VersionAction", schema=VersionActionSchema)
    spec.components.schema("PublisherNotificationList", schema=PublisherNotificationListSchema)
    spec.components.schema("Release", schema=ReleaseSchema)
    spec.components.schema("Promotion", schema=PromotionSchema)
    spec.components.schema("ReleaseAction", schema=ReleaseActionSchema)
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
