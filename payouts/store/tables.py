"""SQLModel tables of the ledger. Rows never cross Temporal; workflows never import this.

These models and the Alembic revisions in `store/migrations` describe the same schema; a
test upgrades an empty database and compares it with these models. A change here comes
with a new revision.

Times are stored as integer microseconds since the Unix epoch (`EpochMicros`): the same
representation on SQLite and PostgreSQL, cheap to compare, and writable by the bulk paths
(executemany, COPY) without a driver-specific datetime format.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from payouts.store.columns import EpochMicros, from_epoch_us, to_epoch_us
from payouts.store.columns import money_column as _money
from payouts.store.columns import when_column as _when

__all__ = ["EpochMicros", "from_epoch_us", "to_epoch_us"]


class Account(SQLModel, table=True):
    """A balance per owner, kind and currency, kept in step with its legs (O(1) reads)."""

    __tablename__ = "accounts"
    __table_args__ = (UniqueConstraint("owner", "kind", "currency", name="uq_account"),)

    id: int | None = Field(default=None, primary_key=True)
    owner: str = Field(max_length=128)
    kind: str = Field(max_length=32)
    currency: str = Field(max_length=3)
    balance: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))


class LedgerTransaction(SQLModel, table=True):
    """One atomic ledger write; its legs sum to zero per currency."""

    __tablename__ = "ledger_transactions"

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=200, unique=True)
    kind: str = Field(max_length=32)
    content_hash: str = Field(max_length=64)
    user_id: str | None = Field(default=None, max_length=128, index=True)
    hold_id: str | None = Field(default=None, max_length=200, index=True)
    created_at: datetime = _when()
    result_json: str = ""
    # the number of its legs, set once they are written: the seal the database checks
    # (migration 0005: sealed once, legs balanced, no leg added after)
    legs: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))


class Leg(SQLModel, table=True):
    __tablename__ = "ledger_legs"

    id: int | None = Field(default=None, primary_key=True)
    transaction_id: int = Field(
        sa_column=Column(Integer, ForeignKey("ledger_transactions.id"), nullable=False, index=True)
    )
    account_id: int = Field(
        sa_column=Column(Integer, ForeignKey("accounts.id"), nullable=False, index=True)
    )
    amount: int = _money()


class Earning(SQLModel, table=True):
    """One micro-earning, keyed by the platform's event id (its idempotency key).

    `mature_tx_id` is NULL while the earning sits in `pending`; the partial index on
    `matures_at` holds only those rows, so maturation scans what is due and nothing else.
    """

    __tablename__ = "earnings"
    __table_args__ = (
        Index(
            "ix_earnings_due",
            "matures_at",
            sqlite_where=Column("mature_tx_id").is_(None),
            postgresql_where=Column("mature_tx_id").is_(None),
        ),
        Index("ix_earnings_user_time", "user_id", "earned_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=200, unique=True)
    user_id: str = Field(max_length=128)
    currency: str = Field(max_length=3)
    amount: int = _money()
    earned_at: datetime = _when()
    matures_at: datetime = _when()
    credit_tx_id: int = Field(sa_column=Column(Integer, nullable=False))
    mature_tx_id: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    # what reversals took back of it (0 <= reversed <= amount); maturation moves the rest
    reversed: int = Field(
        default=0, sa_column=Column(BigInteger, nullable=False, server_default="0")
    )


class EarningReversal(SQLModel, table=True):
    """One reversal of (part of) an earning, keyed by the platform's own reversal id, and
    where its money came from: pending, available, or what the payee now owes."""

    __tablename__ = "earning_reversals"
    __table_args__ = (Index("ix_earning_reversals_user_time", "user_id", "created_at"),)

    id: str = Field(primary_key=True, max_length=200)
    event_id: str = Field(max_length=200, index=True)
    user_id: str = Field(max_length=128)
    currency: str = Field(max_length=3)
    amount: int = _money()
    reason: str = Field(max_length=500)
    from_pending: int = _money()
    from_available: int = _money()
    owed: int = _money()  # the part no balance covered: the payee owes it
    owed_after: int = _money()  # what the payee owed in this currency after it
    created_at: datetime = _when()
    transaction_id: int = Field(sa_column=Column(Integer, nullable=False))
    # the amount asked for (None: "all that is left"): what a re-sent request is compared to
    requested: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class ReversalRequestRecord(SQLModel, table=True):
    """The outcome of every reversal the platform signed and the worker decided, applied or
    refused, by reversal id: the same id answers the first outcome, run again or not."""

    __tablename__ = "reversal_requests"

    id: str = Field(primary_key=True, max_length=100)
    digest: str = Field(max_length=64)
    applied: bool
    refusal: str = Field(default="", max_length=500)
    decided_at: datetime = _when()


class Hold(SQLModel, table=True):
    """A cash-out's reservation: reserved -> posted (-> reversed) | voided."""

    __tablename__ = "holds"
    __table_args__ = (Index("ix_holds_user_time", "user_id", "created_at"),)

    id: str = Field(primary_key=True, max_length=200)
    user_id: str = Field(max_length=128)
    currency: str = Field(max_length=3)
    amount: int = _money()
    status: str = Field(max_length=16)
    gross: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    fee: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    created_at: datetime = _when()
    updated_at: datetime = _when()
    reason: str | None = Field(default=None, max_length=500)


