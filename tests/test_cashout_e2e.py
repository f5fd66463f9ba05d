"""End to end on the real dev server: every method, reviews, cancel, refusals, rail faults."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from schwifty import IBAN

from payouts import search
from payouts.client import CancelRefused, RequestConflict, ReviewRefused
from payouts.errors import InvalidInput
from payouts.models import Stage
from payouts.money import parse_micros
from tests.harness import Harness

M = parse_micros
IBAN_OK = "DE89370400440532013000"


def iban_ending(suffix: str) -> str:
    """A valid German IBAN whose account number ends in `suffix` (sandbox failure codes)."""
    return IBAN.generate("DE", bank_code="37040044", account_code="053201" + suffix).compact


def request_id_where(h: Harness, wanted: Callable[[str], bool]) -> str:
    """A request id whose disbursement key makes the seeded sandbox do what a test needs."""
    for _ in range(1000):
        rid = uuid.uuid4().hex[:16]
        if wanted(f"cashout-{rid}:disburse"):
            return rid
    raise AssertionError("no request id found")


async def test_wallet_cashout_is_paid_and_booked(harness: Harness) -> None:
    """An auto-approved wallet cash-out pays net, books the fee, keeps the sub-cent rest."""
    h = harness
    h.fund("ana", "30.00")
    ticket = await h.cashout("ana", "12.345678", "wallet", "ana@example.com")
    result = await h.result(ticket.request_id)
    s = result.status
    assert result.stage is Stage.PAID
    assert (s.gross, s.fee, s.net, s.remainder) == (M("12.34"), M("0.29"), M("12.05"), 5_678)
    assert [e.stage for e in s.timeline][-6:] == [
        Stage.RESERVED,
        Stage.VERIFYING,
        Stage.APPROVED,
        Stage.DISBURSING,
        Stage.SENT,
        Stage.PAID,
    ]
    assert h.balance("ana") == (M("30.00") - M("12.34"), 0)
    totals = h.stack.ledger.totals("USD")
    assert (totals.paid_out, totals.fees) == (M("12.05"), M("0.29"))
    assert h.stack.rails.payouts_for(ticket.request_id) == 1
    assert h.stack.ledger.audit() == []


async def test_bank_transfer_waits_for_settlement(make_harness) -> None:  # type: ignore[no-untyped-def]
    """A bank transfer is SENT when accepted and PAID when the bank settles."""
    async with make_harness(sandbox_bank_settle_seconds=2) as h:
        h.fund("ben", "100.00")
        ticket = await h.cashout("ben", "40", "bank_transfer", IBAN_OK, holder="Ben Okafor")
        sent = await h.wait_stage(ticket.request_id, Stage.SENT)
        assert sent.expected_arrival is not None and sent.rail_reference
        assert (await h.result(ticket.request_id)).stage is Stage.PAID
        assert h.balance("ben") == (M("60.00"), 0)


async def test_gift_card_pays_face_values(harness: Harness) -> None:
    """Gift cards pay the largest sum of face values; the rest stays available."""
    h = harness
    h.fund("chloe", "40.00")
    ticket = await h.cashout("chloe", "37.99", "gift_card", "chloe@example.com")
    result = await h.result(ticket.request_id)
    assert result.stage is Stage.PAID
    assert result.status.cards == (M("25"), M("10"))
    assert h.balance("chloe") == (M("5.00"), 0)


async def test_rail_refusal_fails_and_releases_the_hold(harness: Harness) -> None:
    """A closed account (AC04) fails the cash-out and gives the hold back."""
    h = harness
    h.fund("dan", "50.00")
    ticket = await h.cashout("dan", "20", "bank_transfer", iban_ending("0404"), holder="Dan Ray")
    result = await h.result(ticket.request_id)
    assert result.stage is Stage.FAILED
    assert "AC04" in result.status.outcome and "hold released" in result.status.outcome
    assert h.balance("dan") == (M("50.00"), 0)


async def test_review_approved_by_update(harness: Harness) -> None:
    """Above the review threshold a reviewer's approval (update) lets the payout proceed."""
    h = harness
    h.fund("dev", "700.00")
    ticket = await h.cashout("dev", "600", "bank_transfer", IBAN_OK, holder="Dev Patel")
    held = await h.wait_stage(ticket.request_id, Stage.AWAITING_REVIEW)
    assert held.approvals_needed == 1 and "above the review threshold" in (held.decision or "")
    assert held.identity == "verified (tier 1)"
    status = await h.client.review(
        ticket.request_id, reviewer="bob", decision="approve", reason="known payee"
    )
    assert status.reviews[-1].accepted and status.reviews[-1].via == "sdk"
    result = await h.result(ticket.request_id)
    assert result.stage is Stage.PAID
    assert "approved by review" in next(
        e.note for e in result.status.timeline if e.stage is Stage.APPROVED
    )


