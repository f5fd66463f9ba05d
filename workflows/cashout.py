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
from typing import Any, NoReturn, TypeVar

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate
from temporalio.exceptions import ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from payouts.domain.cashout import (
        CANCELLABLE,
        TERMINAL,
        Answer,
        AuditEntry,
        BankAccount,
        CancelRequest,
        CashoutInput,
        CashoutResult,
        CashoutStatus,
        ReviewDecision,
        ReviewRequest,
        Stage,
        mask,
    )
    from payouts.domain.messages import (
        BankEvent,
        BookPayout,
        IdentityInput,
        IdentityResult,
        IdentityStatus,
        NotifyInput,
        PostInput,
        ReleaseHold,
        ReserveAndAssess,
        ReserveInput,
        RiskInput,
        VoidInput,
        WalletEvent,
    )
    from payouts.domain.money import format_money
    from payouts.domain.policy import Method, TimeoutAction
    from payouts.domain.progress import Progress, details, requested_note, status
    from payouts.domain.review import (
        ReviewBoard,
        ReviewOutcome,
        Verdict,
        decide,
        names_match,
        needs_identity,
    )
    from payouts.temporal import contract, search
    from payouts.temporal.contract import Query, Signal, Step, Update
    from payouts.temporal.interfaces import CashoutSteps
    from workflows import metrics
    from workflows.cashout_rails import BankRail, GiftCardRail, WalletRail
    from workflows.steps import local, reason, remote

T = TypeVar("T")

MAX_AUDITED = 500  # decisions written to the audit table per cash-out
MAX_ANSWERS = 500  # signalled decisions and cancels the `answer` query remembers


class _Ended(Exception):
    """Control flow: raised once a terminal stage has been booked; never leaves the run."""