class PayoutDestination(SQLModel, table=True):
    """Which user has cashed out to which destination (a keyed hash, never the number)."""

    __tablename__ = "payout_destinations"

    user_id: str = Field(primary_key=True, max_length=128)
    fingerprint: str = Field(primary_key=True, max_length=64, index=True)
    first_used_at: datetime = _when()
    last_used_at: datetime = _when()


class Notification(SQLModel, table=True):
    """The outbox: one row per event the platform must hear about (delivered later)."""

    __tablename__ = "notifications"

    event_id: str = Field(primary_key=True, max_length=200)
    request_id: str = Field(max_length=100, index=True)
    user_id: str = Field(max_length=128)
    stage: str = Field(max_length=32)
    payload_json: str
    created_at: datetime = _when()
    delivered_at: datetime | None = _when(nullable=True)
    attempts: int = 0
    next_attempt_at: datetime | None = _when(nullable=True)
    last_error: str | None = Field(default=None, max_length=500)


class BankItem(SQLModel, table=True):
    """One bank-transfer cash-out on its way through batches and the bank's answers.

    status: queued -> sent -> accepted -> booked (-> returned), or rejected. `signalled` is
    the last status the cash-out workflow was told about.
    """

    __tablename__ = "bank_items"
    __table_args__ = (Index("ix_bank_items_status", "status", "currency", "queued_at"),)

    end_to_end_id: str = Field(primary_key=True, max_length=35)
    workflow_id: str = Field(max_length=200, unique=True)
    request_id: str = Field(max_length=100)
    user_id: str = Field(max_length=128)
    currency: str = Field(max_length=3)
    amount: int = _money()
    iban: str = Field(max_length=34)
    bic: str | None = Field(default=None, max_length=11)
    holder_name: str = Field(max_length=140)
    status: str = Field(max_length=16)
    batch_id: str | None = Field(default=None, max_length=35, index=True)
    reason_code: str | None = Field(default=None, max_length=8)
    reason: str | None = Field(default=None, max_length=200)
    queued_at: datetime = _when()
    updated_at: datetime = _when()
    signalled: str = Field(default="", max_length=16)


class BankBatch(SQLModel, table=True):
    """One pain.001 file: the transfers of one currency up to one cutoff."""

    __tablename__ = "bank_batches"

    id: str = Field(primary_key=True, max_length=35)
    currency: str = Field(max_length=3)
    created_at: datetime = _when(index=True)
    items: int
    total: int = _money()
    file_name: str = Field(max_length=200)
    status: str = Field(max_length=16)  # created | submitted | quarantined
    unbatched_cost: int = _money()  # what the items would have cost one by one
    batch_cost: int = _money()
    fee_saved: int = _money()
    reason: str | None = Field(default=None, max_length=500)  # why it was quarantined


class BankReportFile(SQLModel, table=True):
    """A report from the bank (pain.002, camt.054), applied once."""

    __tablename__ = "bank_report_files"

    name: str = Field(primary_key=True, max_length=200)
    kind: str = Field(max_length=16)
    message_id: str = Field(max_length=35)
    items: int
    received_at: datetime = _when()
    status: str = Field(
        default="applied",
        sa_column=Column(String(16), nullable=False, server_default="applied"),
    )  # applied | quarantined (unreadable: kept, listed by `payouts batches`)
    reason: str | None = Field(default=None, max_length=500)


