"""A payee's statement, as it is read (`payouts.ledger.statement` builds it from the ledger)
and as it crosses Temporal (`PayoutsClient.statement`, a page at a time, signed by the
platform like every other platform action)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

FIELDS = ("pending", "available", "held", "owed")


class LineKind(StrEnum):
    OPENING = "opening"
    EARNINGS = "earnings"
    MATURED = "matured"
    REVERSAL = "reversal"
    CASHOUT = "cashout"  # the reserve: the hold's amount, fee and status today
    CASHOUT_PAID = "cashout_paid"
    CASHOUT_VOIDED = "cashout_voided"
    CASHOUT_RETURNED = "cashout_returned"
    SETTLEMENT = "settlement"
    CLOSING = "closing"


FROZEN = ConfigDict(frozen=True)


class Balances(BaseModel):
    """A payee's four balances in one currency (`owed` as the positive amount owed)."""

    model_config = FROZEN
    pending: int = 0
    available: int = 0
    held: int = 0
    owed: int = 0

    @property
    def net(self) -> int:
        return self.pending + self.available + self.held - self.owed

    def __add__(self, o: Balances) -> Balances:
        return Balances(**{f: getattr(self, f) + getattr(o, f) for f in FIELDS})


class CashoutInfo(BaseModel):
    model_config = FROZEN
    hold_id: str
    request_id: str
    amount: int
    gross: int
    fee: int
    status: str  # the hold's status now: reserved | posted | voided | reversed
    reason: str | None


class ReversalInfo(BaseModel):
    model_config = FROZEN
    reversal_id: str
    event_id: str
    reason: str
    amount: int
    from_pending: int
    from_available: int
    owed: int  # the part no balance covered
    owed_after: int


class StatementLine(BaseModel):
    """One line: what changed (`change`) and the balances after it. Opening and closing
    lines carry balances and no change; `at` is None for an opening with no `start` (from
    the beginning) and a closing with no `end` (now)."""

    model_config = FROZEN
    at: datetime | None
    currency: str
    kind: str  # a `LineKind`, or the transaction's own kind for a kind added later
    description: str
    change: Balances = Balances()
    balance: Balances = Balances()
    net: int = 0
    transaction_id: int | None = None
    tasks: int | None = None  # earnings lines: how many earnings
    cashout: CashoutInfo | None = None
    reversal: ReversalInfo | None = None


class StatementRequest(BaseModel):
    """One page of a payee's statement: the lines from `start` (None: the beginning) to
    `end` (None: now), at most about `limit` of them."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    request_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")]
    user_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")]
    start: datetime | None = None
    end: datetime | None = None
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = None
    limit: Annotated[int, Field(ge=10, le=2000, strict=True)] = 500
    requested_at: datetime
    platform_signature: str = ""


class StatementInput(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    request: StatementRequest
    started_at: datetime  # when the server started the page's workflow


class StatementPage(BaseModel):
    """The lines of [start, until): opening balances at `start`, closing at `until`; the
    next page starts at `until` (None: this was the last). A page ends between two times,
    never between two lines of the same time."""

    model_config = ConfigDict(frozen=True)
    served: bool
    refusal: str = ""
    lines: tuple[StatementLine, ...] = ()
    until: datetime | None = None
