"""``/api/v1/plugins``: the plugin registry, read-only."""

from __future__ import annotations

from flask import jsonify, request
from marshmallow import RAISE, ValidationError, validate

from .. import db
from ..problems import Problem, validation_problem
from ..runtime.models import PluginRecord, PluginState, PluginVersion
from ..runtime.registry import list_plugins
from ..storefront.services import is_plugin_id
from . import bp
from .schemas import ListQuerySchema, PluginDetailSchema, PluginListSchema


class _StrictListQuery(ListQuerySchema):
    class Meta:
        unknown = RAISE


_query_schema = _StrictListQuery()
_query_schema.fields["kind"].validators.append(validate.OneOf(["bank", "branch", "partner"]))
_query_schema.fields["state"].validators.append(validate.OneOf(list(PluginState.ALL)))


def _version(version: PluginVersion) -> dict:
    return {
        "version": version.version,
        "state": version.state,
        "state_reason": version.state_reason,
        "checksum": version.checksum,
        "scopes": list(version.manifest.get("scopes", [])),
        "approved_scopes": list(version.approved_scopes),
        "registered_at": version.registered_at,
    }


def _plugin(record: PluginRecord, *, versions: bool = False) -> dict:
    data = {
        "id": record.id,
        "name": record.name,
        "publisher": {"kind": record.publisher_kind, "id": record.publisher_id},
        "latest": _version(record.versions[-1]),
    }
    if versions:
        data["versions"] = [_version(v) for v in record.versions]
    return data


@bp.get("/plugins")
def plugin_list():
    """List registered plugins with their newest version."""
    try:
        query = _query_schema.load(request.args)
    except ValidationError as exc:
        raise validation_problem(exc.messages, "The query string has invalid parameters; see 'errors'.") from None
    items = [
        _plugin(record)
        for record in list_plugins(db.session())
        if record.versions
        and query.get("kind", record.publisher_kind) == record.publisher_kind
        and query.get("state", record.versions[-1].state) == record.versions[-1].state
    ]
    return jsonify(PluginListSchema().dump({"items": items, "count": len(items)}))


@bp.get("/plugins/<plugin_id>")
def plugin_detail(plugin_id: str):
    """One plugin with every registered version."""
    record = db.session().get(PluginRecord, plugin_id) if is_plugin_id(plugin_id) else None
    if record is None or not record.versions:
        raise Problem(404, "No such plugin", f"No plugin {plugin_id[:64]!r} is registered.")
    return jsonify(PluginDetailSchema().dump(_plugin(record, versions=True)))
