"""Starting a cash-out workflow: its id, search attributes, summary and details, and what
a repeated request id means (the same request: its existing run; another: a conflict).
The platform's client and the automatic cash-out sweep both start cash-outs this way."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from payouts.domain.cashout import CashoutInput
from payouts.domain.fees import Quote
from payouts.domain.money import format_money
from payouts.errors import RequestConflict
from payouts.temporal import contract, search
from payouts.temporal.contract import Workflow


@dataclass(frozen=True)
class Ticket:
    """What `request_cashout` answers: which workflow runs it, and the quote it honours."""

    request_id: str
    workflow_id: str
    run_id: str | None
    quote: Quote
    existing: bool


def request_fingerprint(inp: CashoutInput) -> str:
    """What makes two requests with one id the same request (content, not timing)."""
    leave_out = {"quote", "speed"} if inp.request.speed == "standard" else {"quote"}
    body = inp.request.model_dump_json(exclude=leave_out)  # (standard: as before speeds)
    return hashlib.sha256(body.encode()).hexdigest()[:32]


async def start_cashout(client: Client, inp: CashoutInput, *, task_queue: str) -> Ticket:
    """Start the (signed) cash-out; a request id used before answers its existing run."""
    q = inp.quote
    wid = contract.cashout_id(inp.request.request_id)
    fingerprint = request_fingerprint(inp)
    summary = (
        f"Cash-out {format_money(q.gross, q.currency)} by {q.method.value} for user "
        f"{inp.request.user_id}"
    )
    details = "\n".join(
        [
            f"**Cash-out {inp.request.request_id}** for user `{inp.request.user_id}`",
            "",
            "| requested | gross | fee | net | stays in balance |",
            "|---|---|---|---|---|",
            "| "
            + " | ".join(format_money(v, q.currency) for v in (q.requested, q.gross, q.fee, q.net))
            + f" | {format_money(q.remainder, q.currency)} |",
            "",
            f"Method `{q.method.value}`, policy version `{q.policy_version}`.",
        ]
    )
    try:
        handle: WorkflowHandle[Any, Any] = await client.start_workflow(
            Workflow.CASHOUT,
            inp,
            id=wid,
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            memo={"request": fingerprint},
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(search.STAGE, "REQUESTED"),
                    SearchAttributePair(search.USER, inp.request.user_id),
                    SearchAttributePair(search.METHOD, q.method.value),
                    SearchAttributePair(search.CURRENCY, q.currency),
                    SearchAttributePair(search.AMOUNT, q.gross),
                ]
            ),
            static_summary=summary,
            static_details=details,
        )
        return Ticket(
            inp.request.request_id,
            wid,
            handle.first_execution_run_id or handle.result_run_id,
            q,
            existing=False,
        )
    except WorkflowAlreadyStartedError:
        existing = client.get_workflow_handle(wid)
        desc = await existing.describe()
        memo = await desc.memo()
        if memo.get("request") != fingerprint:
            raise RequestConflict(
                f"request_id: {inp.request.request_id!r} was already used for a different cash-out"
            ) from None
        return Ticket(inp.request.request_id, wid, desc.run_id, q, existing=True)


async def start_new(client: Client, inp: CashoutInput, task_queue: str) -> bool:
    """Start it unless its request id ran before (with this content or another: the
    sweep's ids are one per payee, currency and period). True when it is new."""
    try:
        return not (await start_cashout(client, inp, task_queue=task_queue)).existing
    except RequestConflict:
        return False
