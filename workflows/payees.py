"""Payee workflows: one run applies one change to a payout profile (its history is the
change's audit trail), one run applies one reversal of an earning (likewise), one serves
a page of a payee's statement to the platform, and the
automatic cash-out sweep (a Temporal Schedule) pages through the standing instructions and
starts the cash-outs that are due."""

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

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
    from payouts.domain.reversals import ReversalInput, ReversalRequest, ReversalResult
    from payouts.domain.statements import StatementInput, StatementPage, StatementRequest
    from payouts.temporal.contract import Patch, Workflow
    from payouts.temporal.interfaces import PayeeSteps
    from workflows.steps import LOCAL_RETRY

In = TypeVar("In")
R = TypeVar("R")
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
PAGE = 1000  # standing instructions per activity


def started_at() -> datetime:
    """When the server started this workflow (what a signed platform action's age counts
    from: not the first task, which a worker backlog delays)."""
    return workflow.info().workflow_start_time


async def local_step(step: Callable[[Any, In], R], inp: In, seconds: int = 30) -> R:
    """One local activity of a platform action, retried as every local step is."""
    return await workflow.execute_local_activity_method(
        step, inp, start_to_close_timeout=timedelta(seconds=seconds), retry_policy=LOCAL_RETRY
    )


@workflow.defn(name=Workflow.PROFILE)
class PayeeProfileWorkflow:
    @workflow.run
    async def run(self, change: ProfileChange) -> ProfileResult:
        inp = ProfileChangeInput(change=change, started_at=started_at())
        return await local_step(PayeeSteps.apply_profile_change, inp)


@workflow.defn(name=Workflow.REVERSAL)
class EarningReversalWorkflow:
    @workflow.run
    async def run(self, request: ReversalRequest) -> ReversalResult:
        inp = ReversalInput(request=request, started_at=started_at())
        return await local_step(PayeeSteps.apply_reversal, inp)


@workflow.defn(name=Workflow.STATEMENT)
class PayeeStatementWorkflow:
    """One page of a payee's statement, for the platform (which signs the request)."""

    @workflow.run
    async def run(self, request: StatementRequest) -> StatementPage:
        inp = StatementInput(request=request, started_at=started_at())
        return await local_step(PayeeSteps.statement_page, inp, seconds=60)


@workflow.defn(name=Workflow.AUTO_SWEEP)
class AutoCashoutSweepWorkflow:
    """Start every automatic cash-out that is due, a page of payees at a time, at most
    `rate` starts a second: the standing instructions, then the dormant balances. Request
    ids are per payee, currency and trigger period, so a second (or overlapping) sweep in
    the same period starts nothing twice."""

    @workflow.run
    async def run(self, rate: float = 50.0) -> SweepResult:
        rate = rate if 0.1 <= rate <= 1000 else 50.0  # (a start by hand: no 0, NaN or flood)
        as_of = workflow.now()
        total = await self._pages(SweepResult(), SweepPage(as_of=as_of, limit=PAGE, rate=rate))
        if workflow.patched(Patch.DORMANT):
            dormant = SweepPage(as_of=as_of, limit=PAGE, rate=rate, dormant=True)
            total = await self._pages(total, dormant)
        return total

    async def _pages(self, total: SweepResult, page: SweepPage) -> SweepResult:
        while True:
            done = await workflow.execute_activity_method(
                PayeeSteps.sweep_auto_cashouts,
                page,
                start_to_close_timeout=timedelta(minutes=30),
                heartbeat_timeout=timedelta(seconds=30),
                retry_policy=RETRY,
            )
            total = total.plus(done)
            workflow.set_current_details(
                f"scanned {total.scanned}, started {total.started}, already {total.already}, "
                f"not due {total.skipped}, refused {total.refused}"
            )
            if not done.next_after:
                return total
            page = page.model_copy(update={"after": done.next_after})
