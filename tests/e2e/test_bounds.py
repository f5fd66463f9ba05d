"""A cash-out's history stays bounded whatever anyone sends it, at every long wait.

Each test floods a waiting cash-out with the largest signals that still fit
(`bounds.MAX_PAYLOAD`) and some that do not, as anyone with Temporal access can send
them; the cash-out continues as new at that wait, carries its state, and then pays (or is
returned) correctly. Every run's history stays under `BOUND_BYTES` / `BOUND_EVENTS`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError

from payouts.devstack.demo import sandbox_iban
from payouts.domain.bounds import MAX_ANSWERS, MAX_AUDITED_REFUSALS, MAX_NOTED_REFUSALS
from payouts.domain.carried import (
    ROLL_BYTES,
    ROLL_EVENTS,
    Board,
    Carried,
    Checkpoint,
    DeskState,
    Seen,
)
from payouts.domain.cashout import Answer, ReviewDecision, ReviewRequest, Stage
from payouts.domain.messages import BankEvent, WalletEvent
from payouts.security.signatures import sign_request
from payouts.store import audit
from payouts.temporal import contract
from tests.support.attacks import build, held, nothing_moved, start_raw
from tests.support.harness import Harness

# a run passes the roll threshold by what arrives while it settles (a task or two)
BOUND_BYTES = 2 * ROLL_BYTES
BOUND_EVENTS = 2 * ROLL_EVENTS
FITS = 15_000  # characters: a payload just under the 16 KiB cap
CHUNK = 20


def junk_decision(i: int, size: int = FITS) -> ReviewDecision:
    return ReviewDecision(reviewer=f"m{i}-" + "x" * size, reason="r" * 100, ref=f"ref-{i}")


def junk_bank(i: int, size: int = FITS) -> BankEvent:
    return BankEvent(kind="booked", end_to_end_id=f"e{i}", reason="z" * size)


def junk_wallet(i: int, size: int = FITS) -> WalletEvent:
    return WalletEvent(
        event_id=f"evt-{i}", type="payout.completed", payout_id="p", status="completed",
        failure_reason="z" * size,
    )  # fmt: skip


async def flood(
    h: Harness, request_id: str, signal: str, make: Callable[[int], Any], *, runs: int
) -> int:
    """Send junk until the cash-out has continued as new `runs` times; returns how many."""
    handle = h.temporal.get_workflow_handle(contract.cashout_id(request_id))
    sent = 0
    while (await h.client.status(request_id)).runs < runs:
        sends = (handle.signal(signal, make(sent + i)) for i in range(CHUNK))
        for failed in await asyncio.gather(*sends, return_exceptions=True):
            if isinstance(failed, BaseException) and "completed" not in str(failed):
                raise failed  # (a run that rolled and then finished may refuse the last few)
        sent += CHUNK
        assert sent < 2_000, "the cash-out never continued as new"
    return sent


async def histories(h: Harness, request_id: str) -> list[tuple[int, int]]:
    """(bytes, events) of every run of the cash-out."""
    wid = contract.cashout_id(request_id)
    sizes = []
    async for run in h.temporal.list_workflows(f'WorkflowId = "{wid}"'):
        history = await h.temporal.get_workflow_handle(wid, run_id=run.run_id).fetch_history()
        sizes.append((sum(e.ByteSize() for e in history.events), len(history.events)))
    return sizes


async def assert_bounded(h: Harness, request_id: str, runs: int) -> None:
    sizes = await histories(h, request_id)
    print("history per run (bytes, events):", sizes)
    assert len(sizes) >= runs + 1
    for size, events in sizes:
        assert size <= BOUND_BYTES and events <= BOUND_EVENTS, sizes


async def test_a_flooded_review_continues_as_new_and_still_pays(harness: Harness) -> None:
    """Hundreds of junk approvals as large as fit, some that do not, and junk rail events:
    the review rolls into new runs, refusals are counted past their caps, the real approval
    is audited and answered, and the cash-out pays once."""
    h = harness
    rid = await held(h, "flo", "600")
    handle = h.temporal.get_workflow_handle(contract.cashout_id(rid))
    sent = await flood(h, rid, "approve", junk_decision, runs=2)
    for i in range(5):  # over the cap: dropped unread
        await handle.signal("approve", junk_decision(10_000 + i, size=40_000))
    await asyncio.gather(*(handle.signal("wallet_event", junk_wallet(i)) for i in range(20)))
    status = await h.wait_for(rid, lambda s: s.dropped == 5 and s.refused >= sent)
    assert status.stage is Stage.AWAITING_REVIEW and status.runs >= 2
    assert len([r for r in status.reviews if not r.accepted]) == MAX_NOTED_REFUSALS
    assert len(status.timeline) < MAX_NOTED_REFUSALS + 20
    await h.client.approve(rid, reviewer="carol")
    result = await h.result(rid)
    assert result.stage is Stage.PAID and result.status.refused >= sent + 20  # rail junk too
    assert h.wallet.payouts_for(handle.id) == 1
    trail = audit.entries(h.stack.db, handle.id)
    assert [r.reviewer for r in trail if r.accepted] == ["carol"]
    assert len([r for r in trail if not r.accepted]) == MAX_AUDITED_REFUSALS
    answered = await handle.query("answer", f"ref-{sent - 1}", result_type=Answer)
    assert answered is not None and not answered.accepted  # the newest refs are answered
    assert len(result.status.reviews) <= MAX_NOTED_REFUSALS + 1 <= MAX_ANSWERS
    await assert_bounded(h, rid, 2)


async def test_a_bank_transfer_rolls_while_it_waits_and_through_its_return_window(
    make_harness: Any,
) -> None:
    """Junk bank events while the transfer waits for its batch and after it is paid: the
    cash-out continues as new at both waits and still takes the bank's genuine return."""
    async with make_harness(sandbox_bank_return_seconds=1) as h:
        h.fund("ron", "300.00")
        h.stack.identity.register("ron", "verified", legal_name="Ron Weber")
        ticket = await h.cashout(
            "ron", "25", "bank_transfer", sandbox_iban("0606"), holder="Ron Weber"
        )
        rid = ticket.request_id
        await h.wait_for(rid, lambda s: any("queued" in e.note for e in s.timeline))
        before = h.balance("ron")
        await flood(h, rid, "bank_event", junk_bank, runs=1)
        await h.bank_cycle()
        await h.wait_stage(rid, Stage.PAID)
        await flood(h, rid, "bank_event", junk_bank, runs=2)
        await asyncio.sleep(1.2)
        await h.run_workflow("BankReportsWorkflow")
        result = await h.result(rid)
        assert result.stage is Stage.RETURNED
        assert h.balance("ron") == (before[0] + before[1], 0)
        await assert_bounded(h, rid, 2)


