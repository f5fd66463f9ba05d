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
from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.exceptions import ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from payouts.domain.bounds import MAX_PAYLOAD, oversized
    from payouts.domain.carried import Checkpoint
    from payouts.domain.cashout import (
        TERMINAL,
        Answer,
        BankAccount,
        CancelRequest,
        CashoutInput,
        CashoutResult,
        CashoutStatus,
        GiftCardDelivery,
        ReviewDecision,
        ReviewRequest,
        Stage,
        WalletAccount,
        mask,
    )
    from payouts.domain.fees import arrival_minutes
    from payouts.domain.messages import (
        Admission,
        AdmitAndReserve,
        AdmitInput,
        BankEvent,
        BookPayout,
        PostInput,
        Reserved,
        WalletEvent,
        reserve_and_assess,
    )
    from payouts.domain.money import format_money
    from payouts.domain.policy import Method
    from payouts.domain.profiles import ProfileFacts, review_reasons
    from payouts.domain.progress import Progress, details, requested_note, status
    from payouts.domain.review import (
        ReviewBoard,
        Verdict,
        decide,
        escalate,
        needs_identity,
    )
    from payouts.domain.trust import request_digest
    from payouts.temporal import contract
    from payouts.temporal.contract import Patch, Query, Signal, Step, Update
    from payouts.temporal.interfaces import CashoutSteps
    from workflows.cashout_bank import BankRail
    from workflows.cashout_base import CashoutRun, Ended
    from workflows.cashout_desk import Desk
    from workflows.cashout_giftcards import GiftCardRail
    from workflows.cashout_identity import IdentityCheck
    from workflows.cashout_payee import PayeeVerification
    from workflows.cashout_roll import Rolled, Roller
    from workflows.cashout_wallet import WalletRail
    from workflows.steps import Published, local, reason

T = TypeVar("T")


