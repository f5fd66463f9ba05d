"""Attacks on the trust boundary, each through a real path (raw Temporal starts, signals
and updates as anyone with Temporal access can send them, the `temporal` CLI, the client):
every one is refused, recorded, and moves no money."""

from __future__ import annotations

import asyncio
import json
import subprocess
from datetime import timedelta
from typing import Any

import pytest

from payouts.devstack import devserver
from payouts.devstack.demo import sandbox_iban
from payouts.domain import trust
from payouts.domain.cashout import CancelRequest, CashoutInput, ReviewDecision, Stage
from payouts.domain.messages import BankEvent, WalletEvent
from payouts.errors import CancelRefused, ReviewRefused
from payouts.rails.bank import book
from payouts.security.keys import SigningKey
from payouts.security.signatures import sign_decision, sign_request
from payouts.store.security_log import entries as security_log_entries
from payouts.temporal import contract
from tests.support.attacks import (
    build,
    held,
    nothing_moved,
    start_raw,
    until_audited,
)
from tests.support.harness import Harness

M = 1_000_000


async def refused_at_admission(h: Harness, user: str, inp: CashoutInput, why: str) -> None:
    before = h.balance(user)
    rid = await start_raw(h, inp)
    result = await h.result(rid)
    assert result.stage is Stage.REJECTED
    assert result.status.outcome.startswith("not admitted: ") and why in result.status.outcome
    nothing_moved(h, user, rid, before)
    logged = [e for e in security_log_entries(h.stack.db) if e.subject.endswith(rid)]
    assert logged and why in logged[0].reason and logged[0].action == "start cash-out"


async def test_a_start_without_the_platforms_signature_is_refused(harness: Harness) -> None:
    """Another user's id, the attacker's own wallet, no signature: REJECTED before any
    hold, and the security log names what it claimed."""
    h = harness
    h.fund("victim", "200.00")
    inp = await build(h, "victim", 150 * M, "wallet", "mallory@example.com")
    await refused_at_admission(h, "victim", inp, "request: not signed by the platform")


async def test_a_start_signed_by_another_key_is_refused(harness: Harness) -> None:
    h = harness
    h.fund("vic", "200.00")
    inp = sign_request(SigningKey.generate(), await build(h, "vic", 50 * M, "wallet", "v@e.org"))
    await refused_at_admission(h, "vic", inp, "the platform's signature does not verify")


async def test_own_rules_are_refused_even_on_a_signed_request(harness: Harness) -> None:
    """A genuine, signed request whose rules the attacker rewrote (no review, no limits, a
    reviewer of their own): the worker's registry decides, not the input."""
    h = harness
    h.fund("ros", "900.00")
    inp = await build(h, "ros", 800 * M, "wallet", "ros@example.com")
    cur = inp.rules.currency_rules.model_copy(
        update={"review_above": 10**15, "four_eyes_above": 10**15}
    )
    rules = inp.rules.model_copy(
        update={"currency_rules": cur, "reviewers": {"mallory": ("senior",)}, "reviewer_keys": {}}
    )
    forged = sign_request(
        h.stack.deployment.platform_key(), inp.model_copy(update={"rules": rules})
    )
    await refused_at_admission(h, "ros", forged, "rules: not the registered slice")


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"fee": -990 * M, "net": 1000 * M}, "quote: it no longer matches the policy"),
        ({"policy_version": "f00dfeedbeef"}, "policy version 'f00dfeedbeef' is not registered"),
        ({"quoted_at": "FUTURE"}, "quote.quoted_at: in the future"),
    ],
    ids=["negative-fee", "foreign-version", "future-quote"],
)
async def test_forged_quotes_are_refused(
    harness: Harness, change: dict[str, Any], why: str
) -> None:
    """A 10 USD hold that would send 1,000 USD, a policy version nobody registered, a
    quote dated in the future: all refused before anything is held, even when signed."""
    h = harness
    h.fund("quinn", "50.00")
    inp = await build(h, "quinn", 10 * M, "wallet", "quinn@example.com")
    now = await h.env.get_current_time()
    if change.get("quoted_at") == "FUTURE":
        change = {"quoted_at": now + timedelta(hours=1)}
    quote = inp.quote.model_copy(update={"quoted_at": now, **change})
    request = inp.request.model_copy(update={"quote": quote})
    forged = inp.model_copy(update={"request": request, "quote": quote})
    signed = sign_request(h.stack.deployment.platform_key(), forged)
    await refused_at_admission(h, "quinn", signed, why)


async def test_forged_gift_card_faces_are_refused(harness: Harness) -> None:
    h = harness
    h.fund("gia", "50.00")
    inp = await build(h, "gia", 25 * M, "gift_card", "gia@example.com")
    quote = inp.quote.model_copy(update={"cards": (500 * M,)})
    forged = inp.model_copy(
        update={"quote": quote, "request": inp.request.model_copy(update={"quote": quote})}
    )
    signed = sign_request(h.stack.deployment.platform_key(), forged)
    await refused_at_admission(h, "gia", signed, "quote: it no longer matches the policy")


