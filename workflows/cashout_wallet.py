"""Paying to a wallet: POST to the provider with the step's idempotency key, then wait for
its signed webhook (signal `wallet_event`, relayed by our ingress), asking the provider
directly when the webhook is slow.

An admitted cash-out (`run.signed`) counts a webhook event only if our ingress signed it
for this workflow and it names this payout; refusals are noted. Older cash-outs keep the
rules they started under.
"""

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from payouts.domain.bounds import shown
    from payouts.domain.carried import Checkpoint, RailState
    from payouts.domain.cashout import Stage, WalletAccount
    from payouts.domain.messages import WalletEvent, WalletPayout, WalletPayoutInput
    from payouts.errors import InstantRefused
    from payouts.temporal.contract import Step
    from payouts.temporal.interfaces import CashoutSteps
    from workflows.steps import Run, error_types, rail_event_refusal, reason, remote

WALLET_PATIENCE = timedelta(minutes=2)  # wait this long for a webhook before asking
FINAL = ("completed", "failed")


class WalletRail:
    def __init__(self, run: Run) -> None:
        self.run = run
        self.final: WalletPayout | None = None
        self.seen: set[str] = set()
        self.inbox: list[WalletEvent] = []  # admitted cash-outs: as signalled, unchecked
        self.arrived: list[Stage] = []  # ... and the stage each came in
        self.patience = WALLET_PATIENCE

    def restore(self, rail: RailState) -> None:
        """Resume in a new run (`workflows.cashout_roll`)."""
        self.final, self.seen = rail.wallet_final, set(rail.seen)
        self.inbox, self.arrived = list(rail.wallet_inbox), list(rail.arrived)
        self.patience = timedelta(seconds=rail.patience_seconds) or WALLET_PATIENCE

    def sift(self) -> None:
        """Before a new run: take what the inbox holds (a final answer is carried)."""
        self._drain()

    def on_event(self, event: WalletEvent) -> None:
        """The signal handler: queue it (older cash-outs: take it at once, as before)."""
        if self.run.signed:
            self.inbox.append(event)
            self.arrived.append(self.run.progress.stage)
        else:
            self._take(event)

    def _take(self, event: WalletEvent) -> None:
        if event.event_id in self.seen:
            return
        self.seen.add(event.event_id)
        if self.final is None and event.status in FINAL:
            self.final = WalletPayout(
                id=event.payout_id, status=event.status, failure_reason=event.failure_reason
            )
        elif event.status not in FINAL:
            self.run.note(f"wallet provider: {event.type}")

    def _drain(self) -> None:
        """Take what the inbox holds, refusing what is not ours for this payout."""
        while self.inbox:
            event, stage = self.inbox.pop(0), self.arrived.pop(0)
            why = rail_event_refusal(self.run, "wallet", event)
            if why is None and event.payout_id != self.run.progress.rail_ref:
                why = "it names another payout"
            if why is None and stage not in (Stage.DISBURSING, Stage.SENT):
                why = f"no payout existed yet (the cash-out was {stage.value})"
            if why is not None:
                self.run.refused(f"wallet event {shown(event.type, 32)}", why)
                continue
            self._take(event)

    async def pay(self) -> None:
        run, q = self.run, self.run.inp.quote
        dest = run.destination
        assert isinstance(dest, WalletAccount)
        send = WalletPayoutInput(
            key=run.key(Step.DISBURSE),
            reference=workflow.info().workflow_id,
            wallet_id=dest.wallet_id,
            amount=q.net,
            currency=q.currency,
            instant=q.speed == "instant",
        )
        if run.roller.at is not Checkpoint.RAIL:
            payout = await self._send(send)
            run.progress.rail_ref = payout.id
            lookup = " (an ambiguous answer was resolved by asking the provider)"
            run.enter(
                Stage.SENT,
                f"wallet payout {payout.id} accepted"
                + (lookup if payout.resolved_by_lookup else ""),
            )
            if payout.status in FINAL:
                self.final = payout
        payout_id = run.progress.rail_ref
        assert payout_id is not None
        if run.signed:
            self._drain()
        while self.final is None:
            try:
                await run.step(
                    lambda p=self.patience: workflow.wait_condition(  # type: ignore[misc]
                        lambda: self.final is not None or self._final_waiting() or run.roller.due(),
                        timeout=p,
                    )
                )
                self._drain()
                if self.final is None and run.roller.due():
                    raise run.roller.roll(Checkpoint.RAIL)
            except TimeoutError:
                checked = await run.step(
                    lambda: remote(CashoutSteps.wallet_payout_status, payout_id)
                )
                if checked.status in FINAL:
                    run.note("no webhook yet: asked the provider, which has a final answer")
                    self.final = checked
                self.patience = min(self.patience * 2, timedelta(hours=1))
        if self.final.status == "failed":
            why = self.final.failure_reason or "no reason"
            await run.end(Stage.FAILED, f"the wallet provider failed the payout: {why}")
        run.note("wallet provider confirmed the payout")

    async def _send(self, send: WalletPayoutInput) -> WalletPayout:
        """Send; an instant payout the provider refuses goes again at standard speed (its
        own idempotency key: the provider applied nothing under the first)."""
        run = self.run
        try:
            return await run.step(lambda: remote(CashoutSteps.send_wallet_payout, send))
        except FailureError as err:
            if not send.instant or InstantRefused.code not in error_types(err):
                raise
            why = reason(err)
        await run.fall_back(why)
        standard = send.model_copy(
            update={"key": send.key + ":standard", "amount": run.inp.quote.net, "instant": False}
        )
        return await run.step(lambda: remote(CashoutSteps.send_wallet_payout, standard))

    def _final_waiting(self) -> bool:
        """Does the inbox hold a final answer to check? (Not one that is a duplicate.)"""
        return any(e.status in FINAL and e.event_id not in self.seen for e in self.inbox)
