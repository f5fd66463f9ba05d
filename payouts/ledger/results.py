"""What the ledger takes and answers: earnings to credit, balances, receipts, totals."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict

from payouts.domain.money import CURRENCIES, INT64_MAX
from payouts.errors import InvalidAmount, InvalidInput


class HoldStatus(StrEnum):
    RESERVED = "reserved"
    POSTED = "posted"
    VOIDED = "voided"
    REVERSED = "reversed"


def utcnow() -> datetime:
    return datetime.now(UTC)


class EarningRow(NamedTuple):
    """One micro-earning to credit. `earned_at` is epoch microseconds (UTC).

    `earned_at=None` means "now" and is not part of the earning's identity: re-sending the
    event later without a time is a duplicate, not a conflict.
    """

    event_id: str
    user_id: str
    currency: str
    amount: int
    earned_at: int | None


class Balance(BaseModel):
    model_config = ConfigDict(frozen=True)

    user_id: str
    currency: str
    pending: int = 0
    available: int = 0
    held: int = 0
    owed: int = 0  # what the payee owes (reversed earnings no balance covered), >= 0

    @property
    def net(self) -> int:
        """The payee's position: what we hold for them less what they owe."""
        return self.pending + self.available + self.held - self.owed


class HoldReceipt(BaseModel):
    """The result of reserve/post/void/reverse; `replayed` when returned for a reused key."""

    model_config = ConfigDict(frozen=True)

    op: str
    hold_id: str
    transaction_id: int
    user_id: str
    currency: str
    amount: int
    gross: int = 0
    fee: int = 0
    released: int = 0
    status: HoldStatus
    available_after: int
    replayed: bool = False


IN_BATCH_CONFLICT = "event_id appears twice in this batch with different content"


class Conflict(NamedTuple):
    event_id: str
    reason: str


@dataclass
class CreditSummary:
    credited: int = 0
    duplicates: int = 0
    credited_amount: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    conflicts: list[Conflict] = field(default_factory=list)
    transaction_ids: list[int] = field(default_factory=list)
    reversals: Any = None  # a `ReversalSummary` when the batch had reversals


class MaturationResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    transaction_id: int | None
    earnings: int
    amount: dict[str, int]
    replayed: bool = False


class Totals(BaseModel):
    """Per-currency position.

    Conservation: earned - reversed == paid_out + fees + held + available + pending - owed.
    """

    model_config = ConfigDict(frozen=True)

    currency: str
    earned: int
    paid_out: int
    fees: int
    held: int
    available: int
    pending: int
    reversed: int = 0
    owed: int = 0

    @property
    def conserved(self) -> bool:
        kept = self.paid_out + self.fees + self.held + self.available + self.pending
        return self.earned - self.reversed == kept - self.owed


def check_positive(amount: int, name: str) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise InvalidAmount(f"{name}: must be a positive integer of micro-units", field=name)
    if amount > INT64_MAX:
        raise InvalidAmount(f"{name}: beyond the int64 range", field=name)


def check_earning(row: EarningRow) -> None:
    if not row.event_id or len(row.event_id) > 200:
        raise InvalidInput("event_id: must be 1 to 200 characters", field="event_id")
    if not row.user_id or len(row.user_id) > 128 or row.user_id.startswith("@"):
        raise InvalidInput(
            f"user_id: {row.user_id!r} must be 1 to 128 characters and not start with '@'",
            field="user_id",
        )
    if row.currency not in CURRENCIES:
        raise InvalidInput(
            f"currency: {row.currency!r} is not a supported ISO 4217 code", field="currency"
        )
    amount = row.amount
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0 or amount > INT64_MAX:
        raise InvalidAmount(
            f"amount: {amount!r} must be a positive integer of micro-units", field="amount"
        )