@workflow.defn(name=contract.Workflow.CASHOUT)
class CashoutWorkflow(CashoutRun):
    @workflow.init
    def __init__(self, inp: CashoutInput) -> None:
        self.inp = inp
        self.progress = Progress()
        self.board = ReviewBoard(rules=inp.rules, payee=inp.request.user_id)
        self.digest = request_digest(inp)  # what signed decisions and cancels are bound to
        self.trust: Admission | None = None  # the keys admission vouched for
        self.resolved: BankAccount | WalletAccount | GiftCardDelivery | None = None
        self.profile_facts: ProfileFacts | None = None
        # Admitted cash-outs (every one started since) count only signed decisions, cancels
        # and rail events; histories from before replay as they ran.
        self.signed = workflow.patched(Patch.ADMISSION)
        self.identity = IdentityCheck(self)
        self.payee = PayeeVerification(self)
        self.bank = BankRail(self)
        self.wallet = WalletRail(self)
        self.gift_cards = GiftCardRail(self)
        self.held = False
        self.desk = Desk(self)
        self.published = Published(Stage.REQUESTED)  # the client sets it at start
        self.roller = Roller(self, carried := inp.carried)
        if carried is None or self.roller.forged:
            self.note(requested_note(inp))
        else:  # a new run of a long wait (workflows.cashout_roll)
            self.roller.restore(carried)
            workflow.set_current_details(details(self.inp, self.progress, self.board))

    # ------------------------------------------------------------------ the diagram

    @workflow.run
    async def run(self, inp: CashoutInput) -> CashoutResult:
        decider = asyncio.ensure_future(self.desk.decider())
        auditor = asyncio.ensure_future(self.desk.auditor())
        rolled: Rolled | None = None
        try:
            await self._pipeline()
        except Ended:
            pass
        except Rolled as roll:
            rolled = roll
        self._publish()
        await workflow.wait_condition(workflow.all_handlers_finished)
        self.desk.closing = True
        await decider
        self.desk.decided = True
        await auditor
        if rolled is not None:
            await self.roller.settle()
            workflow.continue_as_new(  # (self.inp: the standard quote, if instant fell back)
                self.inp.model_copy(update={"carried": self.roller.carry(rolled.at)}),
                search_attributes=workflow.info().typed_search_attributes,
            )
        return CashoutResult(
            request_id=inp.request.request_id, stage=self.progress.stage, status=self.status()
        )

    async def _pipeline(self) -> None:
        """The diagram. A run that resumes a long wait (`self.roller.at`) starts there."""
        q, rules, upto = self.inp.quote, self.inp.rules, self.roller.upto
        cur = q.currency
        if self.roller.forged:
            await self.end(Stage.REJECTED, "not admitted: carried state from outside the run")

        # REQUESTED -> RESERVED: the worker admits the request (signed by the platform, its
        # own rules and quote), and only then holds the gross (balance, limits) and scores
        # the fraud risk: one local activity
        if self.roller.at is None:
            try:
                reserved = await self._admit_and_reserve()
            except FailureError as err:
                await self.end(Stage.FAILED, reason(err))
            self.held = True
            self.progress.risk = risk = reserved.risk
            available = format_money(reserved.reserve.available_after, cur)
            self.enter(
                Stage.RESERVED, f"held {format_money(q.gross, cur)}; available after: {available}"
            )
            await self.stop_if_cancelled()
            # RESERVED -> VERIFYING: the risk score (above) and identity when needed
            self.enter(
                Stage.VERIFYING,
                f"risk score {risk.score}: {'; '.join(risk.reasons) or 'no risk signals'}",
            )
        if upto(Checkpoint.IDENTITY):
            resuming = self.roller.at is Checkpoint.IDENTITY
            if resuming or needs_identity(rules, q.gross) or q.method is Method.BANK_TRANSFER:
                await self.identity.verify()
            await self.stop_if_cancelled()
            if q.method is Method.BANK_TRANSFER and self.signed and workflow.patched(Patch.VOP):
                await self.payee.verify(self.profile_facts)

        if upto(Checkpoint.REVIEW):
            # VERIFYING -> APPROVED | AWAITING_REVIEW | REJECTED: the policy's verdict
            if self.roller.at is Checkpoint.REVIEW:  # resumed: the review is open
                verdict = Verdict.REVIEW
                await self.desk.await_review("", 0)
            else:
                verdict, why, approvals = self._verdict()
                self.progress.decision = f"{verdict.value}: {why}"
                if verdict is Verdict.REJECT:
                    await self.end(Stage.REJECTED, f"rejected by policy: {why}")
                if verdict is Verdict.REVIEW:
                    await self.desk.await_review(why, approvals)

            # APPROVED: the last moment to cancel
            minutes = arrival_minutes(rules, q.speed)
            self.progress.expected_arrival = workflow.now() + timedelta(minutes=minutes)
            auto = verdict is Verdict.AUTO_APPROVE
            decided = (self.progress.decision or "") if auto else "approved by review"
            self.enter(Stage.APPROVED, decided)
            await self.stop_if_cancelled()

            # DISBURSING -> SENT: from here on the payout is seen through, whatever happens
            self.enter(
                Stage.DISBURSING,
                f"sending {format_money(q.net, cur)} to {mask(self.destination)}",
            )
        if upto(Checkpoint.RAIL):
            if q.method is Method.BANK_TRANSFER:
                await self.bank.pay()
            elif q.method is Method.WALLET:
                await self.wallet.pay()
            else:
                await self.gift_cards.pay()
            await self._book_paid()

        # PAID -> RETURNED: a bank can still return a paid transfer
        if q.method is Method.BANK_TRANSFER and rules.return_window_days > 0:
            await self.bank.watch_for_return(timedelta(days=rules.return_window_days))

    def _verdict(self) -> tuple[Verdict, str, int]:
        """The policy's verdict on amount and risk, sent to review by what it does not see:
        a bank holder not compared with a verified identity, a payee the bank verified only
        as a close match (or could not), a saved destination still in its cool-off or
        shared with another payee, a payee who recently owed beyond the policy's limit."""
        assert self.progress.risk is not None
        reasons = ["the account holder could not be compared with a verified identity"]
        reasons = reasons if self.identity.holder_uncompared else []
        reasons += [self.payee.review_reason] if self.payee.review_reason else []
        if self.profile_facts is not None:
            reasons += review_reasons(self.profile_facts, workflow.now())
        reasons += self.progress.risk.review
        verdict = decide(self.inp.rules, self.inp.quote.gross, self.progress.risk.score)
        return escalate(verdict, reasons)

    async def _book_paid(self) -> None:
        """SENT -> PAID: book it and tell the platform."""
        q = self.inp.quote
        outcome = f"paid {format_money(q.net, q.currency)} (fee {format_money(q.fee, q.currency)})"
        book = BookPayout(
            post=PostInput(
                key=self.key(Step.POST), hold_id=self.hold_id(), gross=q.gross, fee=q.fee
            ),
            notify=self.notification(Stage.PAID, outcome),
        )
        await self.step(lambda: local(CashoutSteps.book_payout, book), local=True)
        self.held = False
        self.progress.outcome = outcome
        self.enter(Stage.PAID, outcome)

    async def _admit_and_reserve(self) -> Reserved:
        reserve = reserve_and_assess(
            self.inp, key=self.key(Step.RESERVE), hold_id=self.hold_id(), at=workflow.now()
        )
        if not self.signed:  # a cash-out from before admission
            return await self.step(
                lambda: local(CashoutSteps.reserve_and_assess, reserve), local=True
            )
        admit = AdmitInput(inp=self.inp, started_at=workflow.info().workflow_start_time)
        done = await self.step(
            lambda: local(
                CashoutSteps.admit_and_reserve, AdmitAndReserve(admit=admit, reserve=reserve)
            ),
            local=True,
        )
        if not done.admission.admitted or done.reserved is None:
            await self.end(Stage.REJECTED, f"not admitted: {done.admission.refusal}")
        self.trust = done.admission
        self.resolved, self.profile_facts = done.admission.destination, done.admission.profile
        self.note("admitted: signed by the platform, rules and quote as registered")
        return done.reserved

    # ------------------------------------------------------------------ queries

    @workflow.query(name=Query.STATUS)
    def status(self) -> CashoutStatus:
        counts = {
            "refused": self.board.refusals + self.desk.refused,
            "dropped": self.desk.dropped,
            "runs": self.roller.runs,
        }
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
        await workflow.wait_condition(
            lambda: self.progress.stage in TERMINAL or self.roller.rolling
        )  # a new run carries the accepted cancel
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
