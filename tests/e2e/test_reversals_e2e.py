"""Reversals end to end: the platform takes back an earning (signed, through Temporal), the
payee owes what no balance covered, the platform hears of it, cash-outs wait, the next
earnings pay it back, a reviewer sees the payee's next cash-out, and the platform reads
the payee's statement through signed pages."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.common import WorkflowIDReusePolicy

from payouts.domain import trust
from payouts.domain.cashout import Stage
from payouts.domain.reversals import OWED_CHANGED, OWED_SETTLED, ReversalRequest, ReversalResult
from payouts.domain.statements import StatementPage, StatementRequest
from payouts.errors import ReversalRefused
from payouts.ledger.statement import statement
from payouts.rails.platform.notify import body_of, outbox
from payouts.security.keys import SigningKey
from payouts.store.security_log import entries as security_log_entries
from payouts.temporal import contract
from tests.support.harness import Harness

M = 1_000_000


def earn(h: Harness, event_id: str, user: str, amount: int, currency: str = "USD") -> None:
    h.stack.ledger.credit_earning(
        event_id=event_id, user_id=user, currency=currency, amount=amount,
        earned_at=datetime.now(UTC) - timedelta(days=10),
    )  # fmt: skip


async def test_a_reversal_after_payout_is_owed_and_the_next_earnings_pay_it_back(
    harness: Harness,
) -> None:
    """Paid out, then reversed: the payee owes it (the platform hears, signed as every
    event), a cash-out in another currency waits with the reason, the next earnings settle
    it first, and the payee's next cash-out is reviewed because they owed beyond the limit."""
    h = harness
    earn(h, "task-rae-1", "rae", 30 * M)
    ticket = await h.cashout("rae", "30", "wallet", "rae@example.com")
    assert (await h.result(ticket.request_id)).stage is Stage.PAID

    done = await h.client.reverse_earning(
        "task-rae-1", user_id="rae", currency="USD", reason="requester rejected the work"
    )
    assert (done.applied, done.amount, done.from_available, done.owed) == (True, 30 * M, 0, 30 * M)
    assert h.stack.ledger.balance("rae", "USD").owed == 30 * M
    [event] = [n for n in outbox(h.stack.db) if n.stage == OWED_CHANGED and n.user_id == "rae"]
    assert b'"type": "payee.owed_changed"' in body_of(event)
    assert '"owed_after": 30000000' in event.payload_json

    earn(h, "task-rae-eur", "rae", 20 * M, "EUR")
    waiting = await h.cashout("rae", "20", "wallet", "rae@example.com", currency="EUR")
    refused = await h.result(waiting.request_id)
    assert refused.stage is Stage.FAILED  # as for insufficient funds: nothing was held
    assert "owes 30.00 USD from reversed earnings" in refused.status.outcome
    assert h.stack.ledger.balance("rae", "EUR").available == 20 * M  # nothing held

    earn(h, "task-rae-2", "rae", 50 * M)  # settles the 30 first
    bal = h.stack.ledger.balance("rae", "USD")
    assert (bal.owed, bal.available) == (0, 20 * M)
    [paid_back] = [n for n in outbox(h.stack.db) if n.stage == OWED_SETTLED and n.user_id == "rae"]
    assert b'"type": "payee.owed_settled"' in body_of(paid_back)
    again = await h.cashout("rae", "20", "wallet", "rae@example.com")
    status = await h.wait_stage(again.request_id, Stage.AWAITING_REVIEW)
    assert status.decision is not None and "owed 30.00 USD after reversed earnings" in (
        status.decision
    )
    await h.client.approve(again.request_id, reviewer="carol")
    assert (await h.result(again.request_id)).stage is Stage.PAID
    assert h.stack.ledger.audit() == []


async def test_a_reversal_is_idempotent_by_its_id_and_refused_beyond_the_earning(
    harness: Harness,
) -> None:
    """Re-sent with its id: the first result, applied once. More than is left: refused,
    naming the event; nothing moves."""
    h = harness
    earn(h, "task-sol-1", "sol", 10 * M)

    def send() -> Awaitable[ReversalResult]:
        return h.client.reverse_earning(
            "task-sol-1", user_id="sol", currency="USD", reason="price adjusted", amount="4",
            reversal_id="rv-sol-1",
        )  # fmt: skip

    first, again = await send(), await send()
    assert first.from_available == 4 * M and again == first  # the first run's answer
    assert h.stack.ledger.balance("sol", "USD").available == 6 * M
    with pytest.raises(ReversalRefused, match="'task-sol-1'.*more than the 6.00 USD left"):
        await h.client.reverse_earning(
            "task-sol-1", user_id="sol", currency="USD", reason="again", amount="7"
        )
    assert h.stack.ledger.balance("sol", "USD").available == 6 * M


