"""What the platform does with reversals through the client: reverse (part of) an earning.

The platform signs the request (`trust.reversal_message`); the worker applies it in an
`EarningReversalWorkflow` of its own, or refuses it with the reason (`ReversalRefused`)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from payouts.domain import trust
from payouts.domain.money import parse_micros
from payouts.domain.reversals import ReversalRequest, ReversalResult
from payouts.errors import ReversalRefused
from payouts.security.keys import SigningKey
from payouts.temporal import contract
from payouts.temporal.contract import Workflow
from payouts.temporal.platform_requests import checked, signed

if TYPE_CHECKING:
    from temporalio.client import Client, WorkflowHandle


class ReversalCalls:
    """The reversal part of `PayoutsClient` (which provides the transport and the key)."""

    client: Client
    task_queue: str
    platform_key: SigningKey | None

    async def reverse_earning(
        self,
        event_id: str,
        *,
        user_id: str,
        currency: str,
        reason: str,
        amount: str | int | None = None,
        reversal_id: str | None = None,
    ) -> ReversalResult:
        """Take back `amount` (a decimal string, or micro-units; None: all that is left) of
        `user_id`'s earning `event_id` in `currency`, for `reason`. Idempotent by
        `reversal_id` (default: a new one): re-sent, it meets the first run and answers its
        result. A refusal raises `ReversalRefused` naming the event."""
        micros = (
            parse_micros(amount, field="amount", allow_zero=False)
            if isinstance(amount, str)
            else amount
        )
        request = checked(
            ReversalRequest,
            reversal_id=reversal_id or f"rv-{uuid.uuid4().hex[:20]}",
            event_id=event_id,
            user_id=user_id,
            currency=currency.upper(),
            amount=micros,
            reason=reason.strip(),
            requested_at=datetime.now(UTC),
        )
        request = signed(request, self.platform_key, trust.reversal_message)
        wid = contract.reversal_workflow_id(request.reversal_id)
        try:
            handle = await self.client.start_workflow(
                Workflow.REVERSAL,
                request,
                id=wid,
                task_queue=self.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                result_type=ReversalResult,
                memo={"request": request.digest()},
            )
        except WorkflowAlreadyStartedError:
            handle = self.client.get_workflow_handle(wid, result_type=ReversalResult)
            await self._same_request(handle, request)
        result: ReversalResult = await handle.result()
        if not result.applied:
            raise ReversalRefused(result.refusal, field="event_id")
        return result

    async def _same_request(
        self, handle: WorkflowHandle[Any, Any], request: ReversalRequest
    ) -> None:
        """The run already under this id must be ours, for this request, before its answer
        is believed: our workflow on our task queue, with this request's digest (a run
        someone else started under a guessed id, on a queue their own worker answers,
        would otherwise report anything)."""
        desc = await handle.describe()
        memo = await desc.memo()
        ours = desc.workflow_type == Workflow.REVERSAL and desc.task_queue == self.task_queue
        if not ours or memo.get("request") != request.digest():
            raise ReversalRefused(
                f"reversal_id: {request.reversal_id!r} is taken by another run than this "
                "request; send it under a new id",
                field="reversal_id",
            )
