"""Marshmallow schemas of the /api/v1 documents; the OpenAPI document is generated from them."""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields


class LocalizedText(Schema):
    zh = fields.String(required=True)
    en = fields.String(required=True)


class PublisherSchema(Schema):
    kind = fields.String(required=True, metadata={"enum": ["bank", "branch", "partner"]})
    id = fields.String(required=True)


class PluginVersionSchema(Schema):
    version = fields.String(required=True)
    state = fields.String(required=True, metadata={"enum": ["active", "refused", "disabled"]})
    state_reason = fields.String(metadata={"description": "Why the version is not active, if it is not."})
    checksum = fields.String(required=True, metadata={"description": "sha256 of the version's files"})
    scopes = fields.List(fields.String(), required=True, metadata={"description": "Scopes the manifest requests"})
    approved_scopes = fields.List(fields.String(), required=True)
    registered_at = fields.DateTime(required=True)


class PluginSchema(Schema):
    id = fields.String(required=True)
    name = fields.Nested(LocalizedText, required=True)
    publisher = fields.Nested(PublisherSchema, required=True)
    latest = fields.Nested(PluginVersionSchema, required=True, metadata={"description": "The newest registered version"})


class PluginDetailSchema(PluginSchema):
    versions = fields.List(fields.Nested(PluginVersionSchema), required=True)


class PluginListSchema(Schema):
    items = fields.List(fields.Nested(PluginSchema), required=True)
    count = fields.Integer(required=True)


class ListQuerySchema(Schema):
    kind = fields.String(metadata={"enum": ["bank", "branch", "partner"], "description": "Only this publisher kind"})
    state = fields.String(metadata={"enum": ["active", "refused", "disabled"], "description": "Only plugins whose newest version is in this state"})


class ProblemSchema(Schema):
    class Meta:
        unknown = INCLUDE  # RFC 9457 extension members (``allow``, a problem type's own fields)

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String()
    instance = fields.String()
    errors = fields.Dict(metadata={"description": "Per-field messages, for validation problems"})


class HealthSchema(Schema):
    status = fields.String(required=True)
    checks = fields.Dict(keys=fields.String(), values=fields.String(), metadata={"description": "Each readiness check's result"})


class SearchQuerySchema(Schema):
    q = fields.String(metadata={"description": "What to find, 0-100 characters after trimming; empty lists every "
                                               "mini-program of the branch", "maxLength": 100})
    branch = fields.String(metadata={"description": "The branch whose storefront is searched; default: the signed-in "
                                                    "customer's home branch, else head office", "maxLength": 16})
    lang = fields.String(metadata={"enum": ["zh-CN", "en"], "description": "The language of names and summaries"})


class SearchResultSchema(Schema):
    kind = fields.String(required=True, metadata={"enum": ["miniprogram", "service"],
                                                  "description": "A mini-program, or a service one offers (canopy_search)"})
    plugin_id = fields.String(required=True)
    plugin_name = fields.String(required=True)
    title = fields.String(required=True)
    summary = fields.String(required=True)
    url = fields.String(required=True, metadata={"description": "The page to open, with the branch and language"})
    score = fields.Float(required=True, metadata={"minimum": 0, "maximum": 1})
    matched = fields.String(required=True, metadata={"enum": ["name", "keyword", "description", "words", "plugin", "all"]})


class SearchResultsSchema(Schema):
    query = fields.String(required=True, metadata={"description": "The query as searched (trimmed)"})
    branch = fields.String(required=True)
    locale = fields.String(required=True)
    count = fields.Integer(required=True)
    items = fields.List(fields.Nested(SearchResultSchema), required=True, metadata={"description": "Best first"})
    unavailable = fields.List(fields.String(), required=True,
                              metadata={"description": "Plugins whose search failed this time (their hits are missing)"})


# -- publishing (docs/publishing.md) ---------------------------------------------------------

VERSION_STATUSES = ["draft", "submitted", "pre_review", "in_review", "approved", "gray", "released", "rolled_back",
                    "suspended", "retired", "rejected"]


class VersionTransitionSchema(Schema):
    action = fields.String(required=True)
    from_status = fields.String(required=True, allow_none=True, metadata={"enum": VERSION_STATUSES})
    to_status = fields.String(required=True, metadata={"enum": VERSION_STATUSES})
    actor = fields.String(required=True, metadata={"description": "staff:<username>, client:<client id> or system:precheck"})
    reason = fields.String(required=True)
    at = fields.DateTime(required=True)


class PackageVersionSchema(Schema):
    plugin_id = fields.String(required=True)
    version = fields.String(required=True)
    publisher = fields.Nested(PublisherSchema, required=True)
    status = fields.String(required=True, metadata={"enum": VERSION_STATUSES})
    status_reason = fields.String(required=True, metadata={"description": "The reason given with the last change"})
    checksum = fields.String(required=True, metadata={"description": "The folder checksum the registry records"})
    archive_sha256 = fields.String(required=True, metadata={"description": "SHA-256 of the uploaded archive"})
    size = fields.Integer(required=True, metadata={"description": "All files, decompressed, in bytes"})
    scopes = fields.List(fields.String(), required=True, metadata={"description": "Scopes the manifest requests"})
    release_at = fields.DateTime(required=True, allow_none=True)
    uploaded_by = fields.String(required=True)
    uploaded_at = fields.DateTime(required=True)
    submitted_by = fields.String(required=True, allow_none=True)
    reviewed_by = fields.String(required=True, allow_none=True)
    updated_at = fields.DateTime(required=True)
    actions = fields.List(fields.String(), required=True,
                          metadata={"description": "What the caller may do to this version now"})


class PackageVersionDetailSchema(PackageVersionSchema):
    history = fields.List(fields.Nested(VersionTransitionSchema), required=True, metadata={"description": "Oldest first"})


class PackageVersionListSchema(Schema):
    items = fields.List(fields.Nested(PackageVersionSchema), required=True)
    count = fields.Integer(required=True)


class VersionActionSchema(Schema):
    reason = fields.String(metadata={"description": "Why; required to reject, suspend and reinstate. At most 1000 "
                                                    "characters, no control characters but line breaks and tabs"})
    release_at = fields.AwareDateTime(metadata={"description": "approve only: not released before this time "
                                                               "(ISO 8601 with a time zone, in the future)"})


class PublisherNotificationSchema(Schema):
    id = fields.Integer(required=True)
    plugin_id = fields.String(required=True)
    version = fields.String(required=True)
    action = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": VERSION_STATUSES})
    message = fields.String(required=True)
    created_at = fields.DateTime(required=True)


class PublisherNotificationListSchema(Schema):
    items = fields.List(fields.Nested(PublisherNotificationSchema), required=True, metadata={"description": "Oldest first"})
    count = fields.Integer(required=True)
