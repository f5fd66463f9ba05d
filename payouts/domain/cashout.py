"""A cash-out as it crosses Temporal: stages, destinations, the request and the workflow
input, the reviewers' messages and the status the workflow answers.

Plain frozen pydantic models with no validation beyond types, so that a history always
deserialises the same way on replay. The rules a request must meet live in
`payouts.domain.requests`, which is applied before a workflow starts.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from payouts.domain.fees import Quote, Speed
from payouts.domain.policy import CashoutRules, Method

if TYPE_CHECKING:
    from payouts.domain.carried import Carried


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Stage(StrEnum):
    REQUESTED = "REQUESTED"
    RESERVED = "RESERVED"
    VERIFYING = "VERIFYING"
    AWAITING_REVIEW = "AWAITING_REVIEW"
    APPROVED = "APPROVED"
    DISBURSING = "DISBURSING"
    SENT = "SENT"
    PAID = "PAID"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"
    RETURNED = "RETURNED"


TERMINAL = frozenset({Stage.PAID, Stage.REJECTED, Stage.CANCELLED, Stage.FAILED, Stage.RETURNED})
CANCELLABLE = frozenset(
    {Stage.REQUESTED, Stage.RESERVED, Stage.VERIFYING, Stage.AWAITING_REVIEW, Stage.APPROVED}
)


# ------------------------------------------------------------------ destinations


class BankAccount(Frozen):
    method: Literal["bank_transfer"] = "bank_transfer"
    iban: str
    bic: str | None = None
    holder_name: str


class WalletAccount(Frozen):
    method: Literal["wallet"] = "wallet"
    wallet_id: str


class GiftCardDelivery(Frozen):
    method: Literal["gift_card"] = "gift_card"
    email: str


class SavedRef(Frozen):
    """A destination the payee saved in their profile (`payouts.domain.profiles`), by id:
    the worker resolves it when it admits the cash-out."""

    method: Literal["saved"] = "saved"
    destination_id: str


Destination = Annotated[
    BankAccount | WalletAccount | GiftCardDelivery | SavedRef, Field(discriminator="method")
]


def mask(destination: BankAccount | WalletAccount | GiftCardDelivery | SavedRef) -> str:
    """A form safe to show an operator: no account number, no full address."""
    if isinstance(destination, SavedRef):
        return f"saved destination {destination.destination_id}"
    if isinstance(destination, BankAccount):
        return f"IBAN {destination.iban[:2]}** **** {destination.iban[-4:]}"
    value = destination.wallet_id if isinstance(destination, WalletAccount) else destination.email
    local, _, domain = value.partition("@")
    shown = (local[:1] + "***") if local else "***"
    return f"{shown}@{domain}" if domain else f"{shown}{value[-2:]}"


# ------------------------------------------------------------------ the request


class CashoutRequest(Frozen):
    """What the platform asks for. `amount` is micros and may include sub-minor micros."""

    request_id: str
    user_id: str
    amount: int
    currency: str
    method: Method
    destination: Destination
    quote: Quote | None = None
    speed: Speed = "standard"  # "instant": paid in minutes, at the instant fee


class CashoutInput(Frozen):
    """The workflow input: the validated request, the quote to honour, the rules in force."""

    request: CashoutRequest
    quote: Quote
    rules: CashoutRules
    requested_at: datetime
    # The platform's signature over the request and `requested_at` (`trust.request_message`);
    # the worker admits nothing unsigned. Empty in cash-outs started before signing.
    platform_signature: str = ""
    # "auto": started by the sweep for a payee's standing instruction, and signed (in
    # `platform_signature`) by our service key over `trust.auto_request_message`
    origin: Literal["platform", "auto"] = "platform"
    # Set only by the cash-out itself when a long wait continues as new (`carried.py`)
    carried: Carried | None = None


# ------------------------------------------------------------------ reviews and status


class Signed(Frozen):
    """A principal's signature: when, a nonce, and the base64 Ed25519 signature over the
    message `payouts.domain.trust` builds for the action."""

    signed_at: str = ""
    nonce: str = ""
    signature: str = ""


class ReviewDecision(Signed):
    """Payload of the `approve` and `reject` signals (also sendable from the Temporal UI:
    `payouts review sign` prints one, signed).

    `ref` (set by the client SDK) names the decision: the workflow answers it in the
    `answer` query, and a signal re-sent with the same `ref` is applied once."""

    reviewer: str
    reason: str = ""
    client: str = ""
    ref: str = ""


class ReviewRequest(Signed):
    """Payload of the `review` update: validated and answered at once."""

    reviewer: str
    decision: Literal["approve", "reject"]
    reason: str = ""
    client: str = ""


class CancelRequest(Signed):
    """A cancel: the payee's (signed by the platform) or a registered reviewer's (signed
    with their key)."""

    requested_by: str
    reason: str = ""
    client: str = ""
    ref: str = ""  # as in ReviewDecision


class Answer(Frozen):
    """How the workflow took a signalled decision or cancel (the `answer` query)."""

    accepted: bool
    refusal: str = ""


class ReviewRecord(Frozen):
    at: datetime
    reviewer: str
    decision: str
    reason: str
    accepted: bool
    refusal: str = ""
    via: str = ""  # signal | update
    client: str = ""  # what the sender says it is (the CLI: cli:user@host)


class AuditEntry(Frozen):
    """One reviewer decision, accepted or refused, for the `review_audit` table."""

    workflow_id: str
    request_id: str
    seq: int
    record: ReviewRecord


class TimelineEntry(Frozen):
    at: datetime
    stage: Stage
    note: str


class CashoutStatus(Frozen):
    """Everything the `status` query answers: for the payee, reviewers and operators."""

    request_id: str
    user_id: str
    stage: Stage
    method: Method
    currency: str
    requested: int
    gross: int
    fee: int
    net: int
    remainder: int
    cards: tuple[int, ...] = ()
    destination: str
    policy_version: str
    identity: str | None = None
    risk_score: int | None = None
    risk_reasons: tuple[str, ...] = ()
    decision: str | None = None
    approvals_needed: int = 0
    reviews: tuple[ReviewRecord, ...] = ()
    review_deadline: datetime | None = None
    rail_reference: str | None = None
    expected_arrival: datetime | None = None
    outcome: str = ""
    timeline: tuple[TimelineEntry, ...] = ()
    # Verification of Payee (bank transfers): match, close_match, no_match, unavailable
    verification: str | None = None
    # What a reviewer's or a cancel's signature is bound to (`trust.request_digest`).
    request_digest: str = ""
    # Decisions, cancels and rail events refused (kept in full up to a cap, then counted),
    # and signals dropped unread for their size.
    refused: int = 0
    dropped: int = 0
    # Runs before the current one: a long wait continues as new to keep its history bounded
    runs: int = 0


class CashoutResult(Frozen):
    request_id: str
    stage: Stage
    status: CashoutStatus
