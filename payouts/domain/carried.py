"""What a cash-out carries into its next run when it continues as new.

A cash-out can wait for days: for a reviewer, a slow identity check, the bank's answers,
the wallet's webhook, the bank's return window. Everything that arrives meanwhile (signals,
polls, timers) is an event in its history, and a history has hard limits (Temporal
terminates a run past 50 MB or 51,200 events; the hold would never be released). So at each
long wait, once its history passes `ROLL_EVENTS` or `ROLL_BYTES` (or Temporal suggests it),
the cash-out settles what it has queued and continues as new at the same `Checkpoint`,
carrying this state: bounded by construction (the caps in `payouts.domain.bounds`).

Only the cash-out itself can start a run with carried state: a run started any other way
with it (by a client, `temporal workflow start`) is refused before it touches anything.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from payouts.domain.cashout import (
    Answer,
    BankAccount,
    CancelRequest,
    CashoutInput,
    Frozen,
    GiftCardDelivery,
    ReviewRecord,
    Stage,
    TimelineEntry,
    WalletAccount,
)
from payouts.domain.messages import (
    Admission,
    BankEvent,
    IdentityResult,
    RiskResult,
    WalletEvent,
    WalletPayout,
)
from payouts.domain.profiles import ProfileFacts
from payouts.domain.review import ReviewOutcome

ROLL_EVENTS = 2_000  # history events in one run before a long wait continues as new
ROLL_BYTES = 2 * 1024 * 1024  # ... or bytes of history


class Checkpoint(StrEnum):
    """The long waits, in pipeline order; a resumed run starts at one of them."""

    IDENTITY = "identity"  # polling a pending identity check
    REVIEW = "review"  # AWAITING_REVIEW
    RAIL = "rail"  # following the bank's or the wallet's answers
    RETURNS = "returns"  # PAID, watching the bank's return window


ORDER = {None: 0, Checkpoint.IDENTITY: 1, Checkpoint.REVIEW: 2, Checkpoint.RAIL: 3}
ORDER[Checkpoint.RETURNS] = 4


class Seen(Frozen):
    """What `Progress` holds (its dataclass, as data)."""

    stage: Stage
    timeline: tuple[TimelineEntry, ...]
    risk: RiskResult | None = None
    identity: IdentityResult | None = None
    decision: str | None = None
    review_deadline: datetime | None = None
    rail_ref: str | None = None
    batch_id: str | None = None
    expected_arrival: datetime | None = None
    outcome: str = ""
    verification: str | None = None


class Board(Frozen):
    needed: int = 0
    approvals: tuple[str, ...] = ()
    records: tuple[ReviewRecord, ...] = ()
    refusals: int = 0
    outcome: ReviewOutcome | None = None


class DeskState(Frozen):
    cancel: CancelRequest | None = None
    answers: dict[str, Answer] = Field(default_factory=dict)
    nonces: tuple[str, ...] = ()
    refused: int = 0
    audited_refusals: int = 0
    audit_seq: int = 0
    dropped: int = 0
    review_started: datetime | None = None
    temporal_cancel_seen: bool = False


class RailState(Frozen):
    """The bank's or the wallet's part: what was taken, and genuine events not yet acted on."""

    seen: tuple[str, ...] = ()
    bank_inbox: tuple[BankEvent, ...] = ()
    wallet_inbox: tuple[WalletEvent, ...] = ()
    arrived: tuple[Stage, ...] = ()
    returned: BankEvent | None = None
    wallet_final: WalletPayout | None = None
    patience_seconds: float = 0


class Carried(Frozen):
    at: Checkpoint
    runs: int  # how many runs came before this one
    progress: Seen
    board: Board
    desk: DeskState
    trust: Admission | None
    held: bool
    published_stage: Stage
    published_score: int | None = None
    identity_give_up: datetime | None = None
    identity_pending_noted: bool = False
    rail: RailState = RailState()
    returns_deadline: datetime | None = None
    destination: BankAccount | WalletAccount | GiftCardDelivery | None = None  # saved one's
    profile: ProfileFacts | None = None


CashoutInput.model_rebuild(_types_namespace={"Carried": Carried})
