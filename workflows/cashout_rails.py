"""How a cash-out is paid, per rail: the DISBURSING -> SENT -> PAID part of the workflow.

Each rail is a small class the workflow owns. It sends the payout with the step's
idempotency key, takes the rail's answers (the signals the workflow's handlers pass on)
and returns once the rail has paid, or ends the cash-out when the rail refuses.

- Bank: queue for the next batch file, then follow the bank's answers (`bank_event`):
  sent, accepted, booked; or rejected. After PAID, a return is still possible.
- Wallet: POST to the provider, then wait for its signed webhook (`wallet_event`), asking
  the provider directly when the webhook is slow.
- Gift cards: issue the cards; their codes never enter the history.
"""

from datetime import timedelta
from typing import TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from payouts.domain.cashout import BankAccount, Stage, WalletAccount, mask
    from payouts.domain.messages import (
        BankEnqueue,
        BankEvent,
        GiftCardsInput,
        ReverseInput,
        ReversePayout,
        WalletEvent,
        WalletPayout,
        WalletPayoutInput,
    )
    from payouts.domain.money import format_money
    from payouts.temporal.contract import Step
    from payouts.temporal.interfaces import CashoutSteps
    from workflows.steps import Run, local, remote

T = TypeVar("T")

WALLET_PATIENCE = timedelta(minutes=2)  # wait this long for a webhook before asking


class BankRail:
    def __init__(self, run: Run) -> None:
        self.run = run
        self.inbox: list[BankEvent] = []
        self.seen: set[str] = set()

    def on_event(self, event: BankEvent) -> None:
        """What the bank said (from the scheduled bank workflows); each kind counts once."""
        if event.kind in self.seen:
            return
        self.seen.add(event.kind)
        self.inbox.append(event)

    async def pay(self) -> None:
        """Queue for the next batch, then follow the bank's answers until it books."""
        run, q, req = self.run, self.run.inp.quote, self.run.inp.request
        assert isinstance(req.destination, BankAccount)
        enqueue = BankEnqueue(
            workflow_id=workflow.info().workflow_id,
            request_id=req.request_id,
            user_id=req.user_id,
            currency=q.currency,
            amount=q.net,
            destination=req.destination,
            at=workflow.now(),
        )
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
            await run.step(lambda: workflow.wait_condition(lambda: bool(self.inbox)))
            event = self.inbox.pop(0)
            if event.kind == "sent" and run.progress.stage is Stage.DISBURSING:
                run.progress.batch_id = event.batch_id
                hours = run.inp.rules.expected_arrival_hours
                run.progress.expected_arrival = workflow.now() + timedelta(hours=hours)
                run.enter(Stage.SENT, f"in bank batch {event.batch_id}")
            elif event.kind == "accepted":
                run.note("accepted by the bank")
            elif event.kind == "rejected":
                await run.end(
                    Stage.FAILED,
                    f"the bank rejected the transfer: {event.code} {event.reason}".strip(),
                )
            elif event.kind in ("booked", "returned"):
                if event.kind == "returned":
                    self.inbox.insert(0, event)  # booked and returned at once: both count
                run.note("booked by the bank")
                return

    async def watch_for_return(self, window: timedelta) -> None:
        """A bank can still return a paid transfer: reverse it in the ledger if it does."""
        run = self.run
        try:
            await run.step(
                lambda: workflow.wait_condition(
                    lambda: any(e.kind == "returned" for e in self.inbox), timeout=window
                )
            )
        except TimeoutError:
            run.note(f"no return within {window.days} days: final")
            return
        event = next(e for e in self.inbox if e.kind == "returned")
        reason = f"returned by the bank: {event.code} {event.reason}".strip()
        reverse = ReversePayout(
            reverse=ReverseInput(key=run.key(Step.REVERSE), hold_id=run.hold_id(), reason=reason),
            notify=run.notification(Stage.RETURNED, reason),
        )
        await run.step(lambda: local(CashoutSteps.reverse_payout, reverse), local=True)
        run.progress.outcome = f"{reason}; the money is back in the available balance"
        run.enter(Stage.RETURNED, run.progress.outcome)


class WalletRail:
    def __init__(self, run: Run) -> None:
        self.run = run
        self.final: WalletPayout | None = None
        self.seen: set[str] = set()

    def on_event(self, event: WalletEvent) -> None:
        """A verified webhook from the provider; duplicates and stale ones are ignored."""
        if event.event_id in self.seen:
            return
        self.seen.add(event.event_id)
        if self.final is None and event.status in ("completed", "failed"):
            self.final = WalletPayout(
                id=event.payout_id, status=event.status, failure_reason=event.failure_reason
            )
        elif event.status not in ("completed", "failed"):
            self.run.note(f"wallet provider: {event.type}")

    async def pay(self) -> None:
        """POST with the step's key, then wait for the webhook, asking when it is slow."""
        run, q, req = self.run, self.run.inp.quote, self.run.inp.request
        assert isinstance(req.destination, WalletAccount)
        send = WalletPayoutInput(
            key=run.key(Step.DISBURSE),
            reference=workflow.info().workflow_id,
            wallet_id=req.destination.wallet_id,
            amount=q.net,
            currency=q.currency,
        )
        payout = await run.step(lambda: remote(CashoutSteps.send_wallet_payout, send))
        run.progress.rail_ref = payout.id
        lookup = " (an ambiguous answer was resolved by asking the provider)"
        run.enter(
            Stage.SENT,
            f"wallet payout {payout.id} accepted" + (lookup if payout.resolved_by_lookup else ""),
        )
        if payout.status in ("completed", "failed"):
            self.final = payout
        patience = WALLET_PATIENCE
        while self.final is None:
            try:
                await run.step(
                    lambda p=patience: workflow.wait_condition(  # type: ignore[misc]
                        lambda: self.final is not None, timeout=p
                    )
                )
            except TimeoutError:
                checked = await run.step(
                    lambda: remote(CashoutSteps.wallet_payout_status, payout.id)
                )
                if checked.status in ("completed", "failed"):
                    run.note("no webhook yet: asked the provider, which has a final answer")
                    self.final = checked
                patience = min(patience * 2, timedelta(hours=1))
        if self.final.status == "failed":
            why = self.final.failure_reason or "no reason"
            await run.end(Stage.FAILED, f"the wallet provider failed the payout: {why}")
        run.note("wallet provider confirmed the payout")


class GiftCardRail:
    def __init__(self, run: Run) -> None:
        self.run = run

    async def pay(self) -> None:
        """Issue the cards; only their last digits come back (codes stay in the vault)."""
        run, q, req = self.run, self.run.inp.quote, self.run.inp.request
        issue = GiftCardsInput(
            key=run.key(Step.DISBURSE),
            request_id=req.request_id,
            user_id=req.user_id,
            currency=q.currency,
            cards=q.cards,
            at=workflow.now(),
        )
        issued = await run.step(lambda: remote(CashoutSteps.issue_gift_cards, issue))
        cards = " + ".join(format_money(c, q.currency) for c in q.cards)
        ends = ", ".join(f"...{x}" for x in issued.last4)
        run.progress.rail_ref = f"{issued.count} gift cards"
        run.enter(
            Stage.SENT,
            f"issued {cards} ({ends}); codes are shown once to the payee, "
            f"notice sent to {mask(req.destination)}",
        )