async def test_review_rejected_by_signal_releases_hold(harness: Harness) -> None:
    """A reject signal (as from the Temporal UI) rejects and gives the money back."""
    h = harness
    h.fund("eli", "700.00")
    ticket = await h.cashout("eli", "600", "wallet", "eli@example.com")
    await h.wait_stage(ticket.request_id, Stage.AWAITING_REVIEW)
    assert h.balance("eli") == (M("100.00"), M("600.00"))
    await h.client.reject(ticket.request_id, reviewer="carol", reason="suspicious pattern")
    result = await h.result(ticket.request_id)
    assert result.stage is Stage.REJECTED
    assert result.status.outcome.startswith("rejected by carol: suspicious pattern")
    assert h.balance("eli") == (M("700.00"), 0)
    assert h.stack.rails.payouts_for(ticket.request_id) == 0


async def test_four_eyes_needs_two_distinct_reviewers_one_senior(harness: Harness) -> None:
    """Above four_eyes_above: a second approval from the same reviewer, or two juniors,
    do not count; refusals are recorded."""
    h = harness
    h.fund("eve", "2200.00")
    ticket = await h.cashout("eve", "2100", "wallet", "+4915112345678")
    rid = ticket.request_id
    held = await h.wait_stage(rid, Stage.AWAITING_REVIEW)
    assert held.approvals_needed == 2
    await h.client.review(rid, reviewer="bob", decision="approve")
    with pytest.raises(ReviewRefused, match="'bob' has already approved"):
        await h.client.review(rid, reviewer="bob", decision="approve")
    with pytest.raises(ReviewRefused, match="must come from a senior reviewer"):
        await h.client.review(rid, reviewer="carol", decision="approve")
    assert (await h.client.status(rid)).stage is Stage.AWAITING_REVIEW
    await h.client.review(rid, reviewer="alice", decision="approve")
    result = await h.result(rid)
    assert result.stage is Stage.PAID
    verdicts = [(r.reviewer, r.accepted) for r in result.status.reviews]
    assert verdicts == [("bob", True), ("bob", False), ("carol", False), ("alice", True)]


async def test_self_approval_and_strangers_are_refused_and_recorded(harness: Harness) -> None:
    """A reviewer cannot approve their own cash-out; unknown reviewers are refused;
    refused signals are recorded in the timeline, not dropped."""
    h = harness
    h.fund("alice", "700.00")
    ticket = await h.cashout("alice", "600", "wallet", "alice@example.com")
    rid = ticket.request_id
    await h.wait_stage(rid, Stage.AWAITING_REVIEW)
    with pytest.raises(ReviewRefused, match="cannot decide on their own cash-out"):
        await h.client.review(rid, reviewer="alice", decision="approve")
    await h.client.approve(rid, reviewer="mallory", reason="trust me")  # a signal
    status = await h.wait_for(rid, lambda s: len(s.reviews) == 2)
    assert [r.refusal for r in status.reviews] == [
        "reviewers cannot decide on their own cash-out",
        "'mallory' is not a registered reviewer",
    ]
    assert any("refused approve from 'mallory'" in e.note for e in status.timeline)
    assert status.stage is Stage.AWAITING_REVIEW
    await h.client.review(rid, reviewer="bob", decision="approve")
    assert (await h.result(rid)).stage is Stage.PAID


async def test_payee_cancel_releases_the_hold(harness: Harness) -> None:
    """The payee can cancel while held for review; others cannot; after payment no one can."""
    h = harness
    h.fund("fay", "700.00")
    ticket = await h.cashout("fay", "600", "wallet", "fay@example.com")
    rid = ticket.request_id
    await h.wait_stage(rid, Stage.AWAITING_REVIEW)
    with pytest.raises(CancelRefused, match="neither the payee nor a registered reviewer"):
        await h.client.cancel(rid, requested_by="someone-else")
    status = await h.client.cancel(rid, requested_by="fay", reason="changed my mind")
    assert status.stage is Stage.CANCELLED
    assert "cancelled by fay: changed my mind" in status.outcome
    assert h.balance("fay") == (M("700.00"), 0)

    paid = await h.cashout("fay", "10", "wallet", "fay@example.com")
    await h.result(paid.request_id)
    with pytest.raises(CancelRefused, match="too late to cancel: the cash-out is PAID"):
        await h.client.cancel(paid.request_id, requested_by="fay")


async def test_insufficient_funds_fails_without_a_hold(harness: Harness) -> None:
    """A cash-out beyond the available balance fails cleanly; nothing is held or sent."""
    h = harness
    h.fund("gus", "8.00")
    ticket = await h.cashout("gus", "10", "bank_transfer", IBAN_OK, holder="Gus Grey")
    result = await h.result(ticket.request_id)
    assert result.stage is Stage.FAILED
    assert "more than the available balance of 8.00 USD" in result.status.outcome
    assert h.balance("gus") == (M("8.00"), 0)
    assert h.stack.rails.payouts_for(ticket.request_id) == 0


async def test_identity_rejected_rejects_and_releases(harness: Harness) -> None:
    """Above the identity threshold a rejected identity rejects the cash-out."""
    h = harness
    h.stack.identity.register("hal", "rejected")
    h.fund("hal", "100.00")
    ticket = await h.cashout("hal", "60", "wallet", "hal@example.com")
    result = await h.result(ticket.request_id)
    assert result.stage is Stage.REJECTED
    assert result.status.outcome.startswith("identity rejected")
    assert h.balance("hal") == (M("100.00"), 0)


