"""Paying by bank transfer: the DISBURSING -> SENT -> PAID (-> RETURNED) part of a cash-out.

The transfer is queued in the batch book for the next cutoff; the bank workflows then tell
the cash-out what the bank said (signal `bank_event`): sent in a batch, accepted, booked;
or rejected. After PAID a return is still possible within the return window.

An admitted cash-out (`run.signed`) counts an event only if our bank workflows signed it
for this workflow, it names this transfer's EndToEndId, and it fits the stage the cash-out
was in when it arrived (a "rejected" while the cash-out waits for review is refused and
noted: no genuine one can exist before the transfer is queued); each kind counts once.
Cash-outs started before that keep the rules they started under.
"""

from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from payouts.domain.bounds import shown
    from payouts.domain.carried import Checkpoint, RailState
    from payouts.domain.cashout import BankAccount, Stage
    from payouts.domain.fees import arrival_minutes
    from payouts.domain.messages import BankEnqueue, BankEvent, ReverseInput, ReversePayout
    from payouts.temporal.contract import Step
    from payouts.temporal.interfaces import BankSteps, CashoutSteps
    from workflows.steps import REMOTE_RETRY, Run, local, rail_event_refusal

# the stages in which each thing the bank says can be true
FITS = {
    "sent": (Stage.DISBURSING,),
    "accepted": (Stage.DISBURSING, Stage.SENT),
    "rejected": (Stage.DISBURSING, Stage.SENT),
    "booked": (Stage.DISBURSING, Stage.SENT),
    "returned": (Stage.DISBURSING, Stage.SENT, Stage.PAID),
}


