"""End to end on the real dev server: every method, reviews, cancel, refusals."""

from __future__ import annotations

import asyncio

import pytest

from payouts.devstack.demo import sandbox_iban
from payouts.domain.cashout import Answer, CashoutStatus, ReviewDecision, ReviewRequest, Stage
from payouts.domain.money import parse_micros
from payouts.errors import CancelRefused, InvalidInput, RequestConflict, ReviewRefused
from payouts.temporal import search
from tests.support.harness import Harness

M = parse_micros
IBAN_OK = "DE89370400440532013000"


def stages(status) -> list[Stage]:  # type: ignore[no-untyped-def]
    """The stages a cash-out went through, in order, each once."""
    seen: list[Stage] = []
    for e in status.timeline:
        if not seen or seen[-1] is not e.stage:
            seen.append(e.stage)
    return seen


async def test_wallet_cashout_is_paid_on_the_webhook(harness: Harness) -> None:
    """A wallet cash-out pays net, books the fee and keeps the sub-cent rest; PAID comes
    with the provider's signed webhook."""
    h = harness
    h.fund("ana", "30.00")
    ticket = await h.cashout("ana", "12.345678", "wallet", "ana@example.com")
    result = await h.result(ticket.request_id)
    s = result.status
    assert result.stage is Stage.PAID
    assert (s.gross, s.fee, s.net, s.remainder) == (M("12.34"), M("0.29"), M("12.05"), 5_678)
    assert stages(s) == [
        Stage.REQUESTED,
        Stage.RESERVED,
        Stage.VERIFYING,
        Stage.APPROVED,
        Stage.DISBURSING,
        Stage.SENT,
        Stage.PAID,
    ]
    assert "wallet provider confirmed the payout" in [e.note for e in s.timeline]
    assert h.balance("ana") == (M("30.00") - M("12.34"), 0)
    totals = h.stack.ledger.totals("USD")
    assert (totals.paid_out, totals.fees) == (M("12.05"), M("0.29"))
    assert h.wallet.payouts_for(ticket.workflow_id) == 1
    assert h.cars.receiver.received >= 1
    assert h.stack.ledger.audit() == []


async def test_gift_card_pays_face_values(harness: Harness) -> None:
    """Gift cards pay the largest sum of face values; the rest stays available."""
    h = harness
    h.fund("chloe", "40.00")
    ticket = await h.cashout("chloe", "37.99", "gift_card", "chloe@example.com")
    result = await h.result(ticket.request_id)
    assert result.stage is Stage.PAID
    assert result.status.cards == (M("25"), M("10"))
    assert h.stack.gift_cards.cards_for(ticket.workflow_id) == 2
    assert h.balance("chloe") == (M("5.00"), 0)


async def test_review_approved_by_update(harness: Harness) -> None:
    """Above the review threshold a reviewer's approval (the `review` update, as the
    `temporal` CLI or another SDK sends it) lets the payout proceed."""
    h = harness
    h.fund("dev", "700.00")
    ticket = await h.cashout("dev", "600", "wallet", "dev@example.com")
    held = await h.wait_stage(ticket.request_id, Stage.AWAITING_REVIEW)
    assert held.approvals_needed == 1 and "above the review threshold" in (held.decision or "")
    assert held.identity == "verified (tier 1)"
    handle = h.client.client.get_workflow_handle(ticket.workflow_id)
    signed = await h.client.signed_decision(
        ticket.request_id, reviewer="bob", decision="approve", reason="known payee"
    )
    request = ReviewRequest(
        decision="approve", client="other", **signed.model_dump(exclude={"client", "ref"})
    )
    status = await handle.execute_update("review", request, result_type=CashoutStatus)
    assert status.reviews[-1].accepted
    assert (status.reviews[-1].via, status.reviews[-1].client) == ("update", "other")
    result = await h.result(ticket.request_id)
    assert result.stage is Stage.PAID
    approved = [e.note for e in result.status.timeline if e.stage is Stage.APPROVED]
    assert approved[0] == "approved by review"


