"""What reviewers do through the client: list held cash-outs, approve or reject them with
their signature, or print a signed decision to paste into the Temporal UI."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from payouts.domain.cashout import Answer, CashoutStatus, ReviewDecision, Signed
from payouts.errors import InvalidInput, PayoutError, ReviewRefused
from payouts.security.keys import SigningKey
from payouts.security.signatures import sign_decision
from payouts.temporal import contract, search
from payouts.temporal.contract import Decision, Signal, Workflow

if TYPE_CHECKING:
    from temporalio.client import Client


@dataclass(frozen=True)
class PendingReview:
    request_id: str
    user_id: str
    method: str
    currency: str
    amount: int
    risk_score: int | None
    started: datetime | None
    summary: str


class ReviewerCalls:
    """The reviewers' half of `PayoutsClient` (which provides the transport)."""

    client: Client
    keyring: Callable[[str], SigningKey] | None

    async def status(self, request_id: str) -> CashoutStatus: ...  # type: ignore[empty-body]

    async def _signal(self, request_id: str, name: str, payload: object, *args: Any) -> None: ...

    async def _answer(self, request_id: str, ref: str) -> Answer: ...  # type: ignore[empty-body]

    def _reviewer_key(self, reviewer: str) -> SigningKey | None:
        if self.keyring is None:
            return None
        try:
            return self.keyring(reviewer)
        except PayoutError:
            return None

    async def signed_decision(
        self,
        request_id: str,
        *,
        reviewer: str,
        decision: str,
        reason: str = "",
        key: SigningKey | None = None,
    ) -> ReviewDecision:
        """A decision signed for this cash-out (its workflow and request digest): what
        `review` sends, and what `payouts review sign` prints for the Temporal UI."""
        if decision not in Decision.ALL:
            raise InvalidInput("decision: must be approve or reject", field="decision")
        signer = key or self._reviewer_key(reviewer)
        signed = Signed()
        if signer is not None:
            digest = (await self.status(request_id)).request_digest
            signed = sign_decision(
                signer,
                workflow_id=contract.cashout_id(request_id),
                digest=digest,
                decision=decision,
                reviewer=reviewer,
                reason=reason,
            )
        return ReviewDecision(reviewer=reviewer, reason=reason, **signed.model_dump())

    async def review(
        self,
        request_id: str,
        *,
        reviewer: str,
        decision: str,
        reason: str = "",
        client: str = "sdk",
        key: SigningKey | None = None,
    ) -> CashoutStatus:
        """Approve or reject and wait for the workflow's answer (milliseconds): a refused
        decision raises `ReviewRefused` with the rule it broke.

        Sent as the `approve`/`reject` signal with a fresh `ref`, then read back with the
        `answer` query, rather than as the `review` update: an update that reaches a worker
        in the same workflow task as an activity result can replay in a different order
        (a non-determinism error the chaos run found; see docs/design.md)."""
        signed = await self.signed_decision(
            request_id, reviewer=reviewer, decision=decision, reason=reason, key=key
        )
        ref = uuid.uuid4().hex
        req = signed.model_copy(update={"client": client, "ref": ref})
        await self._signal(request_id, decision, req, ReviewRefused, "no longer reviewable")
        answer = await self._answer(request_id, ref)
        if not answer.accepted:
            raise ReviewRefused(answer.refusal)
        return await self.status(request_id)

    async def approve(
        self,
        request_id: str,
        *,
        reviewer: str,
        reason: str = "",
        client: str = "sdk",
        key: SigningKey | None = None,
    ) -> None:
        """Send the `approve` signal (fire and forget; refusals show in the status)."""
        await self._send(request_id, Signal.APPROVE, reviewer, reason, client, key)

    async def reject(
        self,
        request_id: str,
        *,
        reviewer: str,
        reason: str = "",
        client: str = "sdk",
        key: SigningKey | None = None,
    ) -> None:
        await self._send(request_id, Signal.REJECT, reviewer, reason, client, key)

    async def _send(
        self,
        request_id: str,
        decision: str,
        reviewer: str,
        reason: str,
        client: str,
        key: SigningKey | None,
    ) -> None:
        signed = await self.signed_decision(
            request_id, reviewer=reviewer, decision=decision, reason=reason, key=key
        )
        await self._signal(request_id, decision, signed.model_copy(update={"client": client}))

    async def pending_reviews(self, limit: int = 100) -> list[PendingReview]:
        """Cash-outs awaiting review, oldest first (Temporal visibility: eventually consistent)."""
        found: list[PendingReview] = []
        query = (
            f'WorkflowType = "{Workflow.CASHOUT}" AND PayoutStage = "AWAITING_REVIEW" AND '
            'ExecutionStatus = "Running"'
        )
        async for wf in self.client.list_workflows(query, limit=limit):
            attrs = wf.typed_search_attributes
            found.append(
                PendingReview(
                    request_id=contract.request_id_of(wf.id),
                    user_id=attrs.get(search.USER) or "",
                    method=attrs.get(search.METHOD) or "",
                    currency=attrs.get(search.CURRENCY) or "",
                    amount=attrs.get(search.AMOUNT) or 0,
                    risk_score=attrs.get(search.RISK),
                    started=wf.start_time,
                    summary="",
                )
            )
        found.sort(key=lambda p: p.started or datetime.min.replace(tzinfo=UTC))
        return found
