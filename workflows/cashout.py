"""The cash-out workflow: one durable run per request, id `cashout-<request_id>`.

    REQUESTED -> RESERVED -> VERIFYING -> [AWAITING_REVIEW] -> APPROVED -> DISBURSING
              -> SENT -> PAID  (-> RETURNED, bank transfers within the return window)
    any step before DISBURSING -> REJECTED | CANCELLED | FAILED  (the hold is voided)

`_pipeline` is that diagram, step by step. The decisions are the domain's (`decide`, the
`ReviewBoard`, the policy slice in the input); the effects are activities (database steps
local, the outside world remote); paying is the rails' part (`workflows.cashout_rails`);
what the status query and the UI show is `payouts.domain.progress`.

Once the payout is handed to the rail (DISBURSING), nothing can cancel it: a payee's cancel
is refused, and a Temporal cancellation only adds a note while the workflow sees the payout
through to PAID or FAILED.

Reviewers' decisions and cancels arrive as signals (or updates) and are decided by the
`_decider` coroutine after everything else in their workflow task, so a replay meets the
state the first run saw (docs/design.md).

No `from __future__ import annotations` here: the sandbox re-imports this module for every
run, and string annotations would be re-evaluated for every handler each time.
"""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import NoReturn, TypeVar

from temporalio import workflow
from temporalio.exceptions import ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from payouts.domain.bounds import MAX_PAYLOAD, oversized
    from payouts.domain.cashout import (
        TERMINAL,
        Answer,
        CancelRequest,
        CashoutInput,
        CashoutResult,
        CashoutStatus,
        ReviewDecision,
        ReviewRecord,
        ReviewRequest,
        Stage,
        mask,
    )
    from payouts.domain.messages import (
        Admission,
        AdmitAndReserve,
        AdmitInput,
        BankEvent,
        BookPayout,
        NotifyInput,
        PostInput,
        ReleaseHold,
        Reserved,
        VoidInput,
        WalletEvent,
        notify_platform,
        reserve_and_assess,
    )
    from payouts.domain.money import format_money
    from payouts.domain.policy import Method
    from payouts.domain.progress import Progress, details, requested_note, status
    from payouts.domain.review import (
        ReviewBoard,
        Verdict,
        decide,
        needs_identity,
    )
    from payouts.domain.trust import request_digest
    from payouts.temporal import contract
    from payouts.temporal.contract import Patch, Query, Signal, Step, Update
    from payouts.temporal.interfaces import CashoutSteps
    from workflows import metrics
    from workflows.cashout_bank import BankRail
    from workflows.cashout_desk import Desk
    from workflows.cashout_giftcards import GiftCardRail
    from workflows.cashout_identity import IdentityCheck
    from workflows.cashout_wallet import WalletRail
    from workflows.steps import Published, local, reason

T = TypeVar("T")


class _Ended(Exception):
    """Control flow: raised once a terminal stage has been booked; never leaves the run."""