async def test_an_unsigned_or_forged_approval_is_refused(harness: Harness) -> None:
    """`{"reviewer": "alice"}` typed by someone else, or signed with a key that is not
    alice's: refused, in the audit trail, still awaiting review, nothing paid."""
    h = harness
    rid = await held(h, "ann", "600")
    handle = h.temporal.get_workflow_handle(contract.cashout_id(rid))
    await handle.signal("approve", ReviewDecision(reviewer="alice"))
    forged = await h.client.signed_decision(
        rid, reviewer="alice", decision="approve", key=SigningKey.generate()
    )
    await handle.signal("approve", forged)
    trail = await until_audited(h, rid, 2)
    assert trail[0][2:] == (
        False,
        "unsigned: sign it with your key (payouts review approve, or payouts review sign)",
    )
    assert trail[1][3].startswith("signature does not verify")
    status = await h.client.status(rid)
    assert status.stage is Stage.AWAITING_REVIEW and h.wallet.payouts_for(handle.id) == 0


async def test_one_person_cannot_be_two_reviewers(harness: Harness) -> None:
    """Bob approves a four-eyes cash-out, then signs an approval as alice with his own key:
    refused; the cash-out waits for a second key."""
    h = harness
    rid = await held(h, "fox", "2100")
    bob = h.stack.deployment.reviewer_key("bob")
    await h.client.review(rid, reviewer="bob", decision="approve")
    with pytest.raises(ReviewRefused, match="signature does not verify"):
        await h.client.review(rid, reviewer="alice", decision="approve", key=bob)
    status = await h.client.status(rid)
    assert status.stage is Stage.AWAITING_REVIEW
    assert [r.reviewer for r in status.reviews if r.accepted] == ["bob"]
    await h.client.review(rid, reviewer="alice", decision="approve")
    assert (await h.result(rid)).stage is Stage.PAID


async def test_signatures_are_bound_to_one_cash_out_and_used_once(harness: Harness) -> None:
    """A decision signed for another cash-out, one signed twenty minutes ago, and one
    already used are refused; the real one counts."""
    h = harness
    first, second = await held(h, "gil", "600"), await held(h, "hal", "2100")
    handle = h.temporal.get_workflow_handle(contract.cashout_id(second))
    elsewhere = await h.client.signed_decision(first, reviewer="carol", decision="approve")
    await handle.signal("approve", elsewhere)
    carol = h.stack.deployment.reviewer_key("carol")
    digest = (await h.client.status(second)).request_digest
    old = (await h.env.get_current_time() - timedelta(minutes=20)).isoformat()
    message = trust.decision_message(
        workflow_id=handle.id, digest=digest, decision="approve", reviewer="carol",
        reason="", signed_at=old, nonce="n-old",
    )  # fmt: skip
    await handle.signal(
        "approve",
        ReviewDecision(
            reviewer="carol", signed_at=old, nonce="n-old", signature=carol.sign(message)
        ),
    )
    # carol counts once; bob's (junior) second approval is refused by the senior rule, and
    # its signature, re-sent, is refused as a replay
    await h.client.review(second, reviewer="carol", decision="approve")
    bobs = await h.client.signed_decision(second, reviewer="bob", decision="approve")
    await handle.signal("approve", bobs)
    await handle.signal("approve", bobs)
    trail = await until_audited(h, second, 5)
    refusals = [r[3] for r in trail if not r[2]]
    assert refusals[0].startswith("signature does not verify")
    assert refusals[1].startswith("stale: signed more than 15 minutes ago")
    assert refusals[2] == "one of the two approvals must come from a senior reviewer"
    assert refusals[3] == "replayed: this signature was used before"
    assert (await h.client.status(second)).stage is Stage.AWAITING_REVIEW


async def test_a_stranger_cannot_cancel_and_temporal_cancellation_does_not(
    harness: Harness,
) -> None:
    """An unsigned cancel claiming to be the payee, a cancel signed by a key that is not
    the platform's, and a Temporal cancellation are refused; the signed cancel works."""
    h = harness
    rid = await held(h, "ivy", "600")
    handle = h.temporal.get_workflow_handle(contract.cashout_id(rid))
    await handle.signal("cancel", CancelRequest(requested_by="ivy", reason="unsigned"))
    with pytest.raises(CancelRefused, match="signature does not verify"):
        await h.client.cancel(rid, requested_by="ivy", key=SigningKey.generate())
    await handle.cancel()
    status = await h.wait_for(
        rid, lambda s: any("cancellation refused" in e.note for e in s.timeline)
    )
    assert status.stage is Stage.AWAITING_REVIEW
    assert h.balance("ivy") == (100 * M, 600 * M)
    done = await h.client.cancel(rid, requested_by="ivy", reason="changed my mind")
    assert done.stage is Stage.CANCELLED and h.balance("ivy") == (700 * M, 0)


