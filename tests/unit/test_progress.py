"""What a cash-out shows: the status projection and the UI's Markdown, from plain state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from payouts.domain.cashout import Stage
from payouts.domain.messages import IdentityResult, IdentityStatus, RiskResult
from payouts.domain.policy import Policy
from payouts.domain.progress import Progress, details, requested_note, status
from payouts.domain.requests import build_input
from payouts.domain.review import ReviewBoard

AT = datetime(2026, 11, 25, 12, tzinfo=UTC)


def test_status_projects_the_whole_state(policy: Policy) -> None:
    """Stage, amounts, masked destination, identity, risk, reviews, rail reference and the
    timeline all come from the progress, the board and the input."""
    inp = build_input(
        policy,
        request_id="r-1",
        user_id="pat",
        amount=12_345_678,
        currency="USD",
        method="wallet",
        destination="pat@example.com",
        now=AT,
    )
    p = Progress()
    p.note(AT, requested_note(inp))
    p.risk = RiskResult(score=40, reasons=("first cash-out",))
    p.identity = IdentityResult(status=IdentityStatus.VERIFIED, tier=2)
    p.rail_ref, p.batch_id = "E2E-1", "B-7"
    p.enter(AT + timedelta(seconds=1), Stage.AWAITING_REVIEW, "held for review")
    board = ReviewBoard(rules=inp.rules, payee="pat")
    board.open(1)
    s = status(inp, p, board)
    assert s.stage is Stage.AWAITING_REVIEW
    assert (s.gross, s.fee, s.net, s.remainder) == (
        inp.quote.gross, inp.quote.fee, inp.quote.net, inp.quote.remainder,
    )  # fmt: skip
    assert s.destination == "p***@example.com"
    assert s.identity == "verified (tier 2)"
    assert (s.risk_score, s.risk_reasons) == (40, ("first cash-out",))
    assert s.rail_reference == "E2E-1 in batch B-7"
    assert s.approvals_needed == 1
    assert s.timeline[0].note.startswith("requested 12.345678 USD by wallet")
    assert s.timeline[-1].stage is Stage.AWAITING_REVIEW


def test_details_tell_a_reviewer_what_to_do(policy: Policy) -> None:
    inp = build_input(
        policy,
        request_id="r-2",
        user_id="pat",
        amount=600_000_000,
        currency="USD",
        method="wallet",
        destination="pat@example.com",
        now=AT,
    )
    p = Progress()
    p.review_deadline = AT + timedelta(hours=48)
    p.enter(AT, Stage.AWAITING_REVIEW, "above the review threshold")
    board = ReviewBoard(rules=inp.rules, payee="pat")
    board.open(1)
    text = details(inp, p, board)
    assert text.startswith("**AWAITING_REVIEW**: above the review threshold")
    assert "approvals 0/1; deadline 2026-11-27 12:00 UTC" in text
    assert "payouts review approve r-2" in text
