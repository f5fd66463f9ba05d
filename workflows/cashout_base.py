"""What every part of a cash-out uses: its endings, its steps, its notes and stages.

`CashoutWorkflow` (workflows/cashout.py) is this plus the diagram and the handlers; the
parts (identity, desk, rails, roller) reach the state and these methods through the `Run`
protocols in their modules.
"""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import NoReturn, TypeVar

from temporalio import workflow
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from payouts.domain.carried import Checkpoint
    from payouts.domain.cashout import (
        BankAccount,
        CashoutInput,
        GiftCardDelivery,
        ReviewRecord,
        SavedRef,
        Stage,
        WalletAccount,
    )
    from payouts.domain.fees import arrival_minutes, quote_with_rules
    from payouts.domain.messages import (
        Admission,
        NotifyInput,
        ReleaseHold,
        VoidInput,
        notify_platform,
    )
    from payouts.domain.money import format_money
    from payouts.domain.profiles import ProfileFacts
    from payouts.domain.progress import Progress, details
    from payouts.domain.review import ReviewBoard
    from payouts.temporal import contract
    from payouts.temporal.contract import Step
    from payouts.temporal.interfaces import CashoutSteps
    from workflows import metrics
    from workflows.cashout_desk import Desk
    from workflows.cashout_roll import Roller
    from workflows.steps import Published, local, reason

T = TypeVar("T")


class Ended(Exception):
    """Control flow: raised once a terminal stage has been booked; never leaves the run."""


class CashoutRun:
    inp: CashoutInput
    progress: Progress
    board: ReviewBoard
    desk: Desk
    roller: Roller
    published: Published
    held: bool
    trust: Admission | None
    signed: bool
    resolved: BankAccount | WalletAccount | GiftCardDelivery | None  # a saved destination's
    profile_facts: ProfileFacts | None

    @property
    def destination(self) -> BankAccount | WalletAccount | GiftCardDelivery:
        """Where the money goes: as requested, or the saved destination it named."""
        found = self.resolved or self.inp.request.destination
        assert not isinstance(found, SavedRef), "a saved destination is resolved at admission"
        return found

    # ------------------------------------------------------------------ speed

    async def fall_back(self, why: str) -> None:
        """The rail cannot pay instantly: pay at standard speed and the standard fee, and
        say so in the timeline and to the platform. From here on the cash-out runs on the
        standard quote (what is booked, paid and shown)."""
        was = self.inp.quote
        standard = quote_with_rules(self.inp.rules, was.requested)
        self.inp = self.inp.model_copy(update={"quote": standard})
        minutes = arrival_minutes(self.inp.rules, "standard")
        self.progress.expected_arrival = workflow.now() + timedelta(minutes=minutes)
        cur = was.currency
        note = (
            f"instant refused: {why}; paid at standard speed, fee "
            f"{format_money(standard.fee, cur)} instead of {format_money(was.fee, cur)}"
        )
        self.note(note)
        notice = self.notification(Stage.DISBURSING, note)
        await self.step(lambda: local(CashoutSteps.notify, notice), local=True)

    # ------------------------------------------------------------------ endings

    async def end(self, stage: Stage, note: str) -> NoReturn:
        """Book a terminal stage: release the hold if one is held, tell the platform, and
        stop the pipeline."""
        if self.held:
            note += " (hold released)"
            release = ReleaseHold(
                void=VoidInput(key=self.key(Step.VOID), hold_id=self.hold_id(), reason=note[:500]),
                notify=self.notification(stage, note),
            )
            await self.step(lambda: local(CashoutSteps.release_hold, release), local=True)
            self.held = False
        else:
            notice = self.notification(stage, note)
            try:
                await self.step(lambda: local(CashoutSteps.notify, notice), local=True)
            except FailureError as err:
                self.note(f"could not record the notification: {reason(err)}")
        self.progress.outcome = note
        self.enter(stage, note)
        raise Ended

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

    async def wait_unless_cancelled(
        self, duration: timedelta, checkpoint: Checkpoint | None = None
    ) -> None:
        """Wait `duration`, unless a cancel comes (or, at a checkpoint, the run rolls)."""
        rolls = checkpoint is not None
        try:
            await self.step(
                lambda: workflow.wait_condition(
                    lambda: self.desk.cancel is not None or (rolls and self.roller.due()),
                    timeout=duration,
                )
            )
        except TimeoutError:
            return
        await self.stop_if_cancelled()
        if checkpoint is not None:  # woken only to roll
            raise self.roller.roll(checkpoint)

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
        self.published.publish(self.progress.stage, self.progress.risk)

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
