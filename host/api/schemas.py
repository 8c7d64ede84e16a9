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
