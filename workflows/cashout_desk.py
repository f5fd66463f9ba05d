"""The cash-out's front desk: reviewers' decisions and cancels arrive here.

The signal and update handlers hand each one to the desk. The board (`ReviewBoard`) rules
on decisions; the desk applies them at a deterministic moment, answers the client's `ref`,
keeps the timeline and queues the audit trail, which a coroutine writes with a local
activity. Nothing here awaits inside a handler.

A cash-out whose rules carry the reviewers' keys (every one admitted since decisions are
signed) counts only signed decisions and cancels: a reviewer's signature with their
registered key, or for the payee's cancel the platform's, over this workflow, this
request's digest, the decision and reason, a time and a nonce (`payouts.domain.trust`).
Older cash-outs keep the rules they started under.
"""

from datetime import datetime, timedelta
from typing import Protocol

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

    from payouts.domain import trust
    from payouts.domain.bounds import (
        MAX_ANSWERS,
        MAX_AUDITED_REFUSALS,
        MAX_NOTED_REFUSALS,
        oversized,
        shown,
    )
    from payouts.domain.carried import Checkpoint
    from payouts.domain.cashout import (
        CANCELLABLE,
        Answer,
        AuditEntry,
        CancelRequest,
        ReviewDecision,
        ReviewRecord,
        ReviewRequest,
        Signed,
        Stage,
    )
    from payouts.domain.policy import TimeoutAction
    from payouts.domain.progress import details
    from payouts.domain.review import ReviewBoard, ReviewOutcome
    from payouts.domain.trust import cancel_message, decision_message
    from payouts.security import keys
    from payouts.temporal.interfaces import CashoutSteps
    from workflows.steps import Run as Steps
    from workflows.steps import local, resumed

MAX_AUDITED = 500  # cash-outs from before signing: decisions audited, accepted or not


class Run(Steps, Protocol):
    """What the desk needs from its cash-out."""

    board: ReviewBoard
    digest: str

    def note(self, text: str) -> None: ...


