"""``/api/v1/publisher/plugins/<id>/rollout`` and ``/api/v1/review/plugins/<id>/suspend|reinstate``:
which versions customers get — gray release, widening, release, rollback — and head office's
kill switch; ``.../promotion``: a branch's proposal for the whole bank and head office's
decision (docs/publishing.md).

Callers authenticate as for the rest of publishing (:func:`.publishing.authenticated`); every
rule is in :mod:`host.publishing.releases`. Each request is one transaction; a refusal changes
nothing, answers with a problem document and is audited.
"""

from __future__ import annotations

from typing import Callable

from flask import jsonify
from marshmallow import RAISE

from .. import db
from ..problems import Problem, validation_problem
from ..publishing import promotion, releases, services
from ..publishing.models import PluginPromotion
from ..publishing.actors import Actor
from ..publishing.errors import NotAllowed
from ..runtime import get_runtime
from ..runtime.models import PluginRecord
from . import bp
from .publishing import action_body, authenticated, check_names, refusals
from .schemas import PromotionSchema, ReleaseActionSchema, ReleaseSchema

#: The largest body of a release action (a rule lists at most 200 entries of each kind).
MAX_BODY = 64 * 1024


class _StrictReleaseAction(ReleaseActionSchema):
    class Meta:
        unknown = RAISE


def _body() -> dict:
    """The JSON body of a release action (``version``, ``rule``, ``reason``), or {} without one."""
    return action_body(_StrictReleaseAction(), MAX_BODY)


def _baseline(plugin_id: str) -> str | None:
    return releases.baseline(get_runtime(), plugin_id)


def _answer(plugin_id: str):
    found = releases.serving(db.session(), plugin_id, _baseline(plugin_id))
    return jsonify(ReleaseSchema().dump(found.as_json())), 200, {"Cache-Control": "no-store"}


def _readable(actor: Actor, plugin_id: str) -> None:
    record = db.session().get(PluginRecord, plugin_id)
    if record is None:
        raise Problem(404, "No such plugin", f"No plugin {plugin_id!r} is known.")
    if not services.may_read(actor, record.publisher_kind, record.publisher_id):
        raise NotAllowed("only the plugin's publisher and head office see its release")


def _read(actor: Actor, plugin_id: str, answer: Callable[[str], object]):
    """``answer(plugin_id)`` for the plugin's publisher and head office; a refusal otherwise."""
    check_names(plugin_id)
    with refusals(actor, "read", plugin_id):
        _readable(actor, plugin_id)
    return answer(plugin_id)


@bp.get("/publisher/plugins/<plugin_id>/rollout")
@authenticated(partners=True)
def rollout(actor: Actor, plugin_id: str):
    """Which versions the plugin's customers get now."""
    return _read(actor, plugin_id, _answer)


#: Each action: (the body fields it takes, what it calls).
ACTIONS: dict[str, tuple[frozenset[str], Callable[..., object]]] = {
    "gray": (frozenset({"version", "rule", "reason"}), lambda session, actor, plugin_id, body: releases.start_gray(
        session, actor, plugin_id, _required(body, "version"), rule=body.get("rule"), reason=body.get("reason", ""),
        baseline=_baseline(plugin_id))),
    "widen": (frozenset({"rule", "reason"}), lambda session, actor, plugin_id, body: releases.widen(
        session, actor, plugin_id, rule=body.get("rule"), reason=body.get("reason", ""))),
    "release": (frozenset({"reason"}), lambda session, actor, plugin_id, body: releases.release(
        session, actor, plugin_id, reason=body.get("reason", ""))),
    "rollback": (frozenset({"reason"}), lambda session, actor, plugin_id, body: releases.rollback(
        session, actor, plugin_id, reason=body.get("reason", ""))),
    "suspend": (frozenset({"reason"}), lambda session, actor, plugin_id, body: releases.suspend(
        session, actor, plugin_id, reason=body.get("reason", ""))),
    "reinstate": (frozenset({"reason"}), lambda session, actor, plugin_id, body: releases.reinstate(
        session, actor, plugin_id, reason=body.get("reason", ""))),
}
#: Where each is: the publisher's (and head office's) rollout, and head office's kill switch.
ROLLOUT_ACTIONS = ("gray", "widen", "release", "rollback")
HEAD_OFFICE_ACTIONS = ("suspend", "reinstate")


def _required(body: dict, name: str) -> str:
    value = body.get(name)
    if not value:
        raise validation_problem({name: ["required for this action"]})
    return value


def _act(actor: Actor, plugin_id: str, action: str):
    check_names(plugin_id)
    fields, run = ACTIONS[action]
    body = _body()
    extra = sorted(set(body) - fields)
    if extra:
        raise validation_problem({name: [f"not taken by {action}"] for name in extra})
    with refusals(actor, action, plugin_id, body.get("version")):
        if db.session().get(PluginRecord, plugin_id) is None:
            raise Problem(404, "No such plugin", f"No plugin {plugin_id!r} is known.")
        run(db.session(), actor, plugin_id, body)
    return _answer(plugin_id)


for _action in ROLLOUT_ACTIONS:
    bp.add_url_rule(f"/publisher/plugins/<plugin_id>/rollout/{_action}", f"rollout_{_action}",
                    authenticated(partners=True)(_act), methods=["POST"], defaults={"action": _action})
for _action in HEAD_OFFICE_ACTIONS:
    bp.add_url_rule(f"/review/plugins/<plugin_id>/{_action}", f"plugin_{_action}",
                    authenticated(partners=False)(_act), methods=["POST"], defaults={"action": _action})


# -- promotion to the whole bank -----------------------------------------------------------------


def _promotion_answer(plugin_id: str):
    row = db.session().get(PluginPromotion, plugin_id)
    return jsonify(PromotionSchema().dump(promotion.document(row, plugin_id))), 200, {"Cache-Control": "no-store"}


@bp.get("/publisher/plugins/<plugin_id>/promotion")
@authenticated(partners=True)
def promotion_state(actor: Actor, plugin_id: str):
    """Whether the plugin is proposed, approved, declined or withdrawn for the whole bank."""
    return _read(actor, plugin_id, _promotion_answer)


#: Promotion actions: (path, endpoint, who may call, what it calls).
PROMOTION_ACTIONS = {
    "propose": ("/publisher/plugins/<plugin_id>/promotion/propose", promotion.propose),
    "approve": ("/review/plugins/<plugin_id>/promotion/approve", promotion.approve),
    "decline": ("/review/plugins/<plugin_id>/promotion/decline", promotion.decline),
    "withdraw": ("/review/plugins/<plugin_id>/promotion/withdraw", promotion.withdraw),
}


def _promote(actor: Actor, plugin_id: str, action: str):
    check_names(plugin_id)
    body = _body()
    extra = sorted(set(body) - {"reason"})
    if extra:
        raise validation_problem({name: [f"not taken by {action}"] for name in extra})
    with refusals(actor, f"{action}_promotion", plugin_id):
        PROMOTION_ACTIONS[action][1](db.session(), actor, plugin_id, reason=body.get("reason", ""))
    return _promotion_answer(plugin_id)


for _action, (_path, _function) in PROMOTION_ACTIONS.items():
    # Staff only: branches propose from the console's session, head office decides.
    bp.add_url_rule(_path, f"promotion_{_action}", authenticated(partners=False)(_promote), methods=["POST"],
                    defaults={"action": _action})
