"""Paying in gift cards: the provider issues cards of the quote's face values; their codes
go straight into our vault and never enter the history (only their last digits do)."""

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from payouts.domain.cashout import Stage, mask
    from payouts.domain.messages import GiftCardsInput
    from payouts.domain.money import format_money
    from payouts.temporal.contract import Step
    from payouts.temporal.interfaces import CashoutSteps
    from workflows.steps import Run, remote


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
        run.progress.rail_ref = f"{issued.count} gift cards"
        run.enter(
            Stage.SENT,
            f"issued {cards}; the codes are shown once to the payee (payouts giftcodes), "
            f"notice sent to {mask(run.destination)}",
        )