async def test_spoofed_bank_events_are_refused(harness: Harness) -> None:
    """While the transfer waits for review: a "rejected" typed by anyone (the attack that
    paid and kept the balance), one signed by our key for another cash-out, and one signed
    for this one (no genuine answer can exist before the transfer is queued) are refused;
    the approved transfer leaves, is paid once, and the balance is spent."""
    h = harness
    h.fund("jon", "700.00")
    ticket = await h.cashout("jon", "600", "bank_transfer", sandbox_iban("7101"), holder="Jon")
    rid, wid = ticket.request_id, ticket.workflow_id
    await h.wait_stage(rid, Stage.AWAITING_REVIEW)
    handle = h.temporal.get_workflow_handle(wid)
    rejected = BankEvent(kind="rejected", end_to_end_id=book.end_to_end_id(wid), code="AC04")
    key = h.stack.service_key

    def signed_for(workflow_id: str) -> BankEvent:
        message = trust.rail_event_message(workflow_id, "bank", rejected.model_dump(mode="json"))
        return rejected.model_copy(update={"signature": key.sign(message)})

    for event in (rejected, signed_for("cashout-other"), signed_for(wid)):
        await handle.signal("bank_event", event)
    await h.client.review(rid, reviewer="alice", decision="approve")
    await h.wait_for(rid, lambda s: any("queued for the next" in e.note for e in s.timeline))
    await h.bank_cycle()
    status = await h.wait_stage(rid, Stage.PAID)
    notes = [e.note for e in status.timeline if e.note.startswith("refused bank event")]
    assert len(notes) == 3
    assert sum("not signed by our rail components" in n for n in notes) == 2
    assert "does not fit a cash-out that was AWAITING_REVIEW" in notes[2]
    assert h.balance("jon") == (100 * M, 0)
    item = book.item_for(h.stack.db, wid)
    assert item is not None and item.status == "booked"
    trail = await until_audited(h, rid, 4)
    assert [(r[0], r[2]) for r in trail] == [("alice", True)] + [("rail", False)] * 3


async def test_a_wallet_failure_for_another_payout_is_refused(make_harness: Any) -> None:
    """A "failed" signed by our key but naming another payout, and an unsigned one: both
    refused and noted; the cash-out stays with the provider."""
    async with make_harness(sandbox_wallet_complete_seconds=30) as h:  # the webhook waits
        await _wallet_failure_refused(h)


async def _wallet_failure_refused(h: Harness) -> None:
    h.fund("kim", "30.00")
    ticket = await h.cashout("kim", "20", "wallet", "kim@example.com")
    handle = h.temporal.get_workflow_handle(ticket.workflow_id)
    await h.wait_stage(ticket.request_id, Stage.SENT)
    fake = WalletEvent(
        event_id="evt-x", type="payout.failed", payout_id="po_other", status="failed"
    )
    message = trust.rail_event_message(ticket.workflow_id, "wallet", fake.model_dump(mode="json"))
    await handle.signal(
        "wallet_event", fake.model_copy(update={"signature": h.stack.service_key.sign(message)})
    )
    await handle.signal(
        "wallet_event",
        WalletEvent(event_id="evt-y", type="payout.failed", payout_id="x", status="failed"),
    )
    status = await h.wait_for(
        ticket.request_id, lambda s: sum("refused wallet event" in e.note for e in s.timeline) == 2
    )
    assert status.stage is Stage.SENT
    refused = [e.note for e in status.timeline if "refused wallet event" in e.note]
    assert any("it names another payout" in n for n in refused), refused


async def test_the_temporal_cli_cannot_start_a_cash_out(harness: Harness) -> None:
    """`temporal workflow start` with a well-formed input and no signature: REJECTED."""
    h = harness
    h.fund("lea", "100.00")
    inp = await build(h, "lea", 40 * M, "wallet", "lea@example.com")
    before = h.balance("lea")
    wid = contract.cashout_id(inp.request.request_id)
    done = await asyncio.to_thread(
        subprocess.run,
        [
            str(devserver.temporal_cli()), "workflow", "start", "--type", "CashoutWorkflow",
            "--task-queue", h.task_queue, "--workflow-id", wid,
            "--address", h.temporal.service_client.config.target_host,
            "--input", json.dumps(inp.model_dump(mode="json")),
        ],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = await h.result(inp.request.request_id)
    assert result.stage is Stage.REJECTED
    assert result.status.outcome == "not admitted: request: not signed by the platform"
    nothing_moved(h, "lea", inp.request.request_id, before)


async def test_a_signed_decision_pasted_as_ui_json_counts(harness: Harness) -> None:
    """What `payouts review sign` prints is plain JSON a person can paste: sent as such
    (unencrypted, as the UI sends it), it approves."""
    h = harness
    rid = await held(h, "max", "600")
    handle = h.temporal.get_workflow_handle(contract.cashout_id(rid))
    carol = h.stack.deployment.reviewer_key("carol")
    digest = (await h.client.status(rid)).request_digest
    signed = sign_decision(
        carol,
        workflow_id=handle.id,
        digest=digest,
        decision="approve",
        reviewer="carol",
        reason="ok",
    )
    await handle.signal(
        "approve", ReviewDecision(reviewer="carol", reason="ok", **signed.model_dump())
    )
    assert (await h.result(rid)).stage is Stage.PAID