class Desk:
    def __init__(self, run: Run) -> None:
        self.run = run
        self.cancel: CancelRequest | None = None  # the accepted cancel, if any
        # signals queued for the decider, its answers, and the audit entries it leaves
        self.signals: list[tuple[str, ReviewDecision | CancelRequest]] = []
        self.answers: dict[str, Answer] = {}
        self.audit_pending: list[AuditEntry] = []
        self.audit_seq = 0
        self.closing = False  # the pipeline is done: the decider drains and stops
        self.decided = False  # ... and has: the auditor writes the rest and stops
        self.nonces: set[str] = set()  # of the signatures this cash-out has taken
        self.review_started: datetime | None = None  # for the review-wait metric
        self.temporal_cancel_seen = False
        self.refused = 0  # cancels and rail events refused (the board counts decisions)
        self.audited_refusals = 0
        self.dropped = 0  # payloads over the size cap, never let into the state

    @property
    def signed(self) -> bool:
        """Do decisions and cancels need signatures? (Every cash-out admitted since.)"""
        return self.run.signed

    async def await_review(self, why: str, approvals: int) -> None:
        """AWAITING_REVIEW until the board decides, a cancel comes, or the policy's timeout
        takes its action."""
        run = self.run
        review = run.inp.rules.review
        if run.roller.at is not Checkpoint.REVIEW:  # else resumed: already open
            run.board.open(approvals)
            timeout = timedelta(hours=review.timeout_hours)
            self.review_started = workflow.now()
            run.progress.review_deadline = workflow.now() + timeout
            plural = "s" if approvals > 1 else ""
            run.enter(Stage.AWAITING_REVIEW, f"{why}; {approvals} approval{plural} needed")
        deadline = run.progress.review_deadline
        assert deadline is not None
        try:
            if deadline <= workflow.now():  # resumed after the deadline
                raise TimeoutError
            await run.step(
                lambda: workflow.wait_condition(
                    lambda: (
                        run.board.outcome is not None or self.cancel is not None or run.roller.due()
                    ),
                    timeout=deadline - workflow.now(),
                )
            )
            if run.board.outcome is None and self.cancel is None:  # woken only to roll
                raise run.roller.roll(Checkpoint.REVIEW)
        except TimeoutError:
            hours = review.timeout_hours
            run.board.time_out(review.timeout_action)
            if review.timeout_action is not TimeoutAction.APPROVE:
                await run.end(
                    Stage.REJECTED, f"no decision within {hours} hours: rejected by policy"
                )
            run.note(f"no decision within {hours} hours: approved by policy")
        await run.stop_if_cancelled()
        if run.board.outcome is ReviewOutcome.REJECTED:
            await run.end(Stage.REJECTED, run.board.rejection)

    def temporal_cancellation(self) -> None:
        """A Temporal cancellation carries no identity: refused (noted once), or in a
        cash-out from before signatures, the operator's cancel request, as it was."""
        run = self.run
        if self.temporal_cancel_seen:
            return
        self.temporal_cancel_seen = True
        if run.signed:
            run.note("workflow cancellation refused: cancels are signed (payouts cancel)")
        elif run.progress.stage not in CANCELLABLE:
            run.note("workflow cancellation refused: the payout is already with the rail")
        elif self.cancel is None:
            self.cancel = CancelRequest(
                requested_by="operator", reason="workflow cancelled in Temporal"
            )
            run.note("workflow cancellation received: stopping after this step")

    def queue(self, kind: str, signal: ReviewDecision | CancelRequest) -> None:
        """A signal handler's whole work: the decider applies it after the rest of the task."""
        if self.fits(signal):
            self.signals.append((kind, signal))

    def fits(self, payload: BaseModel) -> bool:
        """Is a signal's payload small enough to let into the state? Oversized ones (in
        admitted cash-outs) are only counted."""
        if self.run.signed and oversized(payload):
            self.dropped += 1
            return False
        return True

    async def decider(self) -> None:
        """Applies signalled decisions and cancels, in the order they came, until the
        cash-out closes.

        The handlers only queue them. A signal that reaches a worker in the same workflow
        task as an activity result is not always delivered in the same activation as that
        result (a worker that answered a query, or took over from a killed one, can see them
        apart; a replay sees them together, and the SDK runs signal handlers first). Applied
        here, after the main coroutine has reacted to everything else in the activation, a
        decision meets the same state both ways, so the workflow replays as it ran."""
        while True:
            await resumed(lambda: bool(self.signals) or self.closing)
            if not self.signals:
                return
            self.apply_queued()

    def apply_queued(self) -> None:
        """Decide the queued decisions and cancels, in the order they came."""
        batch, self.signals = self.signals, []
        for kind, signal in batch:
            if signal.ref and signal.ref in self.answers:
                continue  # the client re-sent it
            if isinstance(signal, CancelRequest):
                why = self.request_cancel(signal, "signal")
            else:
                why = self.review(kind, signal, "signal")
            if signal.ref:
                self.answer(signal.ref, why)

    def review(self, decision: str, d: ReviewDecision | ReviewRequest, via: str) -> str | None:
        """One reviewer decision, by signal or update alike: the board rules on it (with its
        signature, once decisions are signed), the timeline and the audit trail record it.
        Returns why it was refused, or None."""
        authenticate = None
        if self.signed:

            def authenticate() -> str | None:
                message = decision_message(
                    workflow_id=workflow.info().workflow_id,
                    digest=self.run.digest,
                    decision=decision,
                    reviewer=d.reviewer,
                    reason=d.reason,
                    signed_at=d.signed_at,
                    nonce=d.nonce,
                )
                return self._check(self.run.inp.rules.reviewer_keys.get(d.reviewer), message, d)

        ruling = self.run.board.decide(
            reviewer=d.reviewer,
            decision=decision,
            reason=d.reason,
            via=via,
            client=d.client,
            at=workflow.now(),
            awaiting_review=self.run.progress.stage is Stage.AWAITING_REVIEW,
            authenticate=authenticate,
        )
        self.audit(ruling.record)
        if ruling.note is not None:
            self.run.note(ruling.note)
        if ruling.accepted:
            workflow.set_current_details(details(self.run.inp, self.run.progress, self.run.board))
        return ruling.refusal

    def _check(self, public: str | None, message: bytes, signed: Signed) -> str | None:
        return trust.check(
            verify=keys.verify,
            public=public,
            message=message,
            signature=signed.signature,
            signed_at=signed.signed_at,
            nonce=signed.nonce,
            now=workflow.now(),
            seen=self.nonces,
        )

    def answer(self, ref: str, why: str | None) -> None:
        """Remember how `ref` was taken, for the client's `answer` query: the newest
        `MAX_ANSWERS` (a flood of refs pushes out the oldest, never a fresh one)."""
        if not self.run.signed and len(self.answers) >= 500:
            return  # as cash-outs from before kept it
        self.answers[ref[:64]] = Answer(accepted=why is None, refusal=why or "")
        while len(self.answers) > MAX_ANSWERS:
            self.answers.pop(next(iter(self.answers)))

    def note_refusal(self, text: str) -> None:
        """A refusal's note, up to the cap; beyond it refusals are counted, not noted."""
        self.refused += 1
        if self.refused <= MAX_NOTED_REFUSALS or not self.run.signed:
            self.run.note(text)
        elif self.refused == MAX_NOTED_REFUSALS + 1:
            self.run.note("further refusals are counted, not noted (see the status)")

    def audit(self, record: ReviewRecord) -> None:
        """Queue one decision for the audit table: every accepted one, refused ones up to
        a cap (cash-outs from before signing: the first 500 of either)."""
        self.audit_seq += 1
        if self.run.signed:
            keep = record.accepted or self.audited_refusals < MAX_AUDITED_REFUSALS
            self.audited_refusals += 0 if record.accepted else 1
        else:
            keep = self.audit_seq <= MAX_AUDITED
        if keep:
            self.audit_pending.append(
                AuditEntry(
                    workflow_id=workflow.info().workflow_id,
                    request_id=self.run.inp.request.request_id,
                    seq=self.audit_seq,
                    record=record,
                )
            )

    async def auditor(self) -> None:
        """Writes the audit trail as decisions come in, until the cash-out closes.

        Handlers only queue entries: an activity awaited inside an update handler would race
        the main coroutine, and on replay the update's answer could land before commands it
        followed the first time (a non-determinism error, seen in the chaos run)."""
        while True:
            await resumed(lambda: bool(self.audit_pending) or self.decided)
            if not self.audit_pending:
                return
            await self.write_audit()

    async def write_audit(self) -> None:
        batch, self.audit_pending = self.audit_pending, []
        await local(CashoutSteps.record_review_audit, batch)

    def request_cancel(self, request: CancelRequest, via: str) -> str | None:
        why = self._cancel_refusal(request)
        if self.signed:  # cancels are audited since they are signed
            self.audit(
                ReviewRecord(
                    at=workflow.now(),
                    reviewer=request.requested_by[:64],
                    decision="cancel",
                    reason=request.reason[:500],
                    accepted=why is None,
                    refusal=why or "",
                    via=via,
                    client=request.client[:64],
                )
            )
        if why is not None:
            self.note_refusal(f"refused cancel from {shown(request.requested_by)}: {why}")
            return why
        if self.cancel is None:
            self.cancel = request
            self.run.note(f"cancel requested by {request.requested_by}")
        return None

    def _cancel_refusal(self, request: CancelRequest) -> str | None:
        by, inp = request.requested_by, self.run.inp
        payee = by == inp.request.user_id
        if not payee and by not in inp.rules.reviewers:
            return f"{shown(by)} is neither the payee nor a registered reviewer"
        if self.run.progress.stage not in CANCELLABLE:
            return f"too late to cancel: the cash-out is {self.run.progress.stage.value}"
        if not self.signed:
            return None
        # the payee cancels through the platform, which signs; a reviewer with their key
        trusted = self.run.trust
        public = (trusted.platform_key or None) if payee and trusted else None
        if not payee:
            public = inp.rules.reviewer_keys.get(by)
        message = cancel_message(
            workflow_id=workflow.info().workflow_id,
            digest=self.run.digest,
            requested_by=by,
            reason=request.reason,
            signed_at=request.signed_at,
            nonce=request.nonce,
        )
        return self._check(public, message, request)
