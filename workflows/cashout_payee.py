"""Verification of Payee: before a bank transfer, the bank says whether the holder's name is
the name on the account. Match: on. Close match: to review, showing the bank's name. No
match: refused. Unavailable: asked again a few times, then to review.

A saved destination's answer is kept with the profile: unchanged, it is not asked again
(`activities.payees.PayeeActivities.verify_payee`).
"""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from payouts.domain.cashout import BankAccount, Stage
    from payouts.domain.profiles import (
        PayeeCheck,
        PayeeCheckInput,
        ProfileFacts,
        Verification,
        vop_outcome,
    )
    from payouts.temporal.interfaces import PayeeSteps
    from workflows.steps import Run

# Unavailable is asked four times over about seven seconds, then a reviewer decides (the
# reviewer sees why; a cash-out must not wait on the bank's outage for hours).
VOP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=4,
)


class PayeeVerification:
    def __init__(self, run: Run) -> None:
        self.run = run
        self.review_reason = ""  # a close match or an unavailable service: to review

    async def verify(self, facts: ProfileFacts | None) -> None:
        run = self.run
        account = run.destination
        if not isinstance(account, BankAccount):
            return
        check_in = PayeeCheckInput(
            user_id=run.inp.request.user_id,
            account=account,
            destination_id=facts.destination_id if facts else "",
            changed_at=facts.changed_at if facts else None,
            checked_at=workflow.now(),
        )
        try:
            check = await run.step(
                lambda: workflow.execute_activity_method(
                    PayeeSteps.verify_payee,
                    check_in,
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=VOP_RETRY,
                )
            )
        except FailureError:
            check = PayeeCheck(result=Verification.UNAVAILABLE)
        run.progress.verification = check.result.value
        refused, self.review_reason = vop_outcome(check)
        kept = " (kept from an earlier check of this destination)" if check.kept else ""
        if refused:
            await run.end(Stage.REJECTED, refused + kept)
        run.note(
            (self.review_reason or "Verification of Payee: the name matches the account") + kept
        )
