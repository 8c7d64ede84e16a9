"""The core-banking rail: where a customer's money comes from before it is in the ledger.

The bank's core-banking system holds the customer's deposit account; a *rail* moves money
from it into their payment account in Canopy's ledger (a top-up). The rail is a host-side
hook, ``canopy_payment_rail`` (first answer wins): the bank's own trusted extension answers
with its rail; when none does, the default plugin answers with :class:`SimulatedRail` — the
built-in ledger as the rail, which creates the money it is asked for. It is what the demo and
the tests use, and it says so in every transfer it makes.

:func:`top_up` asks the rail first, then posts the transfer (clearing → customer) in the
caller's transaction. A real rail must treat the ``reference`` as its idempotency key, so a
top-up retried after a crash between the rail's answer and the commit never debits twice;
reconciliation finds such a top-up by that reference in the rail's records.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from canopy_sdk import payment_rules
from canopy_sdk.markers import hookimpl
from sqlalchemy.orm import Session

from . import ledger
from .models import Transfer

_NAME_SIZE = 32
_REFERENCE_SIZE = 64


class RailRefused(Exception):
    """The rail refused to move the money (e.g. the deposit account holds too little); the reason says why."""


@runtime_checkable
class PaymentRail(Protocol):
    """What a rail provides (host-side, trusted code only)."""

    #: Short name shown in transfer descriptions and statements, e.g. ``core-banking``.
    name: str

    def debit(self, customer_id: str, amount: int, currency: str, reference: str) -> str:
        """Take ``amount`` minor units of ``currency`` from the customer's deposit account into the
        bank's clearing account; return the rail's own reference for it. ``reference`` is
        Canopy's, unique per top-up: the same reference again must not debit again. Raise
        :class:`RailRefused` with a reason the customer may read when it cannot."""


class SimulatedRail:
    """The built-in ledger as the rail: every debit succeeds and the money is created in clearing.

    Clearly not a bank: for the demo, development and tests only.
    """

    name = "simulated"

    def debit(self, customer_id: str, amount: int, currency: str, reference: str) -> str:
        """Accept at once; the rail's reference is ``sim-`` and Canopy's own."""
        return f"sim-{reference}"


SIMULATED = SimulatedRail()


@hookimpl(trylast=True)
def canopy_payment_rail() -> PaymentRail:
    """The default plugin's answer: the simulated rail (a bank's extension answering first replaces it)."""
    return SIMULATED


def rail_for(runtime) -> PaymentRail:
    """The rail answering ``canopy_payment_rail`` on ``runtime``'s plugin manager (checked)."""
    rail = runtime.pm.hook.canopy_payment_rail()
    name = getattr(rail, "name", None)
    if not isinstance(rail, PaymentRail) or not isinstance(name, str) or not 0 < len(name) <= _NAME_SIZE:
        raise TypeError(f"canopy_payment_rail answered {type(rail).__name__}, not a rail with a name and debit()")
    return rail


def app_rail() -> PaymentRail:
    """The current app's rail."""
    from ..runtime import get_runtime  # imported here: the runtime imports the default rail

    return rail_for(get_runtime())


def top_up(session: Session, customer_id: str, amount: object, currency: object, *,
           rail: PaymentRail | None = None) -> Transfer:
    """Move ``amount`` from the customer's deposit account (through the rail) into their payment
    account, in the caller's transaction; :class:`RailRefused` when the rail says no,
    :class:`~canopy_sdk.errors.InvalidPayment` for a bad amount or currency."""
    code = payment_rules.check_currency(currency)
    checked = payment_rules.check_amount(amount, code)
    rail = rail or app_rail()
    reference = ledger.new_id("tu")
    answer = rail.debit(customer_id, checked, code, reference)
    if not isinstance(answer, str) or not 0 < len(answer) <= _REFERENCE_SIZE:
        raise RailRefused(f"the {rail.name} rail answered without a reference")
    return ledger.fund(session, customer_id, checked, code, description=f"top-up via the {rail.name} rail ({answer})")