class GiftCard(SQLModel, table=True):
    """A gift card issued to a payee; the code is stored encrypted and shown once."""

    __tablename__ = "gift_cards"
    __table_args__ = (UniqueConstraint("request_id", "seq", name="uq_gift_card"),)

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(max_length=100, index=True)
    user_id: str = Field(max_length=128)
    seq: int
    currency: str = Field(max_length=3)
    face_value: int = _money()
    provider_ref: str = Field(max_length=64)
    code_ciphertext: str
    last4: str = Field(max_length=4)
    issued_at: datetime = _when()
    revealed_at: datetime | None = _when(nullable=True)


class ReviewAudit(SQLModel, table=True):
    """Every reviewer decision on every cash-out: who, when, what, through what, and
    whether it counted (and if not, why)."""

    __tablename__ = "review_audit"
    __table_args__ = (UniqueConstraint("workflow_id", "seq", name="uq_review_audit"),)

    id: int | None = Field(default=None, primary_key=True)
    workflow_id: str = Field(max_length=200, index=True)
    request_id: str = Field(max_length=100)
    seq: int
    at: datetime = _when(index=True)
    reviewer: str = Field(max_length=64)
    decision: str = Field(max_length=16)
    reason: str = Field(max_length=500)
    accepted: bool
    refusal: str = Field(max_length=200)
    via: str = Field(max_length=16)
    client: str = Field(max_length=64)


class WebhookEvent(SQLModel, table=True):
    """Webhook events received from rails, kept for de-duplication and audit."""

    __tablename__ = "webhook_events"

    event_id: str = Field(primary_key=True, max_length=100)
    source: str = Field(max_length=32)
    reference: str = Field(max_length=200)
    kind: str = Field(max_length=64)
    received_at: datetime = _when()


class PolicyVersion(SQLModel, table=True):
    """A policy the service has run under, by version: what admission checks a cash-out's
    rules and quote against (a quote stays honoured for a while after the policy changes)."""

    __tablename__ = "policy_versions"

    version: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    body_json: str
    registered_at: datetime = _when()


class SecurityEvent(SQLModel, table=True):
    """A refusal (or a notable acceptance) at a trust boundary: who claimed to be whom,
    what they tried, on what, and why it was refused."""

    __tablename__ = "security_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _when(index=True)
    actor: str = Field(max_length=128)  # who it claimed to be
    action: str = Field(max_length=64)
    subject: str = Field(max_length=200)  # a workflow id, a file, an endpoint
    outcome: str = Field(max_length=16)  # refused | accepted
    reason: str = Field(max_length=500)


class PayoutProfile(SQLModel, table=True):
    """A destination a payee saved (`payouts.domain.profiles`). The destination itself is
    sealed (Fernet, the gift code vault's keys); `shown` is its masked form."""

    __tablename__ = "payout_profiles"
    __table_args__ = (
        Index(
            "ux_payout_profiles_default",
            "user_id",
            "method",
            unique=True,
            sqlite_where=Column("is_default") & (Column("status") == "active"),
            postgresql_where=Column("is_default") & (Column("status") == "active"),
        ),
    )

    id: str = Field(primary_key=True, max_length=32)
    user_id: str = Field(max_length=128, index=True)
    method: str = Field(max_length=16)
    fingerprint: str = Field(max_length=64, index=True)
    sealed: str
    shown: str = Field(max_length=80)
    is_default: bool = False
    status: str = Field(max_length=16)  # active | removed
    created_at: datetime = _when()
    changed_at: datetime = _when()
    cooloff_until: datetime = _when()
    verification: str | None = Field(default=None, max_length=16)  # Verification of Payee
    verified_name: str | None = Field(default=None, max_length=140)
    verified_at: datetime | None = _when(nullable=True)


class AutoCashout(SQLModel, table=True):
    """A payee's standing instruction: pay out automatically (one per currency)."""

    __tablename__ = "auto_cashouts"

    user_id: str = Field(primary_key=True, max_length=128)
    currency: str = Field(primary_key=True, max_length=3)
    destination_id: str = Field(max_length=32)
    threshold: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    every: str | None = Field(default=None, max_length=16)
    minimum: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    changed_at: datetime = _when()
