"""`PayoutsClient`: the platform's and reviewers' API over the Temporal client.

The platform quotes and requests cash-outs, manages payout profiles, reverses earnings and
reads payees' statements; reviewers list held ones and decide; the payee (through the
platform) cancels and reads the status. Temporal connection settings come from Temporal's
standard environment configuration (`TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`,
`TEMPORAL_API_KEY`, TLS options, `TEMPORAL_PROFILE` and the config file), defaulting to the
embedded server at localhost:7233.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.converter import DataConverter
from temporalio.service import RPCError, RPCStatusCode

from payouts.domain import validation
from payouts.domain.cashout import (
    TERMINAL,
    Answer,
    CancelRequest,
    CashoutResult,
    CashoutStatus,
    Signed,
)
from payouts.domain.fees import Quote, Speed, quote_with_rules
from payouts.domain.money import get_currency
from payouts.domain.policy import Method, Policy
from payouts.domain.requests import build_input, method_of
from payouts.errors import (
    CancelRefused,
    InvalidState,
    NotFound,
    PayoutError,
)
from payouts.security.keys import SigningKey
from payouts.security.signatures import sign_cancel, sign_request
from payouts.temporal import contract, search
from payouts.temporal.connection import connect
from payouts.temporal.contract import Query, Signal
from payouts.temporal.profiling import ProfileCalls
from payouts.temporal.reversing import ReversalCalls
from payouts.temporal.reviewing import ReviewerCalls
from payouts.temporal.starting import Ticket, start_cashout
from payouts.temporal.statements import StatementCalls

ANSWER_TIMEOUT = 60.0  # seconds to wait for a signalled decision or cancel to be taken


class PayoutsClient(ReviewerCalls, ProfileCalls, ReversalCalls, StatementCalls):
    """The platform's and reviewers' API. The platform signs what it starts and the payees'
    cancels with its key (`platform_key`); reviewers sign with theirs (`keyring` finds a
    reviewer's key by id, or pass `key=`). Unsigned calls reach the workflow and are
    refused there, with the reason, as anyone's would be."""

    def __init__(
        self,
        client: Client,
        *,
        policy: Policy,
        task_queue: str = "payouts",
        platform_key: SigningKey | None = None,
        keyring: Callable[[str], SigningKey] | None = None,
    ) -> None:
        self.client = client
        self.policy = policy
        self.task_queue = task_queue
        self.platform_key = platform_key
        self.keyring = keyring

    @classmethod
    async def connect(
        cls,
        *,
        policy: Policy,
        converter: DataConverter,
        task_queue: str = "payouts",
        platform_key: SigningKey | None = None,
        keyring: Callable[[str], SigningKey] | None = None,
        **overrides: Any,
    ) -> PayoutsClient:
        return cls(
            await connect(converter, **overrides),
            policy=policy,
            task_queue=task_queue,
            platform_key=platform_key,
            keyring=keyring,
        )

    # ------------------------------------------------------------------ platform

    def quote(
        self, amount: int, method: Method | str, currency: str, speed: Speed = "standard"
    ) -> Quote:
        """The quote to show the payee; pass it to `request_cashout` to have it honoured."""
        rules = self.policy.rules_for(method_of(method), get_currency(currency).code)
        now = datetime.now(UTC)
        return quote_with_rules(rules, amount, speed).model_copy(update={"quoted_at": now})

    def quote_options(self, amount: int, method: Method | str, currency: str) -> list[Quote]:
        """Both speeds where the policy offers instant (standard first): what the payee
        chooses between, each with its fee and net."""
        rules = self.policy.rules_for(method_of(method), get_currency(currency).code)
        speeds: list[Speed] = ["standard", "instant"] if rules.instant else ["standard"]
        return [self.quote(amount, method, currency, speed) for speed in speeds]

    async def request_cashout(
        self,
        *,
        request_id: str,
        user_id: str,
        amount: int,
        currency: str,
        method: Method | str,
        destination: object,
        holder: str | None = None,
        bic: str | None = None,
        quote: Quote | None = None,
        speed: Speed = "standard",
        requested_at: datetime | None = None,
    ) -> Ticket:
        """Start a cash-out. A repeated request id returns the existing run (same content)
        or raises `RequestConflict` (different content); it never starts a second one.
        `requested_at` (default: now) is signed with the request; the worker admits it
        within 15 minutes of the server starting it."""
        inp = build_input(
            self.policy,
            request_id=request_id,
            user_id=user_id,
            amount=amount,
            currency=currency,
            method=method,
            destination=destination,
            holder=holder,
            bic=bic,
            quote=quote,
            speed=quote.speed if quote is not None else speed,
            now=requested_at or datetime.now(UTC),
        )
        if self.platform_key is not None:
            inp = sign_request(self.platform_key, inp)
        return await start_cashout(self.client, inp, task_queue=self.task_queue)

    async def status(self, request_id: str) -> CashoutStatus:
        handle = self._handle(request_id)
        try:
            result: CashoutStatus = await handle.query(
                Query.STATUS, result_type=CashoutStatus, rpc_timeout=timedelta(seconds=15)
            )
            return result
        except RPCError as exc:
            raise _translate(exc, request_id) from None

    async def wait(
        self,
        request_id: str,
        *,
        poll: float = 0.5,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> CashoutStatus:
        """Wait until the cash-out reaches a terminal stage (PAID counts, although a bank
        transfer's workflow stays open for its return window) and return its status."""
        deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
        while True:
            status = await self.status(request_id)
            if status.stage in TERMINAL:
                return status
            if deadline is not None and asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"cash-out {request_id!r} is still {status.stage.value}")
            await asyncio.sleep(poll)

    async def result(self, request_id: str) -> CashoutResult:
        handle = self.client.get_workflow_handle(
            contract.cashout_id(validation.request_id(request_id)), result_type=CashoutResult
        )
        result: CashoutResult = await handle.result()
        return result

    async def cancel(
        self,
        request_id: str,
        *,
        requested_by: str,
        reason: str = "",
        client: str = "sdk",
        key: SigningKey | None = None,
    ) -> CashoutStatus:
        """Cancel before disbursement; waits until the cash-out has ended (hold released).
        The payee's cancel is signed by the platform's key; a reviewer's by `key` (or
        theirs from the keyring). A refused cancel raises `CancelRefused` with the reason."""
        ref = _new_ref()
        signer = key or self._reviewer_key(requested_by) or self.platform_key
        signed = Signed()
        if signer is not None:
            digest = (await self.status(request_id)).request_digest
            signed = sign_cancel(
                signer,
                workflow_id=contract.cashout_id(request_id),
                digest=digest,
                requested_by=requested_by,
                reason=reason,
            )
        req = CancelRequest(
            requested_by=requested_by,
            reason=reason,
            client=client,
            ref=ref,
            **signed.model_dump(),
        )
        await self._signal(request_id, Signal.CANCEL, req, CancelRefused, "too late to cancel")
        answer = await self._answer(request_id, ref)
        if not answer.accepted:
            raise CancelRefused(answer.refusal)
        return await self.wait(request_id, poll=0.1, timeout=ANSWER_TIMEOUT)

    # ------------------------------------------------------------------ internals

    def _handle(self, request_id: str) -> WorkflowHandle[Any, Any]:
        return self.client.get_workflow_handle(
            contract.cashout_id(validation.request_id(request_id))
        )

    async def _signal(
        self,
        request_id: str,
        name: str,
        payload: object,
        error: type[PayoutError] = InvalidState,
        what: str = "signal not delivered",
    ) -> None:
        try:
            await self._handle(request_id).signal(name, payload)
        except RPCError as exc:
            raise await self._explain(exc, request_id, error, what) from None

    async def _answer(self, request_id: str, ref: str) -> Answer:
        """Poll the `answer` query until the workflow has taken the signal `ref` (it is in
        the history already, so it will be taken even if a worker is restarting)."""
        handle = self._handle(request_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ANSWER_TIMEOUT
        pause = 0.02
        while True:
            try:
                answer: Answer | None = await handle.query(Query.ANSWER, ref, result_type=Answer)
                if answer is not None:
                    return answer
            except (RPCError, WorkflowQueryFailedError):
                pass  # no worker at this moment, or the server is restarting: ask again
            if loop.time() > deadline:
                raise InvalidState(
                    f"cash-out {request_id!r} has not taken the decision within "
                    f"{ANSWER_TIMEOUT:.0f} s; it will when a worker is back (payouts status)"
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)

    async def _explain(
        self, exc: RPCError, request_id: str, error: type[PayoutError], what: str
    ) -> PayoutError:
        """Tell "no such cash-out" from "it has already ended" (Temporal says NOT_FOUND to both)."""
        if exc.status != RPCStatusCode.NOT_FOUND:
            return _translate(exc, request_id)
        try:
            desc = await self._handle(request_id).describe()
        except RPCError:
            return NotFound(f"no cash-out with request id {request_id!r}")
        stage = desc.typed_search_attributes.get(search.STAGE) or str(desc.status)
        return error(f"{what}: the cash-out is {stage}")


def _new_ref() -> str:
    return uuid.uuid4().hex


def _translate(exc: RPCError, request_id: str) -> PayoutError:
    if exc.status == RPCStatusCode.NOT_FOUND:
        return NotFound(f"no cash-out with request id {request_id!r}")
    if exc.status == RPCStatusCode.FAILED_PRECONDITION:
        return InvalidState(f"cash-out {request_id!r}: {exc.message}")
    return PayoutError(f"cash-out {request_id!r}: {exc.message}")