@workflow.defn(name=contract.Workflow.CASHOUT)
class CashoutWorkflow:
    @workflow.init
    def __init__(self, inp: CashoutInput) -> None:
        self.inp = inp
        self.progress = Progress()
        self.board = ReviewBoard(rules=inp.rules, payee=inp.request.user_id)
        self.digest = request_digest(inp)  # what signed decisions and cancels are bound to
        self.trust: Admission | None = None  # the keys admission vouched for
        # Admitted cash-outs (every one started since) count only signed decisions, cancels
        # and rail events; histories from before replay as they ran.
        self.signed = workflow.patched(Patch.ADMISSION)
        self.identity = IdentityCheck(self)
        self.bank = BankRail(self)
        self.wallet = WalletRail(self)
        self.gift_cards = GiftCardRail(self)
        self._held = False
        self.desk = Desk(self)
        self._published = Published(Stage.REQUESTED)  # the client sets it at start
        self.note(requested_note(inp))

    # ------------------------------------------------------------------ the diagram

    @workflow.run
    async def run(self, inp: CashoutInput) -> CashoutResult:
        decider = asyncio.ensure_future(self.desk.decider())
        auditor = asyncio.ensure_future(self.desk.auditor())
        with contextlib.suppress(_Ended):
            await self._pipeline()
        self._publish()
        await workflow.wait_condition(workflow.all_handlers_finished)
        self.desk.closing = True
        await decider
        self.desk.decided = True
        await auditor
        return CashoutResult(
            request_id=inp.request.request_id, stage=self.progress.stage, status=self.status()
        )

    async def _pipeline(self) -> None:
        inp, q, rules = self.inp, self.inp.quote, self.inp.rules
        cur = q.currency

        # REQUESTED -> RESERVED: the worker admits the request (signed by the platform, its
        # own rules and quote), and only then holds the gross (balance, limits) and scores
        # the fraud risk: one local activity
        try:
            reserved = await self._admit_and_reserve()
        except FailureError as err:
            await self.end(Stage.FAILED, reason(err))
        self._held = True
        self.progress.risk = reserved.risk
        available = format_money(reserved.reserve.available_after, cur)
        self.enter(
            Stage.RESERVED, f"held {format_money(q.gross, cur)}; available after: {available}"
        )
        await self.stop_if_cancelled()

        # RESERVED -> VERIFYING: the risk score (above) and identity when the amount needs it
        risk = reserved.risk
        self.enter(
            Stage.VERIFYING,
            f"risk score {risk.score}: {'; '.join(risk.reasons) or 'no risk signals'}",
        )
        if needs_identity(rules, q.gross) or q.method is Method.BANK_TRANSFER:
            await self.identity.verify()
        await self.stop_if_cancelled()

        # VERIFYING -> APPROVED | AWAITING_REVIEW | REJECTED: the policy's verdict
        verdict, why, approvals = decide(rules, q.gross, risk.score)
        self.progress.decision = f"{verdict.value}: {why}"
        if verdict is Verdict.REJECT:
            await self.end(Stage.REJECTED, f"rejected by policy: {why}")
        if verdict is Verdict.REVIEW:
            await self.desk.await_review(why, approvals)

        # APPROVED: the last moment to cancel
        self.progress.expected_arrival = workflow.now() + timedelta(
            hours=rules.expected_arrival_hours
        )
        auto = verdict is Verdict.AUTO_APPROVE
        self.enter(Stage.APPROVED, self.progress.decision if auto else "approved by review")
        await self.stop_if_cancelled()

        # DISBURSING -> SENT: from here on the payout is seen through, whatever happens
        self.enter(
            Stage.DISBURSING,
            f"sending {format_money(q.net, cur)} to {mask(inp.request.destination)}",
        )
        if q.method is Method.BANK_TRANSFER:
            await self.bank.pay()
        elif q.method is Method.WALLET:
            await self.wallet.pay()
        else:
            await self.gift_cards.pay()

        # SENT -> PAID: book it and tell the platform
        outcome = f"paid {format_money(q.net, cur)} (fee {format_money(q.fee, cur)})"
        book = BookPayout(
            post=PostInput(
                key=self.key(Step.POST), hold_id=self.hold_id(), gross=q.gross, fee=q.fee
            ),
            notify=self.notification(Stage.PAID, outcome),
        )
        await self.step(lambda: local(CashoutSteps.book_payout, book), local=True)
        self._held = False
        self.progress.outcome = outcome
        self.enter(Stage.PAID, outcome)

        # PAID -> RETURNED: a bank can still return a paid transfer
        if q.method is Method.BANK_TRANSFER and rules.return_window_days > 0:
            await self.bank.watch_for_return(timedelta(days=rules.return_window_days))

    async def _admit_and_reserve(self) -> Reserved:
        reserve = reserve_and_assess(
            self.inp, key=self.key(Step.RESERVE), hold_id=self.hold_id(), at=workflow.now()
        )
        if not self.signed:  # a cash-out from before admission
            return await self.step(
                lambda: local(CashoutSteps.reserve_and_assess, reserve), local=True
            )
        admit = AdmitInput(inp=self.inp, started_at=workflow.info().start_time)
        done = await self.step(
            lambda: local(
                CashoutSteps.admit_and_reserve, AdmitAndReserve(admit=admit, reserve=reserve)
            ),
            local=True,
        )
        if not done.admission.admitted or done.reserved is None:
            await self.end(Stage.REJECTED, f"not admitted: {done.admission.refusal}")
        self.trust = done.admission
        self.note("admitted: signed by the platform, rules and quote as registered")
        return done.reserved

    # ------------------------------------------------------------------ verify and review

    # ------------------------------------------------------------------ endings

    async def end(self, stage: Stage, note: str) -> NoReturn:
        """Book a terminal stage: release the hold if one is held, tell the platform, and
        stop the pipeline."""
        if self._held:
            note += " (hold released)"
            release = ReleaseHold(
                void=VoidInput(key=self.key(Step.VOID), hold_id=self.hold_id(), reason=note[:500]),
                notify=self.notification(stage, note),
            )
            await self.step(lambda: local(CashoutSteps.release_hold, release), local=True)
            self._held = False
        else:
            notice = self.notification(stage, note)
            try:
                await self.step(lambda: local(CashoutSteps.notify, notice), local=True)
            except FailureError as err:
                self.note(f"could not record the notification: {reason(err)}")
        self.progress.outcome = note
        self.enter(stage, note)
        raise _Ended

    def notification(self, stage: Stage, outcome: str) -> NotifyInput:
        event_id = contract.notification_id(workflow.info().workflow_id, stage.value)
        return notify_platform(
            self.inp, stage, outcome, self.progress.rail_ref, event_id, workflow.now()
        )

    async def stop_if_cancelled(self) -> None:
        """End as CANCELLED if a cancel was accepted (the payee's, or a Temporal cancel)."""
        if self.desk.cancel is not None:
            c = self.desk.cancel
            await self.end(
                Stage.CANCELLED,
                f"cancelled by {c.requested_by}" + (f": {c.reason}" if c.reason else ""),
            )

    async def wait_unless_cancelled(self, duration: timedelta) -> None:
        try:
            await self.step(
                lambda: workflow.wait_condition(
                    lambda: self.desk.cancel is not None, timeout=duration
                )
            )
        except TimeoutError:
            return
        await self.stop_if_cancelled()

    # ------------------------------------------------------------------ steps and state

    async def step(self, make: Callable[[], Awaitable[T]], *, local: bool = False) -> T:
        """Await one step to its end, even through a Temporal cancellation.

        A step is never cut off halfway (a reserve might have committed, a payout might be
        at the rail). A Temporal cancellation is refused (cancels are signed: `payouts
        cancel`), or in a cash-out from before, becomes a cancel request acted on at the
        next step boundary before disbursement. A wait that gives way to it is resumed.

        Before a step that waits on the server (anything but a local activity), the stage
        is published to the search attributes: stage changes inside one workflow task
        reach visibility together anyway, so one upsert per task is enough.
        """
        if not local:
            self._publish()
        task = asyncio.ensure_future(make())
        while True:
            try:
                return await asyncio.shield(task)
            except asyncio.CancelledError:
                self.desk.temporal_cancellation()
                if task.cancelled():  # the wait itself gave way to the cancellation
                    task = asyncio.ensure_future(make())

    def _publish(self) -> None:
        """Upsert the stage (and risk score) if they changed since the last upsert."""
        self._published.publish(self.progress.stage, self.progress.risk)

    def refused(self, what: str, why: str) -> None:
        self.desk.note_refusal(f"refused {what}: {why}")
        record = ReviewRecord(
            at=workflow.now(), reviewer="rail", decision=what[:16], reason="",
            accepted=False, refusal=why, via="signal",
        )  # fmt: skip
        self.desk.audit(record)

    def key(self, step: str) -> str:
        return contract.step_key(workflow.info().workflow_id, step)

    def hold_id(self) -> str:
        return contract.hold_id(workflow.info().workflow_id)

    def note(self, text: str) -> None:
        self.progress.note(workflow.now(), text)

    def enter(self, stage: Stage, note: str) -> None:
        self.progress.enter(workflow.now(), stage, note)
        workflow.set_current_details(details(self.inp, self.progress, self.board))
        metrics.stage_entered(self.inp, stage)
        decided = stage in (Stage.APPROVED, Stage.REJECTED, Stage.CANCELLED)
        started = self.desk.review_started
        if self.board.needed and decided and started is not None:
            self.desk.review_started = None  # recorded once
            metrics.review_waited(self.inp, (workflow.now() - started).total_seconds())

    # ------------------------------------------------------------------ queries

    @workflow.query(name=Query.STATUS)
    def status(self) -> CashoutStatus:
        counts = {"refused": self.board.refusals + self.desk.refused, "dropped": self.desk.dropped}
        return status(self.inp, self.progress, self.board).model_copy(
            update={"request_digest": self.digest, **counts}
        )

    @workflow.query(name=Query.ANSWER)
    def answer(self, ref: str) -> Answer | None:
        """The answer to a signalled decision or cancel, once the workflow has taken it."""
        return self.desk.answers.get(ref)

    # ------------------------------------------------------------------ reviews and cancels

    @workflow.signal(name=Signal.APPROVE)
    def approve(self, decision: ReviewDecision) -> None:
        self.desk.queue(Signal.APPROVE, decision)

    @workflow.signal(name=Signal.REJECT)
    def reject(self, decision: ReviewDecision) -> None:
        self.desk.queue(Signal.REJECT, decision)

    @workflow.signal(name=Signal.CANCEL)
    def cancel_signal(self, request: CancelRequest) -> None:
        self.desk.queue(Signal.CANCEL, request)

    @workflow.update(name=Update.REVIEW)
    def review(self, request: ReviewRequest) -> CashoutStatus:
        """For `temporal workflow update execute` and other SDKs' clients; ours signals with a
        `ref` and reads the `answer` query instead (docs/design.md)."""
        why = self.desk.review(request.decision, request, "update")
        if why is not None:
            raise ApplicationError(why, type="review_refused", non_retryable=True)
        return self.status()

    @review.validator
    def _review_fits(self, request: ReviewRequest) -> None:
        """Junk is turned away before it is written to the history (a refusal of a real
        decision is recorded by the handler)."""
        if oversized(request):
            raise ValueError(f"payload over {MAX_PAYLOAD} bytes")

    @workflow.update(name=Update.CANCEL)
    async def cancel_update(self, request: CancelRequest) -> CashoutStatus:
        why = self.desk.request_cancel(request, "update")
        if why is not None:
            raise ApplicationError(why, type="cancel_refused", non_retryable=True)
        await workflow.wait_condition(lambda: self.progress.stage in TERMINAL)
        return self.status()

    @cancel_update.validator
    def _cancel_fits(self, request: CancelRequest) -> None:
        if oversized(request):
            raise ValueError(f"payload over {MAX_PAYLOAD} bytes")

    # ------------------------------------------------------------------ the rails' answers

    @workflow.signal(name=Signal.BANK_EVENT)
    def bank_event(self, event: BankEvent) -> None:
        if self.desk.fits(event):
            self.bank.on_event(event)

    @workflow.signal(name=Signal.WALLET_EVENT)
    def wallet_event(self, event: WalletEvent) -> None:
        if self.desk.fits(event):
            self.wallet.on_event(event)
