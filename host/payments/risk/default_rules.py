"""The risk centre's default rules, registered as a default plugin on the app's plugin manager.

Amounts are whole minor units per ISO 4217 currency (fen for CNY). A currency missing from a
rule's per-currency table has no limit under that rule: that rule allows it (the other rules
still run). docs/risk.md lists the defaults and why.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from typing import Any, Mapping
from zoneinfo import ZoneInfo

from canopy_sdk.markers import hookimpl
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import bindparam, case, func, select
from sqlalchemy.orm import Session

from ..models import IntentState, PaymentIntent
from ..money import format_amount
from .models import KnownDevice, RiskDecision
from .rules import CHALLENGE, DENY, OVERALL, PaymentAttempt, RiskRule, Verdict
from .params import PerCurrencyAmounts, below_limits, count, time_zone_field

#: A week, the longest velocity window.
MAX_WINDOW_MINUTES = 7 * 24 * 60
MAX_ATTEMPTS = 10_000


# -- single payment limit -----------------------------------------------------------------


class SinglePaymentParams(Schema):
    limits = PerCurrencyAmounts(required=True)
    challenge_above = PerCurrencyAmounts(required=True)

    @validates_schema
    def _challenge_below_limit(self, data: dict, **kwargs: Any) -> None:
        below_limits(data["challenge_above"], data["limits"], "challenge_above")


def single_payment_limit(session: Session, attempt: PaymentAttempt, params: Mapping[str, Any]) -> Verdict | None:
    """Deny a payment above the currency's limit; challenge one above ``challenge_above``."""
    limit = params["limits"].get(attempt.currency)
    detail = {"amount": attempt.amount, "currency": attempt.currency, "limit": limit}
    if limit is not None and attempt.amount > limit:
        return Verdict(DENY, "single_payment_limit",
                       f"Above the single-payment limit of {format_amount(limit, attempt.currency)}.", detail)
    threshold = params["challenge_above"].get(attempt.currency)
    if threshold is not None and attempt.amount > threshold:
        return Verdict(CHALLENGE, "single_payment_limit",
                       f"A payment above {format_amount(threshold, attempt.currency)} needs extra confirmation.",
                       {**detail, "challenge_above": threshold})
    return None


# -- daily limit --------------------------------------------------------------------------


class DailyLimitParams(Schema):
    limits = PerCurrencyAmounts(required=True)
    time_zone = time_zone_field()


def bank_day(at: datetime, zone: str) -> tuple[datetime, datetime]:
    """The bank day holding ``at``, in ``zone``, as [start, end) in UTC."""
    local = at.astimezone(ZoneInfo(zone))
    start = datetime.combine(local.date(), time(0), tzinfo=local.tzinfo)
    end = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=local.tzinfo)
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


_INTENTS = PaymentIntent.__table__
_PAID_TODAY = select(func.coalesce(func.sum(_INTENTS.c.amount), 0)).where(
    _INTENTS.c.customer_id == bindparam("customer"), _INTENTS.c.currency == bindparam("currency"),
    _INTENTS.c.state == IntentState.SUCCEEDED, _INTENTS.c.created_at >= bindparam("start"),
    _INTENTS.c.created_at < bindparam("end"))


def paid_today(session: Session, customer_id: str, currency: str, at: datetime, zone: str) -> int:
    """What the customer paid in ``currency`` on the bank day of ``at``: succeeded intents created that day."""
    start, end = bank_day(at, zone)
    total = session.connection().execute(_PAID_TODAY, {"customer": customer_id, "currency": currency, "start": start,
                                                       "end": end}).scalar()
    return int(total or 0)


def daily_limit(session: Session, attempt: PaymentAttempt, params: Mapping[str, Any]) -> Verdict | None:
    """Deny when today's succeeded payments plus this one would pass the currency's daily limit."""
    limit = params["limits"].get(attempt.currency)
    if limit is None:
        return None
    spent = paid_today(session, attempt.customer_id, attempt.currency, attempt.at, params["time_zone"])
    if spent + attempt.amount > limit:
        left = max(limit - spent, 0)
        return Verdict(DENY, "daily_limit",
                       f"Above the daily limit of {format_amount(limit, attempt.currency)}; "
                       f"{format_amount(left, attempt.currency)} left today.",
                       {"amount": attempt.amount, "currency": attempt.currency, "limit": limit, "spent": spent})
    return None


# -- velocity -----------------------------------------------------------------------------


class VelocityParams(Schema):
    window_minutes = count(1, MAX_WINDOW_MINUTES)
    challenge_above = count(0, MAX_ATTEMPTS)
    deny_above = count(0, MAX_ATTEMPTS)

    @validates_schema
    def _deny_not_below_challenge(self, data: dict, **kwargs: Any) -> None:
        if data["deny_above"] < data["challenge_above"]:
            raise ValidationError({"deny_above": ["must not be below challenge_above"]})


_DECISIONS = RiskDecision.__table__
#: Earlier attempts in the window, counted only as far as the rule needs to know (its deny threshold):
#: the work stays bounded however busy the customer is.
_ATTEMPTS = select(func.count()).select_from(
    select(_DECISIONS.c.id).where(
        _DECISIONS.c.customer_id == bindparam("customer"), _DECISIONS.c.rule == OVERALL,
        _DECISIONS.c.at > bindparam("since"), _DECISIONS.c.at <= bindparam("at"),
    ).limit(bindparam("cap")).subquery())


