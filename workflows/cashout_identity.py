"""Who the payee is: the identity check (KYC) a cash-out needs above the policy's amount,
and for every bank transfer, whose account must be in the verified person's name."""

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from payouts.domain.carried import Checkpoint
    from payouts.domain.cashout import BankAccount, Stage
    from payouts.domain.messages import IdentityInput, IdentityResult, IdentityStatus
    from payouts.domain.review import names_match
    from payouts.temporal.contract import Patch
    from payouts.temporal.interfaces import CashoutSteps
    from workflows.steps import Run, reason, remote


class IdentityCheck:
    def __init__(self, run: Run) -> None:
        self.run = run
        self.pending_noted = False
        self.give_up: datetime | None = None  # a pending check fails after this
        self.holder_uncompared = False  # a bank account not compared: the cash-out is reviewed

    async def verify(self) -> None:
        """Ask the provider until it verifies or rejects; a pending check is asked again
        every `poll_minutes` until `pending_timeout_hours`."""
        run = self.run
        rules = run.inp.rules.identity
        if self.give_up is None:  # else resumed: the first run's deadline holds
            self.give_up = workflow.now() + timedelta(hours=rules.pending_timeout_hours)
        give_up = self.give_up
        while True:
            try:
                result = await run.step(lambda: remote(CashoutSteps.verify_identity, self._check()))
            except FailureError as err:
                await run.end(Stage.FAILED, f"identity check failed: {reason(err)}")
            run.progress.identity = result
            if result.status is IdentityStatus.VERIFIED:
                run.note(f"identity verified (tier {result.tier})")
                await self._check_holder(result)
                return
            if result.status is IdentityStatus.REJECTED:
                await run.end(Stage.REJECTED, f"identity rejected: {result.reason}")
            await run.stop_if_cancelled()
            if workflow.now() >= give_up:
                hours = rules.pending_timeout_hours
                await run.end(Stage.FAILED, f"identity still pending after {hours} hours")
            if not self.pending_noted:
                self.pending_noted = True
                every = f"checking every {rules.poll_minutes} minutes"
                run.note(f"identity pending: {result.reason}; {every}")
            poll = timedelta(minutes=rules.poll_minutes)
            await run.wait_unless_cancelled(poll, Checkpoint.IDENTITY)

    def _check(self) -> IdentityInput:
        return IdentityInput(user_id=self.run.inp.request.user_id, checked_at=workflow.now())

    async def _check_holder(self, identity: IdentityResult) -> None:
        """A bank account must be in the verified person's name (case, accents and word
        order aside). Names stay out of the timeline: it says only whether they match."""
        run = self.run
        dest = run.destination
        if not isinstance(dest, BankAccount):
            return
        if identity.legal_name is None:
            # Since this change, an uncompared holder goes to review; cash-outs that passed
            # here before replay as they ran (`workflow.patched`, asked only on this path)
            if run.signed and workflow.patched(Patch.HOLDER_REVIEW):
                self.holder_uncompared = True
                run.note("the identity provider has no legal name on record: to review")
            else:
                run.note("the identity provider has no legal name on record: holder not compared")
        elif names_match(dest.holder_name, identity.legal_name):
            run.note("account holder's name matches the verified identity")
        else:
            await run.end(
                Stage.REJECTED,
                "the bank account holder's name does not match the verified identity",
            )
