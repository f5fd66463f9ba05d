"""What activities take and return, and what the rails tell a cash-out.

Like `payouts.domain.cashout`: frozen pydantic models that validate types only, so that a
history deserialises the same way on replay.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import Field

from payouts.domain.cashout import (
    BankAccount,
    CashoutInput,
    Destination,
    Frozen,
    GiftCardDelivery,
    Stage,
    WalletAccount,
)
from payouts.domain.profiles import ProfileFacts

# ------------------------------------------------------------------ activities


class ReserveInput(Frozen):
    key: str
    hold_id: str
    user_id: str
    currency: str
    amount: int
    daily_amount_limit: int
    daily_count_limit: int


class ReserveResult(Frozen):
    transaction_id: int
    available_after: int


class IdentityStatus(StrEnum):
    VERIFIED = "verified"
    PENDING = "pending"
    REJECTED = "rejected"


class IdentityInput(Frozen):
    user_id: str
    checked_at: datetime  # the workflow's clock: sandboxes resolve pending checks against it


class IdentityResult(Frozen):
    status: IdentityStatus
    tier: int = 0
    reference: str = ""
    reason: str = ""
    legal_name: str | None = None


class RiskInput(Frozen):
    request_id: str
    user_id: str
    currency: str
    amount: int
    destination: Destination
    as_of: datetime


class RiskResult(Frozen):
    score: int
    reasons: tuple[str, ...]
    # what sends the cash-out to a reviewer whatever its score (e.g. the payee recently
    # owed more than the policy's limit after reversed earnings)
    review: tuple[str, ...] = ()


class PostInput(Frozen):
    key: str
    hold_id: str
    gross: int
    fee: int


class VoidInput(Frozen):
    key: str
    hold_id: str
    reason: str


class NotifyInput(Frozen):
    event_id: str
    request_id: str
    user_id: str
    stage: Stage
    at: datetime
    payload: dict[str, str | int | None]


class ReserveAndAssess(Frozen):
    """One local activity: hold the money, then score the risk (two short DB steps)."""

    reserve: ReserveInput
    risk: RiskInput


class Reserved(Frozen):
    reserve: ReserveResult
    risk: RiskResult


class BookPayout(Frozen):
    """One local activity: post the paid cash-out, then record the notification."""

    post: PostInput
    notify: NotifyInput


class ReleaseHold(Frozen):
    """One local activity: void the hold, then record the notification."""

    void: VoidInput
    notify: NotifyInput


# ------------------------------------------------------------------ rails (issue: real rails)


class BankEnqueue(Frozen):
    workflow_id: str
    request_id: str
    user_id: str
    currency: str
    amount: int  # net
    destination: BankAccount
    at: datetime


class BankEvent(Frozen):
    """What the bank said about one transfer: sent | accepted | rejected | booked | returned."""

    kind: str
    end_to_end_id: str
    batch_id: str | None = None
    code: str = ""
    reason: str = ""
    # our bank workflows' signature (service key) over the event and the workflow id
    signature: str = ""


class BankSignal(Frozen):
    workflow_id: str
    event: BankEvent


class BatchSummary(Frozen):
    batch_id: str
    currency: str
    items: int
    total: int
    fee_saved: int
    file_name: str


class BankCycle(Frozen):
    batches: tuple[BatchSummary, ...] = ()
    report_files: int = 0
    items_moved: int = 0
    signalled: int = 0
    late: int = 0
    quarantined: tuple[str, ...] = ()  # batches or report files set aside, with the reason


class WalletPayoutInput(Frozen):
    key: str
    reference: str  # the workflow id: how webhooks find their way back
    wallet_id: str
    amount: int  # net, micros
    currency: str
    instant: bool = False  # the provider's instant flag


class WalletPayout(Frozen):
    id: str
    status: str  # pending | completed | failed
    failure_reason: str | None = None
    resolved_by_lookup: bool = False


class WalletEvent(Frozen):
    """A verified webhook event from the wallet provider (signal `wallet_event`)."""

    event_id: str
    type: str
    payout_id: str
    status: str
    failure_reason: str | None = None
    # our webhook ingress's signature (service key) over the event and the workflow id
    signature: str = ""


class GiftCardsInput(Frozen):
    key: str
    request_id: str
    user_id: str
    currency: str
    cards: tuple[int, ...]
    at: datetime


class GiftCardsIssued(Frozen):
    count: int
    last4: tuple[str, ...] = ()  # no longer filled: no digit of a code leaves the vault


class DeliveryResult(Frozen):
    delivered: int
    failed: int


class Polling(Frozen):
    """A service workflow that runs its cycle every `every_seconds` for as long as it lives
    (bank reports, notifications), continuing as new after `cycles` cycles."""

    every_seconds: float = Field(gt=0)
    cycles: int = Field(default=200, gt=0)
    run: int = 0  # runs before this one


class ReconcileInput(Frozen):
    day: date
    as_of: datetime


class ReconcileResult(Frozen):
    day: date
    checked: int
    mismatches: int
    report_file: str


class ReverseInput(Frozen):
    key: str
    hold_id: str
    reason: str


class ReversePayout(Frozen):
    """One local activity: reverse a returned payout, then record the notification."""

    reverse: ReverseInput
    notify: NotifyInput


class AdmitInput(Frozen):
    inp: CashoutInput
    started_at: datetime  # when the server started the workflow (not the caller's clock)


class Admission(Frozen):
    """The worker's verdict on a cash-out's start, before anything is held, and the public
    keys the cash-out then trusts for the rest of its life (recorded in its history)."""

    admitted: bool
    refusal: str = ""
    platform_key: str = ""
    service_key: str = ""
    # a cash-out to a saved destination: the destination it resolved to, and its facts
    destination: BankAccount | WalletAccount | GiftCardDelivery | None = None
    profile: ProfileFacts | None = None


class AdmitAndReserve(Frozen):
    """One local activity: admit the cash-out, and only if admitted, reserve and assess."""

    admit: AdmitInput
    reserve: ReserveAndAssess


class AdmittedReserve(Frozen):
    admission: Admission
    reserved: Reserved | None = None  # None: not admitted, nothing held


# ------------------------------------------------------------------ builders


def reserve_and_assess(
    inp: CashoutInput, *, key: str, hold_id: str, at: datetime
) -> ReserveAndAssess:
    """The first step of a cash-out: hold its gross under the daily limits, score its risk."""
    q, req, rules = inp.quote, inp.request, inp.rules
    return ReserveAndAssess(
        reserve=ReserveInput(
            key=key,
            hold_id=hold_id,
            user_id=req.user_id,
            currency=q.currency,
            amount=q.gross,
            daily_amount_limit=rules.currency_rules.daily_amount_limit,
            daily_count_limit=rules.daily_count,
        ),
        risk=RiskInput(
            request_id=req.request_id,
            user_id=req.user_id,
            currency=q.currency,
            amount=q.gross,
            destination=req.destination,
            as_of=at,
        ),
    )


def notify_platform(
    inp: CashoutInput,
    stage: Stage,
    outcome: str,
    rail_reference: str | None,
    event_id: str,
    at: datetime,
) -> NotifyInput:
    """What the platform hears when a cash-out reaches `stage`."""
    q, req = inp.quote, inp.request
    return NotifyInput(
        event_id=event_id,
        request_id=req.request_id,
        user_id=req.user_id,
        stage=stage,
        at=at,
        payload={
            "request_id": req.request_id,
            "user_id": req.user_id,
            "stage": stage.value,
            "currency": q.currency,
            "gross": q.gross,
            "fee": q.fee,
            "net": q.net,
            "outcome": outcome,
            "rail_reference": rail_reference,
        },
    )