@workflow.defn(name=contract.Workflow.CASHOUT)
class CashoutWorkflow:
    @workflow.init
    def __init__(self, inp: CashoutInput) -> None:
        self.inp = inp
        self.progress = Progress()
        self.board = ReviewBoard(rules=inp.rules, payee=inp.request.user_id)
        self.bank, self.wallet, self.gift_cards = (
            BankRail(self),
            WalletRail(self),
            GiftCardRail(self),
        )
        self._cancel: CancelRequest | None = None
        self._held = False
        self._identity_pending_noted = False
        self._review_started = workflow.now()
        self._review_waited = False
        # signals queued for the decider, its answers, and the audit entries it leaves
        self._signals: list[tuple[str, ReviewDecision | CancelRequest]] = []
        self._answers: dict[str, Answer] = {}
        self._audit_pending: list[AuditEntry] = []
        self._audit_seq = 0
        self._closing = False  # the pipeline is done: the decider drains and stops
        self._decided = False  # ... and has: the auditor writes the rest and stops
        self._published: tuple[Stage, int | None] = (Stage.REQUESTED, None)  # set at start
        self.note(requested_note(inp))

    # ------------------------------------------------------------------ the diagram

    @workflow.run
    async def run(self, inp: CashoutInput) -> CashoutResult:
        decider = asyncio.ensure_future(self._decider())
        auditor = asyncio.ensure_future(self._auditor())
        with contextlib.suppress(_Ended):
            await self._pipeline()
        self._publish()
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._closing = True
        await decider
        self._decided = True
        await auditor
        return CashoutResult(
            request_id=inp.request.request_id, stage=self.progress.stage, status=self.status()
        )

    async def _pipeline(self) -> None:
        inp, q, rules = self.inp, self.inp.quote, self.inp.rules
        cur = q.currency

        # REQUESTED -> RESERVED: hold the gross (balance, limits) and score the fraud risk
        try:
            reserved = await self.step(
                lambda: local(CashoutSteps.reserve_and_assess, self._reserve()), local=True
            )
        except FailureError as err:
            await self.end(Stage.FAILED, reason(err))
        self._held = True
        self.progress.risk = reserved.risk
        available = format_money(reserved.reserve.available_after, cur)
        self.enter(
            Stage.RESERVED, f"held {format_money(q.gross, cur)}; available after: {available}"
        )
        await self._stop_if_cancelled()

        # RESERVED -> VERIFYING: the risk score (above) and identity when the amount needs it
        risk = reserved.risk
        self.enter(
            Stage.VERIFYING,
            f"risk score {risk.score}: {'; '.join(risk.reasons) or 'no risk signals'}",
        )
        if needs_identity(rules, q.gross) or q.method is Method.BANK_TRANSFER:
            await self._verify_identity()
        await self._stop_if_cancelled()

        # VERIFYING -> APPROVED | AWAITING_REVIEW | REJECTED: the policy's verdict
        verdict, why, approvals = decide(rules, q.gross, risk.score)
        self.progress.decision = f"{verdict.value}: {why}"
        if verdict is Verdict.REJECT:
            await self.end(Stage.REJECTED, f"rejected by policy: {why}")
        if verdict is Verdict.REVIEW:
            await self._await_review(why, approvals)

        # APPROVED: the last moment to cancel
        self.progress.expected_arrival = workflow.now() + timedelta(
            hours=rules.expected_arrival_hours
        )
        auto = verdict is Verdict.AUTO_APPROVE
        self.enter(Stage.APPROVED, self.progress.decision if auto else "approved by review")
        await self._stop_if_cancelled()

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

    def _reserve(self) -> ReserveAndAssess:
        q, req, rules = self.inp.quote, self.inp.request, self.inp.rules
        return ReserveAndAssess(
            reserve=ReserveInput(
                key=self.key(Step.RESERVE),
                hold_id=self.hold_id(),
                user_id=req.user_id,
                currency=q.currency,
                amount=q.gross,
                daily_amount_limit=rules.currency_rules.daily_amount_limit,
                daily_count_limit=rules.daily_count,
            ),
            risk=RiskInput(
                request_id=req.request_id,
                user_id=req.user_id,
                currency=q.currency,
                amount=q.gross,
                destination=req.destination,
                as_of=workflow.now(),
            ),
        )

    # ------------------------------------------------------------------ verify and review

    async def _verify_identity(self) -> None:
        rules = self.inp.rules.identity
        give_up = workflow.now() + timedelta(hours=rules.pending_timeout_hours)
        while True:
            try:
                result = await self.step(
                    lambda: remote(CashoutSteps.verify_identity, self._check())
                )
            except FailureError as err:
                await self.end(Stage.FAILED, f"identity check failed: {reason(err)}")
            self.progress.identity = result
            if result.status is IdentityStatus.VERIFIED:
                self.note(f"identity verified (tier {result.tier})")
                await self._check_holder(result)
                return
            if result.status is IdentityStatus.REJECTED:
                await self.end(Stage.REJECTED, f"identity rejected: {result.reason}")
            await self._stop_if_cancelled()
            if workflow.now() >= give_up:
                hours = rules.pending_timeout_hours
                await self.end(Stage.FAILED, f"identity still pending after {hours} hours")
            if not self._identity_pending_noted:
                self._identity_pending_noted = True
                every = f"checking every {rules.poll_minutes} minutes"
                self.note(f"identity pending: {result.reason}; {every}")
            await self._wait_unless_cancelled(timedelta(minutes=rules.poll_minutes))

    def _check(self) -> IdentityInput:
        return IdentityInput(user_id=self.inp.request.user_id, checked_at=workflow.now())

    async def _check_holder(self, identity: IdentityResult) -> None:
        """A bank account must be in the verified person's name (case, accents and word
        order aside). Names stay out of the timeline: it says only whether they match."""
        dest = self.inp.request.destination
        if not isinstance(dest, BankAccount):
            return
        if identity.legal_name is None:
            self.note("the identity provider has no legal name on record: holder not compared")
        elif names_match(dest.holder_name, identity.legal_name):
            self.note("account holder's name matches the verified identity")
        else:
            await self.end(
                Stage.REJECTED,
                "the bank account holder's name does not match the verified identity",
            )

    async def _await_review(self, why: str, approvals: int) -> None:
        review = self.inp.rules.review
        self.board.open(approvals)
        timeout = timedelta(hours=review.timeout_hours)
        self._review_started = workflow.now()
        self.progress.review_deadline = workflow.now() + timeout
        plural = "s" if approvals > 1 else ""
        self.enter(Stage.AWAITING_REVIEW, f"{why}; {approvals} approval{plural} needed")
        try:
            await self.step(
                lambda: workflow.wait_condition(
                    lambda: self.board.outcome is not None or self._cancel is not None,
                    timeout=timeout,
                )
            )
        except TimeoutError:
            hours = review.timeout_hours
            self.board.time_out(review.timeout_action)
            if review.timeout_action is not TimeoutAction.APPROVE:
                await self.end(
                    Stage.REJECTED, f"no decision within {hours} hours: rejected by policy"
                )
            self.note(f"no decision within {hours} hours: approved by policy")
        await self._stop_if_cancelled()
        if self.board.outcome is ReviewOutcome.REJECTED:
            await self.end(Stage.REJECTED, self.board.rejection)

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
        q, req = self.inp.quote, self.inp.request
        return NotifyInput(
            event_id=contract.notification_id(workflow.info().workflow_id, stage.value),
            request_id=req.request_id,
            user_id=req.user_id,
            stage=stage,
            at=workflow.now(),
            payload={
                "request_id": req.request_id,
                "user_id": req.user_id,
                "stage": stage.value,
                "currency": q.currency,
                "gross": q.gross,
                "fee": q.fee,
                "net": q.net,
                "outcome": outcome,
                "rail_reference": self.progress.rail_ref,
            },
        )

    async def _stop_if_cancelled(self) -> None:
        """End as CANCELLED if a cancel was accepted (the payee's, or a Temporal cancel)."""
        if self._cancel is not None:
            c = self._cancel
            await self.end(
                Stage.CANCELLED,
                f"cancelled by {c.requested_by}" + (f": {c.reason}" if c.reason else ""),
            )

    async def _wait_unless_cancelled(self, duration: timedelta) -> None:
        try:
            await self.step(
                lambda: workflow.wait_condition(lambda: self._cancel is not None, timeout=duration)
            )
        except TimeoutError:
            return
        await self._stop_if_cancelled()

    # ------------------------------------------------------------------ steps and state

    async def step(self, make: Callable[[], Awaitable[T]], *, local: bool = False) -> T:
        """Await one step to its end, even through a Temporal cancellation.

        A step is never cut off halfway (a reserve might have committed, a payout might be
        at the rail). A cancellation that arrives before disbursement becomes a cancel
        request, acted on at the next step boundary; after that it is refused.

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
                if self.progress.stage in CANCELLABLE:
                    if self._cancel is None:
                        self._cancel = CancelRequest(
                            requested_by="operator", reason="workflow cancelled in Temporal"
                        )
                        self.note("workflow cancellation received: stopping after this step")
                else:
                    self.note("workflow cancellation refused: the payout is already with the rail")

    def _publish(self) -> None:
        """Upsert the stage (and risk score) if they changed since the last upsert."""
        stage, risk = self.progress.stage, self.progress.risk
        score = risk.score if risk is not None else None
        published_stage, published_score = self._published
        updates: list[SearchAttributeUpdate[Any]] = []
        if stage != published_stage:
            updates.append(search.STAGE.value_set(stage.value))
        if score is not None and score != published_score:
            updates.append(search.RISK.value_set(score))
        if updates:
            workflow.upsert_search_attributes(updates)
            self._published = (stage, score if score is not None else published_score)

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
        if self.board.needed and decided and not self._review_waited:
            self._review_waited = True
            metrics.review_waited(self.inp, (workflow.now() - self._review_started).total_seconds())

    # ------------------------------------------------------------------ queries

    @workflow.query(name=Query.STATUS)
    def status(self) -> CashoutStatus:
        return status(self.inp, self.progress, self.board)

    @workflow.query(name=Query.ANSWER)
    def answer(self, ref: str) -> Answer | None:
        """The answer to a signalled decision or cancel, once the workflow has taken it."""
        return self._answers.get(ref)

    # ------------------------------------------------------------------ reviews and cancels

    @workflow.signal(name=Signal.APPROVE)
    def approve(self, decision: ReviewDecision) -> None:
        self._signals.append((Signal.APPROVE, decision))

    @workflow.signal(name=Signal.REJECT)
    def reject(self, decision: ReviewDecision) -> None:
        self._signals.append((Signal.REJECT, decision))

    @workflow.signal(name=Signal.CANCEL)
    def cancel_signal(self, request: CancelRequest) -> None:
        self._signals.append((Signal.CANCEL, request))

    @workflow.update(name=Update.REVIEW)
    def review(self, request: ReviewRequest) -> CashoutStatus:
        """For `temporal workflow update execute` and other SDKs' clients; ours signals with a
        `ref` and reads the `answer` query instead (docs/design.md)."""
        why = self._review(
            request.reviewer, request.decision, request.reason, "update", request.client
        )
        if why is not None:
            raise ApplicationError(why, type="review_refused", non_retryable=True)
        return self.status()

    @workflow.update(name=Update.CANCEL)
    async def cancel_update(self, request: CancelRequest) -> CashoutStatus:
        why = self._request_cancel(request)
        if why is not None:
            raise ApplicationError(why, type="cancel_refused", non_retryable=True)
        await workflow.wait_condition(lambda: self.progress.stage in TERMINAL)
        return self.status()

    async def _decider(self) -> None:
        """Applies signalled decisions and cancels, in the order they came, until the
        cash-out closes.

        The handlers only queue them. A signal that reaches a worker in the same workflow
        task as an activity result is not always delivered in the same activation as that
        result (a worker that answered a query, or took over from a killed one, can see them
        apart; a replay sees them together, and the SDK runs signal handlers first). Applied
        here, after the main coroutine has reacted to everything else in the activation, a
        decision meets the same state both ways, so the workflow replays as it ran."""
        while True:
            await workflow.wait_condition(lambda: bool(self._signals) or self._closing)
            if not self._signals:
                return
            batch, self._signals = self._signals, []
            for kind, signal in batch:
                if signal.ref and signal.ref in self._answers:
                    continue  # the client re-sent it
                if isinstance(signal, CancelRequest):
                    why = self._request_cancel(signal)
                else:
                    why = self._review(
                        signal.reviewer, kind, signal.reason, "signal", signal.client
                    )
                if signal.ref and len(self._answers) < MAX_ANSWERS:
                    self._answers[signal.ref[:64]] = Answer(accepted=why is None, refusal=why or "")

    def _review(self, reviewer: str, decision: str, why: str, via: str, client: str) -> str | None:
        """One reviewer decision, by signal or update alike: the board rules on it, the
        timeline and the audit trail record it. Returns why it was refused, or None."""
        ruling = self.board.decide(
            reviewer=reviewer,
            decision=decision,
            reason=why,
            via=via,
            client=client,
            at=workflow.now(),
            awaiting_review=self.progress.stage is Stage.AWAITING_REVIEW,
        )
        self._audit_seq += 1
        if self._audit_seq <= MAX_AUDITED:
            self._audit_pending.append(
                AuditEntry(
                    workflow_id=workflow.info().workflow_id,
                    request_id=self.inp.request.request_id,
                    seq=self._audit_seq,
                    record=ruling.record,
                )
            )
        if ruling.note is not None:
            self.note(ruling.note)
        if ruling.accepted:
            workflow.set_current_details(details(self.inp, self.progress, self.board))
        return ruling.refusal

    async def _auditor(self) -> None:
        """Writes the audit trail as decisions come in, until the cash-out closes.

        Handlers only queue entries: an activity awaited inside an update handler would race
        the main coroutine, and on replay the update's answer could land before commands it
        followed the first time (a non-determinism error, seen in the chaos run)."""
        while True:
            await workflow.wait_condition(lambda: bool(self._audit_pending) or self._decided)
            if not self._audit_pending:
                return
            batch, self._audit_pending = self._audit_pending, []
            await local(CashoutSteps.record_review_audit, batch)

    def _request_cancel(self, request: CancelRequest) -> str | None:
        why = self._cancel_refusal(request)
        if why is not None:
            self.note(f"refused cancel from {request.requested_by[:64]!r}: {why}")
            return why
        if self._cancel is None:
            self._cancel = request
            self.note(f"cancel requested by {request.requested_by}")
        return None

    def _cancel_refusal(self, request: CancelRequest) -> str | None:
        by = request.requested_by
        if by != self.inp.request.user_id and by not in self.inp.rules.reviewers:
            return f"{by!r} is neither the payee nor a registered reviewer"
        if self.progress.stage not in CANCELLABLE:
            return f"too late to cancel: the cash-out is {self.progress.stage.value}"
        return None

    # ------------------------------------------------------------------ the rails' answers

    @workflow.signal(name=Signal.BANK_EVENT)
    def bank_event(self, event: BankEvent) -> None:
        self.bank.on_event(event)

    @workflow.signal(name=Signal.WALLET_EVENT)
    def wallet_event(self, event: WalletEvent) -> None:
        self.wallet.on_event(event)
