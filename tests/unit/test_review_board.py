"""The review state machine, without Temporal: who may decide, four eyes, refusals counted
and capped, the policy's timeout action."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from payouts.domain.policy import CashoutRules, Method, Policy, TimeoutAction
from payouts.domain.review import ReviewBoard, ReviewOutcome

AT = datetime(2026, 11, 25, 12, tzinfo=UTC)


@pytest.fixture
def rules(policy: Policy) -> CashoutRules:
    return policy.rules_for(Method.WALLET, "USD")


def board(rules: CashoutRules, needed: int) -> ReviewBoard:
    b = ReviewBoard(rules=rules, payee="pat")
    b.open(needed)
    return b


def decide(b: ReviewBoard, reviewer: str, decision: str = "approve", *, awaiting: bool = True):  # type: ignore[no-untyped-def]
    return b.decide(
        reviewer=reviewer,
        decision=decision,
        reason="checked",
        via="signal",
        client="test",
        at=AT,
        awaiting_review=awaiting,
    )


def test_one_approval_closes_a_single_review(rules: CashoutRules) -> None:
    """A registered reviewer's approval counts and, when one is needed, ends the review."""
    b = board(rules, 1)
    ruling = decide(b, "bob")
    assert ruling.accepted and ruling.note == "approved by bob"
    assert b.outcome is ReviewOutcome.APPROVED
    assert [r.reviewer for r in b.records] == ["bob"]


def test_four_eyes_need_two_keys_one_senior(rules: CashoutRules) -> None:
    """Above four eyes: the same reviewer twice does not count, two juniors do not suffice,
    and the review ends with the senior's approval."""
    b = board(rules, 2)
    assert decide(b, "bob").note == "approved by bob; 1 more approval needed"
    twice = decide(b, "bob")
    assert twice.refusal is not None and "already approved" in twice.refusal
    junior = decide(b, "carol")
    assert junior.refusal == "one of the two approvals must come from a senior reviewer"
    assert b.outcome is None
    assert decide(b, "alice").accepted
    assert b.outcome is ReviewOutcome.APPROVED
    assert b.approvals == ["bob", "alice"]


@pytest.mark.parametrize(
    ("reviewer", "decision", "awaiting", "why"),
    [
        ("mallory", "approve", True, "'mallory' is not a registered reviewer"),
        ("bob", "approve", False, "the cash-out is not awaiting review"),
        ("bob", "maybe", True, "unknown decision 'maybe'"),
    ],
)
def test_a_decision_that_cannot_count_is_refused_and_recorded(
    rules: CashoutRules, reviewer: str, decision: str, awaiting: bool, why: str
) -> None:
    """A refusal changes nothing but the record: the outcome stays open, the record and the
    timeline say who tried what and why it was refused."""
    b = board(rules, 1)
    ruling = decide(b, reviewer, decision, awaiting=awaiting)
    assert ruling.refusal == why
    assert b.outcome is None and b.approvals == []
    assert b.records[-1].accepted is False and b.records[-1].refusal == why
    assert ruling.note == f"refused {decision!r} from {reviewer!r}: {why}"


def test_the_payee_cannot_review_their_own_cash_out(rules: CashoutRules) -> None:
    b = ReviewBoard(rules=rules, payee="bob")
    b.open(1)
    assert decide(b, "bob").refusal == "reviewers cannot decide on their own cash-out"


def test_a_rejection_ends_the_review_and_names_who(rules: CashoutRules) -> None:
    b = board(rules, 2)
    decide(b, "bob")
    ruling = decide(b, "carol", "reject")
    assert ruling.accepted and ruling.note is None
    assert b.outcome is ReviewOutcome.REJECTED
    assert b.rejection == "rejected by carol: checked"
    assert decide(b, "alice").refusal == "the cash-out is not awaiting review"


def test_refusals_are_counted_but_recorded_only_up_to_the_cap(rules: CashoutRules) -> None:
    """A flood of bad decisions cannot grow the records without bound; a real decision
    after it still counts."""
    b = board(rules, 1)
    for _ in range(ReviewBoard.MAX_RECORDED + 25):
        decide(b, "mallory")
    assert b.refusals == ReviewBoard.MAX_RECORDED + 25
    assert len(b.records) == ReviewBoard.MAX_RECORDED
    assert decide(b, "mallory").note is None  # past the cap: counted, not noted
    assert decide(b, "bob").accepted
    assert b.records[-1].reviewer == "bob"


@pytest.mark.parametrize(
    ("action", "outcome"),
    [
        (TimeoutAction.APPROVE, ReviewOutcome.APPROVED),
        (TimeoutAction.REJECT, ReviewOutcome.REJECTED),
    ],
)
def test_a_timeout_takes_the_policy_action(
    rules: CashoutRules, action: TimeoutAction, outcome: ReviewOutcome
) -> None:
    b = board(rules, 1)
    b.time_out(action)
    assert b.outcome is outcome
    assert decide(b, "bob").refusal == "the cash-out is not awaiting review"
