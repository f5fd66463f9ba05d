"""The cash-out's front desk: reviewers' decisions and cancels arrive here.

The signal and update handlers hand each one to the desk. The board (`ReviewBoard`) rules
on decisions; the desk applies them at a deterministic moment, answers the client's `ref`,
keeps the timeline and queues the audit trail, which a coroutine writes with a local
activity. Nothing here awaits inside a handler.
"""

from typing import Protocol

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from payouts.domain.cashout import (
        CANCELLABLE,
        Answer,
        AuditEntry,
        CancelRequest,
        CashoutInput,
        ReviewDecision,
        Stage,
    )
    from payouts.domain.progress import Progress, details
    from payouts.domain.review import ReviewBoard
    from payouts.temporal.interfaces import CashoutSteps
    from workflows.steps import local

MAX_AUDITED = 500  # decisions written to the audit table per cash-out
MAX_ANSWERS = 500  # signalled decisions and cancels the `answer` query remembers


class Run(Protocol):
    """What the desk needs from its cash-out."""

    inp: CashoutInput
    progress: Progress
    board: ReviewBoard

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

    def queue(self, kind: str, signal: ReviewDecision | CancelRequest) -> None:
        """A signal handler's whole work: the decider applies it after the rest of the task."""
        self.signals.append((kind, signal))

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
            await workflow.wait_condition(lambda: bool(self.signals) or self.closing)
            if not self.signals:
                return
            batch, self.signals = self.signals, []
            for kind, signal in batch:
                if signal.ref and signal.ref in self.answers:
                    continue  # the client re-sent it
                if isinstance(signal, CancelRequest):
                    why = self.request_cancel(signal)
                else:
                    why = self.review(signal.reviewer, kind, signal.reason, "signal", signal.client)
                if signal.ref and len(self.answers) < MAX_ANSWERS:
                    self.answers[signal.ref[:64]] = Answer(accepted=why is None, refusal=why or "")

    def review(self, reviewer: str, decision: str, why: str, via: str, client: str) -> str | None:
        """One reviewer decision, by signal or update alike: the board rules on it, the
        timeline and the audit trail record it. Returns why it was refused, or None."""
        ruling = self.run.board.decide(
            reviewer=reviewer,
            decision=decision,
            reason=why,
            via=via,
            client=client,
            at=workflow.now(),
            awaiting_review=self.run.progress.stage is Stage.AWAITING_REVIEW,
        )
        self.audit_seq += 1
        if self.audit_seq <= MAX_AUDITED:
            self.audit_pending.append(
                AuditEntry(
                    workflow_id=workflow.info().workflow_id,
                    request_id=self.run.inp.request.request_id,
                    seq=self.audit_seq,
                    record=ruling.record,
                )
            )
        if ruling.note is not None:
            self.run.note(ruling.note)
        if ruling.accepted:
            workflow.set_current_details(details(self.run.inp, self.run.progress, self.run.board))
        return ruling.refusal

    async def auditor(self) -> None:
        """Writes the audit trail as decisions come in, until the cash-out closes.

        Handlers only queue entries: an activity awaited inside an update handler would race
        the main coroutine, and on replay the update's answer could land before commands it
        followed the first time (a non-determinism error, seen in the chaos run)."""
        while True:
            await workflow.wait_condition(lambda: bool(self.audit_pending) or self.decided)
            if not self.audit_pending:
                return
            batch, self.audit_pending = self.audit_pending, []
            await local(CashoutSteps.record_review_audit, batch)

    def request_cancel(self, request: CancelRequest) -> str | None:
        why = self._cancel_refusal(request)
        if why is not None:
            self.run.note(f"refused cancel from {request.requested_by[:64]!r}: {why}")
            return why
        if self.cancel is None:
            self.cancel = request
            self.run.note(f"cancel requested by {request.requested_by}")
        return None

    def _cancel_refusal(self, request: CancelRequest) -> str | None:
        by = request.requested_by
        if by != self.run.inp.request.user_id and by not in self.run.inp.rules.reviewers:
            return f"{by!r} is neither the payee nor a registered reviewer"
        if self.run.progress.stage not in CANCELLABLE:
            return f"too late to cancel: the cash-out is {self.run.progress.stage.value}"
        return None