async def test_a_reversal_not_signed_by_the_platform_moves_nothing(harness: Harness) -> None:
    """Unsigned, signed with another key, signed but run under another workflow id, or
    signed long ago: refused and logged; the earning stays whole."""
    h = harness
    earn(h, "task-uma-1", "uma", 10 * M)
    platform = h.client.platform_key
    assert platform is not None
    now = datetime.now(UTC)

    def request(rid: str, at: datetime = now) -> ReversalRequest:
        return ReversalRequest(
            reversal_id=rid, event_id="task-uma-1", user_id="uma", currency="USD",
            reason="fraud", requested_at=at,
        )  # fmt: skip

    def signed(req: ReversalRequest, key: SigningKey) -> ReversalRequest:
        return req.model_copy(update={"platform_signature": key.sign(trust.reversal_message(req))})

    cases = [
        (request("rv-a1"), "rv-a1", "not signed by the platform"),
        (signed(request("rv-a2"), SigningKey.generate()), "rv-a2", "does not verify"),
        (signed(request("rv-a3"), platform), "rv-other", "another workflow id"),
        (signed(request("rv-a4", now - timedelta(hours=2)), platform), "rv-a4", "too old"),
    ]
    for req, rid, why in cases:
        wid = contract.reversal_workflow_id(rid)
        result: ReversalResult = await h.temporal.execute_workflow(
            contract.Workflow.REVERSAL, req, id=wid, task_queue=h.task_queue,
            result_type=ReversalResult,
        )  # fmt: skip
        assert not result.applied and why in result.refusal, (rid, result)
        assert any(e.subject == wid for e in security_log_entries(h.stack.db))
    assert h.stack.ledger.balance("uma", "USD").available == 10 * M
    assert all(h.stack.ledger.reversal(r) is None for r in ("rv-a1", "rv-a2", "rv-a3", "rv-a4"))


async def test_the_clients_statement_pages_through_signed_reads(harness: Harness) -> None:
    """The platform's `statement()` chains signed pages into the statement the ledger
    gives whole (cash-out, reversal, owed, settlement); an unsigned read is refused and
    logged."""
    h = harness
    earn(h, "task-vic-1", "vic", 30 * M)
    ticket = await h.cashout("vic", "30", "wallet", "vic@example.com")
    assert (await h.result(ticket.request_id)).stage is Stage.PAID
    await h.client.reverse_earning("task-vic-1", user_id="vic", currency="USD", reason="chargeback")
    for i in range(12):
        earn(h, f"task-vic-later-{i}", "vic", 5 * M)
    lines = [line async for line in h.client.statement("vic", page_size=10)]
    whole = list(statement(h.stack.db, "vic"))
    assert [(x.kind, x.change, x.balance) for x in lines] == [
        (x.kind, x.change, x.balance) for x in whole
    ]
    assert {"reversal", "settlement", "cashout_paid"} <= {x.kind for x in lines}
    assert lines[-1].balance.available == h.stack.ledger.balance("vic", "USD").available

    unsigned = StatementRequest(request_id="peek-1", user_id="vic", requested_at=datetime.now(UTC))
    wid = contract.statement_workflow_id("peek-1")
    page: StatementPage = await h.temporal.execute_workflow(
        contract.Workflow.STATEMENT, unsigned, id=wid, task_queue=h.task_queue,
        result_type=StatementPage,
    )  # fmt: skip
    assert not page.served and page.lines == () and "not signed" in page.refusal
    assert any(e.subject == wid for e in security_log_entries(h.stack.db))


async def test_a_refused_reversal_run_again_answers_its_first_refusal(harness: Harness) -> None:
    """Refused (the earning was not credited yet), the same signed request run again by
    anyone with Temporal access, once the earning is there, is still refused: the id keeps
    its first outcome. Naming another payee than the earning's is refused too."""
    h = harness
    with pytest.raises(ReversalRefused, match="no earning was credited"):
        await h.client.reverse_earning(
            "task-wes-1", user_id="wes", currency="USD", reason="fraud", reversal_id="rv-wes-1"
        )
    earn(h, "task-wes-1", "wes", 10 * M)
    wid = contract.reversal_workflow_id("rv-wes-1")
    [started] = [e async for e in h.temporal.get_workflow_handle(wid).fetch_history_events()][:1]
    request = await h.temporal.data_converter.decode(
        started.workflow_execution_started_event_attributes.input.payloads, [ReversalRequest]
    )
    again: ReversalResult = await h.temporal.execute_workflow(
        contract.Workflow.REVERSAL, request[0], id=wid, task_queue=h.task_queue,
        result_type=ReversalResult, id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    )  # fmt: skip
    assert not again.applied and "no earning was credited" in again.refusal
    assert h.stack.ledger.balance("wes", "USD").available == 10 * M
    with pytest.raises(ReversalRefused, match="was credited to wes in USD; this row says zed"):
        await h.client.reverse_earning("task-wes-1", user_id="zed", currency="USD", reason="x")


async def test_a_reversal_id_taken_by_someone_elses_run_is_not_believed(harness: Harness) -> None:
    """A run started first under the platform's reversal id, on a queue the attacker's own
    worker answers: the client does not take its answer, and says the id is taken."""
    h = harness
    earn(h, "task-xia-1", "xia", 10 * M)
    decoy = ReversalRequest(
        reversal_id="rv-xia-1", event_id="task-xia-1", user_id="xia", currency="USD",
        reason="fraud", requested_at=datetime.now(UTC),
    )  # fmt: skip
    await h.temporal.start_workflow(
        contract.Workflow.REVERSAL, decoy, id=contract.reversal_workflow_id("rv-xia-1"),
        task_queue="attackers-queue",
    )  # fmt: skip
    with pytest.raises(ReversalRefused, match="taken by another run"):
        await h.client.reverse_earning(
            "task-xia-1", user_id="xia", currency="USD", reason="fraud", reversal_id="rv-xia-1"
        )
    assert h.stack.ledger.balance("xia", "USD").available == 10 * M