async def test_review_by_the_sdk_is_answered_and_applied_once_per_ref(harness: Harness) -> None:
    """The SDK's review is a signal with a `ref` that the workflow answers in the `answer`
    query; a signal re-sent with the same ref (a client retry) is not applied twice."""
    h = harness
    h.fund("eve", "700.00")
    ticket = await h.cashout("eve", "600", "wallet", "eve@example.com")
    rid = ticket.request_id
    await h.wait_stage(rid, Stage.AWAITING_REVIEW)
    handle = h.client.client.get_workflow_handle(ticket.workflow_id)
    stranger = ReviewDecision(reviewer="mallory", reason="let me", ref="retry-1")
    await handle.signal("approve", stranger)
    await handle.signal("approve", stranger)
    answer = await handle.query("answer", "retry-1", result_type=Answer)
    assert answer == Answer(accepted=False, refusal="'mallory' is not a registered reviewer")
    assert await handle.query("answer", "never-sent", result_type=Answer) is None
    with pytest.raises(ReviewRefused, match="'mallory' is not a registered reviewer"):
        await h.client.review(rid, reviewer="mallory", decision="approve")
    status = await h.client.review(rid, reviewer="bob", decision="approve", client="sdk:ops")
    assert [(r.reviewer, r.accepted, r.via) for r in status.reviews] == [
        ("mallory", False, "signal"),  # once for "retry-1", although sent twice
        ("mallory", False, "signal"),  # the SDK's own attempt
        ("bob", True, "signal"),
    ]
    assert (await h.result(rid)).stage is Stage.PAID


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
    assert h.wallet.payouts_for(ticket.workflow_id) == 0


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
    assert any("refused 'approve' from 'mallory'" in e.note for e in status.timeline)
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
    ticket = await h.cashout("gus", "10", "wallet", "gus@example.com")
    result = await h.result(ticket.request_id)
    assert result.stage is Stage.FAILED
    assert "more than the available balance of 8.00 USD" in result.status.outcome
    assert h.balance("gus") == (M("8.00"), 0)
    assert h.wallet.payouts_for(ticket.workflow_id) == 0


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


async def test_wallet_failure_fails_and_releases(harness: Harness) -> None:
    """A suspended wallet: the provider's payout.failed webhook fails the cash-out."""
    h = harness
    h.fund("ivo", "30.00")
    ticket = await h.cashout("ivo", "10", "wallet", "blocked-ivo@example.com")
    result = await h.result(ticket.request_id)
    assert result.stage is Stage.FAILED
    assert "wallet suspended" in result.status.outcome
    assert h.balance("ivo") == (M("30.00"), 0)


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


async def test_bank_holder_name_must_match_the_verified_identity(harness: Harness) -> None:
    """Case, accents and word order aside, the account holder is the verified person;
    anyone else is refused (and the names stay out of the status)."""
    h = harness
    h.stack.identity.register("mia", "verified", legal_name="Mía Müller-Łukasz")
    h.fund("mia", "100.00")
    ok = await h.cashout("mia", "20", "bank_transfer", IBAN_OK, holder="MULLER-LUKASZ, mia")
    status = await h.wait_stage(ok.request_id, Stage.DISBURSING)
    assert "account holder's name matches the verified identity" in [
        e.note for e in status.timeline
    ]
    bad = await h.cashout("mia", "20", "bank_transfer", IBAN_OK, holder="Max Mustermann")
    result = await h.result(bad.request_id)
    assert result.stage is Stage.REJECTED
    assert "holder's name does not match the verified identity" in result.status.outcome
    assert "Mustermann" not in result.status.model_dump_json()


async def test_a_holder_that_cannot_be_compared_goes_to_review(harness: Harness) -> None:
    """The identity provider verified the payee but holds no legal name: the holder is not
    waved through (as it was) but reviewed, and a reviewer's approval pays it."""
    h = harness
    h.stack.identity.register("nia", "verified", legal_name=None)
    h.fund("nia", "100.00")
    ticket = await h.cashout("nia", "20", "bank_transfer", IBAN_OK, holder="Nia Noname")
    status = await h.wait_stage(ticket.request_id, Stage.AWAITING_REVIEW)
    assert status.decision == (
        "review: the account holder could not be compared with a verified identity"
    )
    assert "the identity provider has no legal name on record: to review" in [
        e.note for e in status.timeline
    ]
    await h.client.approve(ticket.request_id, reviewer="carol")
    await h.wait_stage(ticket.request_id, Stage.DISBURSING)


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
    for _ in range(100):  # visibility is eventually consistent
        listed = [p for p in await h.client.pending_reviews() if p.request_id == ticket.request_id]
        if listed:
            break
        await asyncio.sleep(0.1)
    assert listed and listed[0].user_id == "max" and listed[0].amount == M("600")


async def test_a_rejected_bank_item_fails_only_itself(harness: Harness) -> None:
    """In one batch, the transfer to a closed account (AC04) fails and is released; the
    others are paid."""
    h = harness
    for u in ("nia", "oli", "pia"):
        h.fund(u, "100.00")
    good = [
        await h.cashout(u, "20", "bank_transfer", sandbox_iban(f"100{n}"), holder=u.title())
        for n, u in enumerate(("nia", "oli"))
    ]
    bad = await h.cashout("pia", "20", "bank_transfer", sandbox_iban("0404"), holder="Pia")
    for t in (*good, bad):
        await h.wait_for(  # queued (all three are: the bank, not we, refuses the closed one)
            t.request_id, lambda s: any("queued for the next" in e.note for e in s.timeline)
        )
    await h.bank_cycle()
    for t in good:  # PAID; the workflow stays open for the return window
        await h.wait_stage(t.request_id, Stage.PAID)
    failed = await h.result(bad.request_id)
    assert failed.stage is Stage.FAILED
    assert "the bank rejected the transfer: AC04" in failed.status.outcome
    assert h.balance("pia") == (M("100.00"), 0)
    assert h.stack.ledger.audit() == []
