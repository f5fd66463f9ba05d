"""What a cash-out has become: its stage, its timeline and what it learnt on the way, and
how that is shown (the `status` query, and the Markdown the Temporal UI shows as the
workflow's current details).

`Progress` is plain mutable state owned by the workflow; the workflow passes the time in,
so everything here is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from payouts.domain.cashout import (
    TERMINAL,
    CashoutInput,
    CashoutStatus,
    Stage,
    TimelineEntry,
    mask,
)
from payouts.domain.messages import IdentityResult, IdentityStatus, RiskResult
from payouts.domain.money import format_money
from payouts.domain.review import ReviewBoard


@dataclass
class Progress:
    stage: Stage = Stage.REQUESTED
    timeline: list[TimelineEntry] = field(default_factory=list)
    risk: RiskResult | None = None
    identity: IdentityResult | None = None
    decision: str | None = None
    review_deadline: datetime | None = None
    rail_ref: str | None = None
    batch_id: str | None = None
    expected_arrival: datetime | None = None
    outcome: str = ""
    verification: str | None = None  # Verification of Payee: the bank's answer

    def note(self, at: datetime, text: str) -> None:
        self.timeline.append(TimelineEntry(at=at, stage=self.stage, note=text))

    def enter(self, at: datetime, stage: Stage, text: str) -> None:
        self.stage = stage
        self.note(at, text)

    @property
    def last_note(self) -> str:
        return self.timeline[-1].note if self.timeline else ""


def requested_note(inp: CashoutInput) -> str:
    """The first line of every timeline: what was asked, and what it pays."""
    q = inp.quote
    cur = q.currency
    return (
        f"requested {format_money(q.requested, cur)} by {q.method.value}: pays "
        f"{format_money(q.net, cur)} after a fee of {format_money(q.fee, cur)}"
        + (f"; {format_money(q.remainder, cur)} stays in the balance" if q.remainder else "")
    )


def identity_text(identity: IdentityResult | None) -> str | None:
    if identity is None:
        return None
    if identity.status is IdentityStatus.VERIFIED:
        return f"verified (tier {identity.tier})"
    return f"{identity.status.value}: {identity.reason}"


def status(inp: CashoutInput, p: Progress, board: ReviewBoard) -> CashoutStatus:
    """The whole state, for the payee, reviewers and operators (the `status` query)."""
    q, req = inp.quote, inp.request
    rail = p.rail_ref
    if rail and p.batch_id:
        rail += f" in batch {p.batch_id}"
    return CashoutStatus(
        request_id=req.request_id,
        user_id=req.user_id,
        stage=p.stage,
        method=q.method,
        currency=q.currency,
        requested=q.requested,
        gross=q.gross,
        fee=q.fee,
        net=q.net,
        remainder=q.remainder,
        cards=q.cards,
        destination=mask(req.destination),
        policy_version=q.policy_version,
        identity=identity_text(p.identity),
        risk_score=p.risk.score if p.risk else None,
        risk_reasons=p.risk.reasons if p.risk else (),
        decision=p.decision,
        approvals_needed=board.needed,
        reviews=tuple(board.records),
        review_deadline=p.review_deadline,
        rail_reference=rail,
        expected_arrival=p.expected_arrival,
        outcome=p.outcome,
        verification=p.verification,
        timeline=tuple(p.timeline),
    )


def details(inp: CashoutInput, p: Progress, board: ReviewBoard) -> str:
    """Markdown for the Temporal UI's "current details": where the cash-out is, and what a
    reviewer can do about it."""
    q = inp.quote
    cur = q.currency
    lines = [
        f"**{p.stage.value}**: {p.last_note}",
        "",
        f"- gross {format_money(q.gross, cur)}, fee {format_money(q.fee, cur)}, "
        f"net {format_money(q.net, cur)}",
    ]
    if p.risk is not None:
        lines.append(f"- risk score {p.risk.score}: {'; '.join(p.risk.reasons) or '-'}")
    if p.verification is not None:
        lines.append(f"- Verification of Payee: {p.verification.replace('_', ' ')}")
    if p.stage is Stage.AWAITING_REVIEW:
        rid = inp.request.request_id
        lines.append(
            f"- approvals {len(board.approvals)}/{board.needed}; "
            f"deadline {p.review_deadline:%Y-%m-%d %H:%M} UTC"
        )
        lines.append(
            f"- `payouts review approve {rid} --reviewer NAME` or signal "
            '`approve` with `{"reviewer": "NAME"}`'
        )
    if p.expected_arrival is not None and p.stage not in TERMINAL:
        lines.append(f"- expected arrival {p.expected_arrival:%Y-%m-%d %H:%M} UTC")
    return "\n".join(lines)