async def test_a_wallet_payout_rolls_while_it_waits_for_the_webhook(make_harness: Any) -> None:
    async with make_harness(sandbox_wallet_complete_seconds=4) as h:
        h.fund("wes", "100.00")
        ticket = await h.cashout("wes", "20", "wallet", "wes@example.com")
        rid = ticket.request_id
        await h.wait_stage(rid, Stage.SENT)
        await flood(h, rid, "wallet_event", junk_wallet, runs=1)
        result = await h.result(rid)
        assert result.stage is Stage.PAID and result.status.runs >= 1
        assert h.wallet.payouts_for(contract.cashout_id(rid)) == 1
        await assert_bounded(h, rid, 1)


async def test_a_pending_identity_check_rolls_and_resumes_polling(harness: Harness) -> None:
    """Flooded while identity is pending: each new run polls again at once, keeps the
    first run's give-up time, and goes on once the provider verifies."""
    h = harness
    h.fund("ida", "300.00")
    h.stack.identity.register("ida", "pending", legal_name="Ida Ray", pending_seconds=3600)
    ticket = await h.cashout("ida", "60", "wallet", "ida@example.com")
    rid = ticket.request_id
    await h.wait_for(rid, lambda s: (s.identity or "").startswith("pending"))
    await flood(h, rid, "approve", junk_decision, runs=1)
    status = await h.client.status(rid)
    assert status.stage is Stage.VERIFYING and (status.identity or "").startswith("pending")
    h.stack.identity.register("ida", "verified", legal_name="Ida Ray")
    await flood(h, rid, "approve", junk_decision, runs=2)
    result = await h.result(rid)
    assert result.stage is Stage.PAID and (result.status.identity or "").startswith("verified")
    assert sum(e.note.startswith("identity pending") for e in result.status.timeline) == 1
    await assert_bounded(h, rid, 2)


async def test_oversized_updates_are_rejected_before_the_history(harness: Harness) -> None:
    h = harness
    rid = await held(h, "uma", "600")
    handle = h.temporal.get_workflow_handle(contract.cashout_id(rid))
    before = len((await handle.fetch_history()).events)
    big = ReviewRequest(decision="approve", reviewer="u" * 40_000)
    with pytest.raises((WorkflowUpdateFailedError, RPCError)):
        await handle.execute_update("review", big)
    history = await handle.fetch_history()
    assert len(history.events) == before
    assert not any(e.HasField("workflow_execution_update_accepted_event_attributes")
                   for e in history.events)  # fmt: skip


async def test_carried_state_from_outside_the_run_is_refused(harness: Harness) -> None:
    """A start that carries a made-up state (held, approved, at the rail) is refused before
    anything moves: only the cash-out's own continue-as-new may carry state."""
    h = harness
    h.fund("cal", "50.00")
    before = h.balance("cal")
    inp = await build(h, "cal", 20 * 1_000_000, "wallet", "cal@example.com")
    made_up = Carried(
        at=Checkpoint.RAIL,
        runs=1,
        progress=Seen(stage=Stage.DISBURSING, timeline=(), rail_ref="p-" + uuid.uuid4().hex),
        board=Board(),
        desk=DeskState(),
        trust=None,
        held=True,
        published_stage=Stage.DISBURSING,
    )
    forged = sign_request(
        h.stack.deployment.platform_key(), inp.model_copy(update={"carried": made_up})
    )
    rid = await start_raw(h, forged)
    result = await h.result(rid)
    assert result.stage is Stage.REJECTED
    assert result.status.outcome == "not admitted: carried state from outside the run"
    nothing_moved(h, "cal", rid, before)