class BankRail:
    def __init__(self, run: Run) -> None:
        self.run = run
        self.inbox: list[BankEvent] = []  # as signalled
        self.arrived: list[Stage] = []  # the stage each came in (admitted cash-outs)
        self.seen: set[str] = set()  # kinds taken
        self.returned: BankEvent | None = None  # a return that counts
        self.returns_deadline: datetime | None = None

    def restore(self, rail: RailState, returns_deadline: datetime | None) -> None:
        """Resume in a new run (`workflows.cashout_roll`)."""
        self.inbox, self.arrived = list(rail.bank_inbox), list(rail.arrived)
        self.seen, self.returned = set(rail.seen), rail.returned
        self.returns_deadline = returns_deadline

    def on_event(self, event: BankEvent) -> None:
        """The signal handler: queue it (older cash-outs: each kind once, at once)."""
        if not self.run.signed:
            if event.kind in self.seen:
                return
            self.seen.add(event.kind)
        else:
            self.arrived.append(self.run.progress.stage)
        self.inbox.append(event)

    def _refused(self, event: BankEvent, stage: Stage) -> bool:
        """Does the event not count? (Then it is noted and audited.)"""
        why = rail_event_refusal(self.run, "bank", event)
        if why is None and event.end_to_end_id != self.run.progress.rail_ref:
            why = "it names another transfer"
        if why is None and stage not in FITS.get(event.kind, ()):
            why = f"a bank's {shown(event.kind, 16)} does not fit a cash-out that was {stage.value}"
        if why is not None:
            self.run.refused(f"bank event {shown(event.kind, 16)}", why)
        return why is not None

    def sift(self) -> None:
        """Before a new run: refuse what does not count, keep what does (a handful)."""
        pairs = zip(self.inbox, self.arrived, strict=True)
        kept = [(e, s) for e, s in pairs if not self._refused(e, s)]
        self.inbox, self.arrived = [e for e, _ in kept], [s for _, s in kept]

    def take(self) -> BankEvent | None:
        """The next event in the inbox, if it counts; a refusal is noted and audited."""
        event = self.inbox.pop(0)
        if not self.run.signed:
            return event
        stage = self.arrived.pop(0)
        if self._refused(event, stage):
            return None
        if event.kind in self.seen:
            return None  # told twice
        self.seen.add(event.kind)
        if event.kind == "returned":
            self.returned = event
        return event

    async def pay(self) -> None:
        """Queue for the next batch, then follow the bank's answers until it books."""
        run, q, req = self.run, self.run.inp.quote, self.run.inp.request
        dest = run.destination
        assert isinstance(dest, BankAccount)
        enqueue = BankEnqueue(
            workflow_id=workflow.info().workflow_id,
            request_id=req.request_id,
            user_id=req.user_id,
            currency=q.currency,
            amount=q.net,
            destination=dest,
            at=workflow.now(),
        )
        if run.roller.at is not Checkpoint.RAIL and q.speed == "instant":
            run.progress.rail_ref = await run.step(
                lambda: workflow.execute_activity_method(
                    BankSteps.send_instant_bank_transfer,
                    enqueue,
                    start_to_close_timeout=timedelta(minutes=2),
                    retry_policy=REMOTE_RETRY,
                )
            )
            if run.progress.rail_ref:
                run.note(f"sent at once in a file of its own, reference {run.progress.rail_ref}")
            else:
                await run.fall_back("the payee's bank does not take instant transfers")
                q = run.inp.quote
                enqueue = enqueue.model_copy(update={"amount": q.net})
        if run.roller.at is not Checkpoint.RAIL and not run.progress.rail_ref:
            run.progress.rail_ref = await run.step(
                lambda: local(CashoutSteps.enqueue_bank_transfer, enqueue), local=True
            )
            cutoff = run.inp.rules.batch_cutoff_minutes
            every = "minute" if cutoff == 1 else f"{cutoff} minutes"
            run.note(
                f"queued for the next {q.currency} bank batch (cutoff every {every}),"
                f" reference {run.progress.rail_ref}"
            )
        while True:
            await run.step(
                lambda: workflow.wait_condition(lambda: bool(self.inbox) or run.roller.due())
            )
            if not self.inbox:  # woken only to roll
                raise run.roller.roll(Checkpoint.RAIL)
            event = self.take()
            if event is None:
                continue
            if event.kind == "sent" and run.progress.stage is Stage.DISBURSING:
                run.progress.batch_id = event.batch_id
                minutes = arrival_minutes(run.inp.rules, run.inp.quote.speed)
                run.progress.expected_arrival = workflow.now() + timedelta(minutes=minutes)
                run.enter(Stage.SENT, f"in bank batch {event.batch_id}")
            elif event.kind == "accepted":
                run.note("accepted by the bank")
            elif event.kind == "rejected":
                await run.end(
                    Stage.FAILED,
                    f"the bank rejected the transfer: {event.code} {event.reason}".strip(),
                )
            elif event.kind in ("booked", "returned"):
                if event.kind == "returned" and not run.signed:
                    self.inbox.insert(0, event)  # booked and returned at once: both count
                run.note("booked by the bank")
                return

    async def watch_for_return(self, window: timedelta) -> None:
        """A bank can still return a paid transfer: reverse it in the ledger if it does."""
        run = self.run
        if run.signed:
            event = await self._wait_for_return(window)
        else:
            try:
                await run.step(
                    lambda: workflow.wait_condition(
                        lambda: any(e.kind == "returned" for e in self.inbox), timeout=window
                    )
                )
                event = next(e for e in self.inbox if e.kind == "returned")
            except TimeoutError:
                event = None
        if event is None:
            run.note(f"no return within {window.days} days: final")
            return
        reason = f"returned by the bank: {event.code} {event.reason}".strip()
        reverse = ReversePayout(
            reverse=ReverseInput(key=run.key(Step.REVERSE), hold_id=run.hold_id(), reason=reason),
            notify=run.notification(Stage.RETURNED, reason),
        )
        await run.step(lambda: local(CashoutSteps.reverse_payout, reverse), local=True)
        run.progress.outcome = f"{reason}; the money is back in the available balance"
        run.enter(Stage.RETURNED, run.progress.outcome)

    async def _wait_for_return(self, window: timedelta) -> BankEvent | None:
        """The first return that counts within the window (refused events are noted)."""
        run = self.run
        if run.roller.at is not Checkpoint.RETURNS:
            self.returns_deadline = workflow.now() + window
        deadline = self.returns_deadline
        assert deadline is not None
        if deadline <= workflow.now():  # resumed after the window closed
            return self.returned
        while self.returned is None:
            try:
                await run.step(
                    lambda: workflow.wait_condition(
                        lambda: bool(self.inbox) or run.roller.due(),
                        timeout=deadline - workflow.now(),
                    )
                )
            except TimeoutError:
                return None
            if not self.inbox:  # woken only to roll
                raise run.roller.roll(Checkpoint.RETURNS)
            self.take()
        return self.returned
