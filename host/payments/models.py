"""The ledger and payment intents.

Money is an integer number of minor units (fen for CNY) with an ISO 4217 currency; never a
float. The ledger is double-entry: a :class:`Transfer` has postings that sum to zero, each on
one :class:`Account`; an account's ``balance`` is the sum of its postings, kept in the same
transaction as the postings (``canopy payments check`` proves it). Transfers and postings are
never updated or deleted (ORM guard here, database triggers in the migration).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint, event, text
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, UTCDateTime, utcnow

#: BIGINT on PostgreSQL; INTEGER (an auto-incrementing rowid) on SQLite.
_ID = BigInteger().with_variant(Integer, "sqlite")


class AccountKind:
    """Kinds of ledger account."""

    CUSTOMER = "customer"  #: a customer's payment account (never below zero)
    MERCHANT = "merchant"  #: a publisher's settlement account (``owner`` = ``<kind>:<id>``)
    CLEARING = "clearing"  #: money entering or leaving the ledger through the rail


class Account(Base):
    """One ledger account in one currency."""

    __tablename__ = "ledger_accounts"
    __table_args__ = (
        UniqueConstraint("kind", "owner", "currency", name="uq_ledger_accounts_kind_owner_currency"),
        CheckConstraint("kind <> 'customer' OR balance >= 0", name="customer_balance_not_negative"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    owner: Mapped[str] = mapped_column(String(96))
    currency: Mapped[str] = mapped_column(String(3))
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TransferKind:
    """Why money moved."""

    PAYMENT = "payment"  #: customer → merchant, for a payment intent
    REFUND = "refund"  #: merchant → customer, for a refund
    FUNDING = "funding"  #: clearing → customer, from the rail (the simulated rail in the demo)


class Transfer(Base):
    """An immutable movement of money: its postings sum to zero."""

    __tablename__ = "ledger_transfers"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(BigInteger)
    intent_id: Mapped[str | None] = mapped_column(ForeignKey("payment_intents.id"), nullable=True, index=True)
    refund_id: Mapped[str | None] = mapped_column(String(40), nullable=True, unique=True)
    description: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Posting(Base):
    """One leg of a transfer: a signed amount on one account (negative = money out)."""

    __tablename__ = "ledger_postings"
    __table_args__ = (
        Index("ix_ledger_postings_account_at", "account_id", "created_at"),
        CheckConstraint("amount <> 0", name="amount_not_zero"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    transfer_id: Mapped[str] = mapped_column(ForeignKey("ledger_transfers.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"))
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IntentState:
    """States of a payment intent (see docs/payments.md for the diagram)."""

    REQUIRES_CONFIRMATION = "requires_confirmation"  #: created; waits for the customer on the host's sheet
    SUCCEEDED = "succeeded"  #: paid: exactly one payment transfer
    FAILED = "failed"  #: refused (risk centre, insufficient funds); final
    CANCELED = "canceled"  #: withdrawn by its plugin before payment; final
    EXPIRED = "expired"  #: not confirmed in time; final

    ALL = (REQUIRES_CONFIRMATION, SUCCEEDED, FAILED, CANCELED, EXPIRED)
    FINAL = frozenset({FAILED, CANCELED, EXPIRED})


class PaymentIntent(Base):
    """A plugin's request to be paid, which only the customer can confirm, on the host's own page."""

    __tablename__ = "payment_intents"
    __table_args__ = (
        Index("ix_payment_intents_plugin_created", "plugin_id", "created_at"),
        Index("ix_payment_intents_customer_created", "customer_id", "created_at"),
        # The worker's expiry sweep: only intents still awaiting confirmation, by when they expire.
        Index("ix_payment_intents_due", "expires_at", postgresql_where=text("state = 'requires_confirmation'"),
              sqlite_where=text("state = 'requires_confirmation'")),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("amount_refunded >= 0 AND amount_refunded <= amount", name="refunds_within_amount"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    plugin_id: Mapped[str] = mapped_column(ForeignKey("plugins.id"))
    merchant_account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"))
    #: The customer who must confirm it (None: whoever signs in to confirm; bound then).
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customers.id"), nullable=True)
    branch_code: Mapped[str | None] = mapped_column(String(16), nullable=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    description: Mapped[str] = mapped_column(String(200))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    state: Mapped[str] = mapped_column(String(24), default=IntentState.REQUIRES_CONFIRMATION)
    amount_refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    transfer_id: Mapped[str | None] = mapped_column(String(40), nullable=True, unique=True)
    failure_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IntentTransition(Base):
    """One recorded change of an intent's state (its creation included: ``from_state`` None)."""

    __tablename__ = "payment_intent_transitions"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    intent_id: Mapped[str] = mapped_column(ForeignKey("payment_intents.id"), index=True)
    from_state: Mapped[str | None] = mapped_column(String(24), nullable=True)
    to_state: Mapped[str] = mapped_column(String(24))
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Refund(Base):
    """Money returned from a succeeded intent; all refunds of an intent never exceed its amount."""

    __tablename__ = "payment_refunds"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    intent_id: Mapped[str] = mapped_column(ForeignKey("payment_intents.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(200), default="")
    transfer_id: Mapped[str] = mapped_column(String(40), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IdempotencyRecord(Base):
    """The first answer to a request with an ``Idempotency-Key``, kept at least 24 hours.

    ``(caller, key)`` is the primary key: claiming a key is one ``INSERT … ON CONFLICT DO
    NOTHING`` in the request's own transaction, so of concurrent requests with one key exactly
    one executes; the others wait for it and then get its answer (or an error when their
    parameters differ).
    """

    __tablename__ = "idempotency_records"
    __table_args__ = (Index("ix_idempotency_records_expires_at", "expires_at"),)

    caller: Mapped[str] = mapped_column(String(96), primary_key=True)  #: e.g. "plugin:city.utilities"
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    operation: Mapped[str] = mapped_column(String(64))
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Immutable(RuntimeError):
    """Something tried to change or remove a ledger transfer or posting."""


@event.listens_for(Transfer, "before_update")
@event.listens_for(Transfer, "before_delete")
@event.listens_for(Posting, "before_update")
@event.listens_for(Posting, "before_delete")
def _refuse_change(mapper, connection, target) -> None:
    raise Immutable("ledger transfers and postings are immutable: correct with a new transfer")
