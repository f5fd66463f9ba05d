"""The drill's attacks on reversals (`tests.attack`): taking back a payee's earning without
the platform (unsigned, another key, a signed reversal run under another id or long after
it was signed), reading a payee's statement without it, and cashing out in another
currency while owing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from payouts.domain import trust
from payouts.domain.cashout import Stage
from payouts.domain.reversals import ReversalRequest, ReversalResult
from payouts.domain.statements import StatementPage, StatementRequest
from payouts.security.keys import SigningKey
from payouts.temporal import contract

if TYPE_CHECKING:
    from tests.attack import Drill

M = 1_000_000


async def run(d: Drill) -> None:
    h = d.h
    row = d.row(
        "reverse an earning or read a statement without the platform; cash out while owing",
        "reversals, statements",
    )
    ledger = h.stack.ledger
    earned = datetime.now(UTC) - timedelta(days=10)
    ledger.credit_earning(
        event_id="drill-rev-1", user_id="rex", currency="USD", amount=20 * M, earned_at=earned
    )
    ledger.credit_earning(
        event_id="drill-rev-eur", user_id="rex", currency="EUR", amount=20 * M, earned_at=earned
    )
    before = d.money("rex")
    key = h.stack.deployment.platform_key()
    now = datetime.now(UTC)

    def request(rid: str, at: datetime = now) -> ReversalRequest:
        return ReversalRequest(
            reversal_id=rid, event_id="drill-rev-1", user_id="rex", currency="USD",
            reason="drill", requested_at=at,
        )  # fmt: skip

    def signed(req: ReversalRequest, signer: SigningKey) -> ReversalRequest:
        signature = signer.sign(trust.reversal_message(req))
        return req.model_copy(update={"platform_signature": signature})

    for req, rid in (
        (request("drill-rv-1"), "drill-rv-1"),  # unsigned
        (signed(request("drill-rv-2"), SigningKey.generate()), "drill-rv-2"),  # another key
        (signed(request("drill-rv-3"), key), "drill-rv-3-replayed"),  # under another id
        (signed(request("drill-rv-4", now - timedelta(hours=1)), key), "drill-rv-4"),  # stale
    ):
        row.tried += 1
        result = await h.temporal.execute_workflow(
            contract.Workflow.REVERSAL, req, id=contract.reversal_workflow_id(rid),
            task_queue=h.task_queue, result_type=ReversalResult,
        )  # fmt: skip
        row.refused += int(not result.applied)
    row.moved = abs(d.money("rex") - before)

    # a payee's statement read without the platform's signature over this very read
    def ask(rid: str, signer: SigningKey | None) -> StatementRequest:
        req = StatementRequest(request_id=rid, user_id="rex", requested_at=now)
        if signer is None:
            return req
        signature = signer.sign(trust.statement_message(req))
        return req.model_copy(update={"platform_signature": signature})

    for req in (ask("drill-peek-1", None), ask("drill-peek-2", SigningKey.generate())):
        row.tried += 1
        page = await h.temporal.execute_workflow(
            contract.Workflow.STATEMENT, req, id=contract.statement_workflow_id(req.request_id),
            task_queue=h.task_queue, result_type=StatementPage,
        )  # fmt: skip
        row.refused += int(not page.served and not page.lines)

    # the platform's own reversal leaves rex owing; a cash-out in euros must wait
    ticket = await h.cashout("rex", "15", "wallet", "rex@example.com")
    paid = (await h.result(ticket.request_id)).stage is Stage.PAID
    await h.client.reverse_earning(
        "drill-rev-1", user_id="rex", currency="USD", reason="chargeback"
    )
    owed = ledger.balance("rex", "USD").owed
    euros = ledger.balance("rex", "EUR").available
    attempt = await h.cashout("rex", "15", "wallet", "rex@example.com", currency="EUR")
    row.tried += 1
    row.refused += int(
        paid and owed > 0 and (await h.result(attempt.request_id)).stage is Stage.FAILED
    )
    row.moved += abs(ledger.balance("rex", "EUR").available - euros)