async def test_transient_rail_errors_are_retried(make_harness) -> None:  # type: ignore[no-untyped-def]
    """A 503 from the rail is retried with the same key; the payee is paid once."""
    async with make_harness(sandbox_transient_rate=0.5, sandbox_seed=11) as h:
        rails = h.stack.rails
        rid = request_id_where(
            h,
            lambda key: (
                rails._chance(key, 1, "transient") < 0.5
                and rails._chance(key, 2, "transient") >= 0.5
            ),
        )
        h.fund("ivy", "20.00")
        ticket = await h.cashout("ivy", "10", "wallet", "ivy@example.com", request_id=rid)
        assert (await h.result(ticket.request_id)).stage is Stage.PAID
        assert rails.calls_for(f"cashout-{rid}:disburse") == 2
        assert rails.payouts_for(rid) == 1


async def test_ambiguous_rail_timeout_pays_exactly_once(make_harness) -> None:  # type: ignore[no-untyped-def]
    """The rail applies the payout and the answer is lost: the retry asks the rail and
    finds it, instead of paying again."""
    async with make_harness(sandbox_timeout_rate=0.5, sandbox_seed=5) as h:
        rails = h.stack.rails
        rid = request_id_where(h, lambda key: rails._chance(key, 1, "timeout") < 0.5)
        h.fund("jon", "20.00")
        ticket = await h.cashout("jon", "10", "wallet", "jon@example.com", request_id=rid)
        result = await h.result(ticket.request_id)
        assert result.stage is Stage.PAID
        assert rails.payouts_for(rid) == 1
        assert rails.calls_for(f"cashout-{rid}:disburse") == 1
        assert any("resolved by asking the rail" in e.note for e in result.status.timeline)
        assert h.stack.ledger.totals("USD").paid_out == result.status.net


async def test_duplicate_request_id_returns_the_existing_run(harness: Harness) -> None:
    """The platform's retry gets the existing run; other content under the id is refused."""
    h = harness
    h.fund("kim", "50.00")
    first = await h.cashout("kim", "10", "wallet", "kim@example.com", request_id="dup-1")
    again = await h.cashout("kim", "10", "wallet", "kim@example.com", request_id="dup-1")
    assert (again.existing, again.workflow_id) == (True, first.workflow_id)
    await h.result("dup-1")
    after = await h.cashout("kim", "10", "wallet", "kim@example.com", request_id="dup-1")
    assert after.existing
    with pytest.raises(RequestConflict, match="'dup-1' was already used for a different"):
        await h.cashout("kim", "11", "wallet", "kim@example.com", request_id="dup-1")
    assert h.balance("kim") == (M("40.00"), 0)


async def test_bad_requests_are_refused_before_starting(harness: Harness) -> None:
    """Invalid destinations never start a workflow; the error names the field."""
    h = harness
    with pytest.raises(InvalidInput, match="destination.iban: 'DE00123' is not a valid IBAN"):
        await h.cashout("lee", "20", "bank_transfer", "DE00123", holder="Lee")
    with pytest.raises(InvalidInput, match="destination.holder_name: contains control"):
        await h.cashout("lee", "20", "bank_transfer", IBAN_OK, holder="Lee\u202eeL")
    with pytest.raises(InvalidInput, match="destination.wallet_id"):
        await h.cashout("lee", "20", "wallet", "not a wallet")


async def test_operators_see_stage_and_summary_without_personal_data(harness: Harness) -> None:
    """Search attributes carry stage, user, method, amount and risk; the summary and
    attributes hold no name, IBAN or address."""
    h = harness
    h.fund("max", "700.00")
    ticket = await h.cashout("max", "600", "bank_transfer", IBAN_OK, holder="Max Mustermann")
    await h.wait_stage(ticket.request_id, Stage.AWAITING_REVIEW)
    desc = await h.temporal.get_workflow_handle(ticket.workflow_id).describe()
    attrs = desc.typed_search_attributes
    assert attrs.get(search.STAGE) == "AWAITING_REVIEW"
    assert attrs.get(search.USER) == "max"
    assert attrs.get(search.METHOD) == "bank_transfer"
    assert attrs.get(search.AMOUNT) == M("600")
    assert attrs.get(search.RISK) is not None
    summary = await desc.static_summary()
    details = await desc.static_details()
    shown = f"{summary} {details} {attrs}"
    assert "600.00 USD" in (summary or "")
    for secret in ("Mustermann", IBAN_OK, "370400440532013000"):
        assert secret not in shown
    pending = await _eventually(lambda: h.client.pending_reviews(), ticket.request_id)
    assert pending.user_id == "max" and pending.amount == M("600")


async def _eventually(fetch, request_id: str):  # type: ignore[no-untyped-def]
    import asyncio

    for _ in range(100):
        for p in await fetch():
            if p.request_id == request_id:
                return p
        await asyncio.sleep(0.1)
    raise AssertionError(f"{request_id} never listed")