def velocity(session: Session, attempt: PaymentAttempt, params: Mapping[str, Any]) -> Verdict | None:
    """Challenge (deny) when this attempt makes more than ``challenge_above`` (``deny_above``)
    attempts by the customer within the last ``window_minutes``; earlier attempts are the
    risk centre's own "overall" records (counted up to ``deny_above`` + 1: past that the
    answer is the same)."""
    window = params["window_minutes"]
    earlier = session.connection().execute(_ATTEMPTS, {
        "customer": attempt.customer_id, "since": attempt.at - timedelta(minutes=window), "at": attempt.at,
        "cap": params["deny_above"] + 1}).scalar() or 0
    attempts = earlier + 1
    detail = {"attempts": attempts, "window_minutes": window}
    if attempts > params["deny_above"]:
        return Verdict(DENY, "velocity", f"Too many payment attempts in {window} minutes; try again later.", detail)
    if attempts > params["challenge_above"]:
        return Verdict(CHALLENGE, "velocity", f"Many payment attempts in {window} minutes; confirm it is you.", detail)
    return None


# -- new device ---------------------------------------------------------------------------


class NewDeviceParams(Schema):
    decision = fields.String(required=True, validate=validate.OneOf([CHALLENGE, DENY]))


_KNOWN = KnownDevice.__table__
#: How many devices the customer paid from, and whether this is one of them.
_DEVICES = select(func.count(), func.coalesce(func.sum(case((_KNOWN.c.device == bindparam("device"), 1), else_=0)), 0)
                  ).where(_KNOWN.c.customer_id == bindparam("customer"))


def new_device(session: Session, attempt: PaymentAttempt, params: Mapping[str, Any]) -> Verdict | None:
    """Challenge (or, as configured, deny) a payment from a device the customer never paid from."""
    known, this = session.connection().execute(_DEVICES, {"customer": attempt.customer_id,
                                                           "device": attempt.device}).one()
    if this:
        return None
    if not known:
        return Verdict(params["decision"], "new_device", "No device is on record for you yet; confirm it is you.",
                       {"known_devices": 0})
    return Verdict(params["decision"], "new_device", "A device you have not paid from before; confirm it is you.",
                   {"known_devices": known})


# -- blocked merchant ---------------------------------------------------------------------


class BlockedMerchantParams(Schema):
    merchants = fields.List(
        fields.String(validate=validate.Regexp(r"^(bank|branch|partner):[A-Za-z0-9._-]{1,64}$",
                                               error="must be a merchant such as partner:CITYPOWER")),
        required=True, validate=validate.Length(max=1000),
    )
    plugins = fields.List(
        fields.String(validate=validate.Regexp(r"^[a-z0-9.-]{3,64}$", error="must be a mini-program id")),
        required=True, validate=validate.Length(max=1000),
    )


def blocked_merchant(session: Session, attempt: PaymentAttempt, params: Mapping[str, Any]) -> Verdict | None:
    """Deny payments to a blocked merchant, or to a blocked mini-program."""
    if attempt.merchant in params["merchants"]:
        return Verdict(DENY, "blocked_merchant", "The bank does not accept payments to this merchant.",
                       {"merchant": attempt.merchant})
    if attempt.plugin_id in params["plugins"]:
        return Verdict(DENY, "blocked_merchant", "The bank does not accept payments through this mini-program.",
                       {"plugin_id": attempt.plugin_id})
    return None


# -- the defaults, as a plugin ------------------------------------------------------------

#: CNY 50,000 per payment (and the like in the other main currencies); extra confirmation above CNY 10,000.
SINGLE_PAYMENT_DEFAULTS = {
    "limits": {"CNY": 5_000_000, "HKD": 5_500_000, "USD": 700_000, "EUR": 650_000},
    "challenge_above": {"CNY": 1_000_000, "HKD": 1_100_000, "USD": 140_000, "EUR": 130_000},
}
#: CNY 200,000 a bank day (Asia/Shanghai).
DAILY_DEFAULTS = {
    "limits": {"CNY": 20_000_000, "HKD": 22_000_000, "USD": 2_800_000, "EUR": 2_600_000},
    "time_zone": "Asia/Shanghai",
}
#: More than 5 attempts in 10 minutes: challenge; more than 10: deny.
VELOCITY_DEFAULTS = {"window_minutes": 10, "challenge_above": 5, "deny_above": 10}

RULES = [
    RiskRule("single_payment_limit", "Largest amount of one payment, per currency; extra confirmation above a lower threshold.",
             SINGLE_PAYMENT_DEFAULTS, single_payment_limit, SinglePaymentParams),
    RiskRule("daily_limit", "Largest total a customer pays in one bank day, per currency.",
             DAILY_DEFAULTS, daily_limit, DailyLimitParams),
    RiskRule("velocity", "Payment attempts by one customer within a few minutes.",
             VELOCITY_DEFAULTS, velocity, VelocityParams),
    RiskRule("new_device", "A payment from a device the customer has not paid from before.",
             {"decision": CHALLENGE}, new_device, NewDeviceParams),
    RiskRule("blocked_merchant", "Merchants and mini-programs the bank accepts no payments to.",
             {"merchants": [], "plugins": []}, blocked_merchant, BlockedMerchantParams),
]


@hookimpl
def canopy_risk_rules() -> list[RiskRule]:
    return RULES
