"""Payee workflows: one run applies one change to a payout profile (its history is the
change's audit trail), and the automatic cash-out sweep (a Temporal Schedule) pages
through the standing instructions and starts the cash-outs that are due."""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from payouts.domain.profiles import (
        ProfileChange,
        ProfileChangeInput,
        ProfileResult,
        SweepPage,
        SweepResult,
    )
    from payouts.temporal.contract import Workflow
    from payouts.temporal.interfaces import PayeeSteps
    from workflows.steps import LOCAL_RETRY

RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
PAGE = 1000  # standing instructions per activity


@workflow.defn(name=Workflow.PROFILE)
class PayeeProfileWorkflow:
    @workflow.run
    async def run(self, change: ProfileChange) -> ProfileResult:
        return await workflow.execute_local_activity_method(
            PayeeSteps.apply_profile_change,
            ProfileChangeInput(change=change, started_at=workflow.info().start_time),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=LOCAL_RETRY,
        )


@workflow.defn(name=Workflow.AUTO_SWEEP)
class AutoCashoutSweepWorkflow:
    """Start every automatic cash-out that is due, a page of payees at a time, at most
    `rate` starts a second. Request ids are per payee, currency and trigger period, so a
    second (or overlapping) sweep in the same period starts nothing twice."""

    @workflow.run
    async def run(self, rate: float = 50.0) -> SweepResult:
        total, after = SweepResult(), ""
        as_of = workflow.now()
        while True:
            page = await workflow.execute_activity_method(
                PayeeSteps.sweep_auto_cashouts,
                SweepPage(as_of=as_of, after=after, limit=PAGE, rate=rate),
                start_to_close_timeout=timedelta(minutes=30),
                heartbeat_timeout=timedelta(seconds=30),
                retry_policy=RETRY,
            )
            total = total.plus(page)
            workflow.set_current_details(
                f"scanned {total.scanned}, started {total.started}, already {total.already}, "
                f"not due {total.skipped}, refused {total.refused}"
            )
            if not page.next_after:
                return total
            after = page.next_after
