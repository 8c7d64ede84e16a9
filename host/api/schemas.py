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

VERSION_STATUSES = ["draft", "submitted", "pre_review", "in_review", "approved", "gray", "released", "superseded",
                    "rolled_back", "suspended", "retired", "rejected"]


class VersionTransitionSchema(Schema):
    action = fields.String(required=True)
    from_status = fields.String(required=True, allow_none=True, metadata={"enum": VERSION_STATUSES})
    to_status = fields.String(required=True, metadata={"enum": VERSION_STATUSES})
    actor = fields.String(required=True, metadata={"description": "staff:<username>, client:<client id> or system:precheck"})
    reason = fields.String(required=True)
    at = fields.DateTime(required=True)


class PreReviewFindingSchema(Schema):
    level = fields.String(required=True, metadata={"enum": ["failure", "warning"]})
    code = fields.String(required=True, metadata={"description": "A stable name of the finding, e.g. template_missing"})
    message = fields.String(required=True)


_OUTCOME = {"enum": ["pass", "warn", "fail", "not_run"]}


class PreReviewSectionSchema(Schema):
    """One section of the report (docs/publishing.md, "The automated pre-review")."""

    outcome = fields.String(required=True, metadata=_OUTCOME)
    findings = fields.List(fields.Nested(PreReviewFindingSchema), required=True)
    reason = fields.String(metadata={"description": "Why the section was not run"})
    findings_left_out = fields.Integer(metadata={"description": "Findings past the 50 kept"})


class AddedScopeSchema(Schema):
    scope = fields.String(required=True)
    sensitivity = fields.String(required=True, allow_none=True, metadata={"enum": ["low", "medium", "high"]})
    needs_consent = fields.Boolean(required=True, allow_none=True)
    flagged = fields.Boolean(required=True, metadata={"description": "High sensitivity (or unknown): look closely"})


class PreReviewScopesSchema(PreReviewSectionSchema):
    compared_with = fields.String(required=True, allow_none=True, metadata={"description": "The version compared with"})
    basis = fields.String(required=True, metadata={"enum": ["approved", "registered", "none"]})
    added = fields.List(fields.Nested(AddedScopeSchema), required=True)
    removed = fields.List(fields.String(), required=True)
    unchanged = fields.List(fields.String(), required=True)


class BudgetMeasureSchema(Schema):
    name = fields.String(required=True, metadata={"enum": ["total_bytes", "files", "largest_file_bytes", "pages"]})
    value = fields.Integer(required=True)
    limit = fields.Integer(required=True)
    ok = fields.Boolean(required=True)
    path = fields.String(metadata={"description": "The largest file"})


class PreReviewBudgetsSchema(PreReviewSectionSchema):
    measures = fields.List(fields.Nested(BudgetMeasureSchema), required=True)


class SmokeCallSchema(Schema):
    hook = fields.String(required=True, metadata={"enum": ["canopy_storefront_tiles", "canopy_page"]})
    path = fields.String(required=True, allow_none=True, metadata={"description": "The page's path (canopy_page)"})
    result = fields.String(required=True, metadata={
        "enum": ["ok", "error", "timeout", "invalid", "not_implemented", "skipped"]})
    message = fields.String(required=True)


class PreReviewSmokeSchema(PreReviewSectionSchema):
    hooks = fields.List(fields.String(), required=True, metadata={"description": "Hooks the plugin implements"})
    calls = fields.List(fields.Nested(SmokeCallSchema), required=True)
    locale = fields.String()


class PreReviewTestsSchema(PreReviewSectionSchema):
    found = fields.Boolean(required=True, metadata={"description": "Whether the package has a tests/ folder"})


class PreReviewReportSchema(Schema):
    format = fields.Integer(required=True, metadata={"description": "1"})
    passed = fields.Boolean(required=True)
    checked_at = fields.String(required=True, metadata={"description": "ISO 8601, UTC"})
    problems = fields.List(fields.String(), required=True, metadata={"description": "Failures: why it did not pass"})
    warnings = fields.List(fields.String(), required=True, metadata={"description": "For the reviewer's attention"})
    integrity = fields.Nested(PreReviewSectionSchema, required=True)
    manifest = fields.Nested(PreReviewSectionSchema, required=True)
    scopes = fields.Nested(PreReviewScopesSchema, required=True)
    budgets = fields.Nested(PreReviewBudgetsSchema, required=True)
    smoke = fields.Nested(PreReviewSmokeSchema, required=True)
    tests = fields.Nested(PreReviewTestsSchema, required=True)


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
    prereview = fields.Nested(PreReviewReportSchema, required=True, allow_none=True,
                              metadata={"description": "The automated pre-review's report (null before submission)"})
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


# -- releases (docs/publishing.md) -----------------------------------------------------------


class GrayRuleSchema(Schema):
    branches = fields.List(fields.String(), required=True, metadata={"description": "Customers of these branches "
                                                                                   "(their home branch; anonymous visitors: the storefront's)"})
    tags = fields.List(fields.String(), required=True, metadata={"description": "Customers holding any of these tags"})
    testers = fields.List(fields.String(), required=True, metadata={"description": "These customers (ids)"})
    percent = fields.Float(required=True, metadata={"description": "This share of all customers, 0-100, at most two "
                                                                   "decimals; stable per customer"})


class ReleaseSchema(Schema):
    plugin_id = fields.String(required=True)
    stable = fields.String(required=True, allow_none=True, metadata={"description": "Every customer's version"})
    gray = fields.String(required=True, allow_none=True, metadata={"description": "The version in gray release"})
    gray_rule = fields.Nested(GrayRuleSchema, required=True, allow_none=True)
    previous = fields.String(required=True, allow_none=True, metadata={"description": "What a rollback returns to"})
    suspended = fields.Boolean(required=True, metadata={"description": "Head office's kill switch is on"})
    suspended_reason = fields.String(required=True, allow_none=True)


class PromotionSchema(Schema):
    plugin_id = fields.String(required=True)
    status = fields.String(required=True, allow_none=True,
                           metadata={"enum": ["proposed", "approved", "declined", "withdrawn", None]})
    proposed_by = fields.String()
    proposal = fields.String()
    proposed_at = fields.DateTime()
    decided_by = fields.String(allow_none=True)
    decision = fields.String(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)


class ReleaseActionSchema(Schema):
    version = fields.String(metadata={"description": "gray only: the approved version to start"})
    rule = fields.Dict(metadata={"description": "gray and widen: who gets the gray version (GrayRule)"})
    reason = fields.String(metadata={"description": "Why; required to roll back, suspend and reinstate"})
