"""Scheduled bank workflows: one cuts batches at each cutoff, one reads the bank's reports.

Both end by telling every affected cash-out workflow (signal `bank_event`) what became of
its transfer. A cash-out that has already ended (a return after its return window) is
handled here instead: the return is still reversed in the ledger and reported.
"""

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from payouts.domain.messages import BankCycle, BankSignal, Polling
    from payouts.temporal.contract import Signal, Workflow
    from payouts.temporal.interfaces import BankSteps
    from workflows.polling import poll

RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
ROUND = 500
# The schedules skip a run while the last one is still open: a worker lost in the middle of
# a cycle must be noticed in seconds, or batches and reports would wait for the 5 minutes.
HEARTBEAT = timedelta(seconds=15)


async def _tell_cashouts() -> tuple[int, int]:
    """Signal every pending bank event to its cash-out; (signalled, handled late)."""
    told = late = 0
    while True:
        signals = await workflow.execute_activity_method(
            BankSteps.bank_signals, ROUND,
            start_to_close_timeout=timedelta(minutes=1), retry_policy=RETRY,
        )  # fmt: skip
        if not signals:
            return told, late

        async def deliver(s: BankSignal) -> bool:
            try:
                await workflow.get_external_workflow_handle(s.workflow_id).signal(
                    Signal.BANK_EVENT, s.event
                )
                return True
            except FailureError:  # the cash-out has ended
                await workflow.execute_activity_method(
                    BankSteps.apply_late_bank_event, s,
                    start_to_close_timeout=timedelta(minutes=1), retry_policy=RETRY,
                )  # fmt: skip
                return False

        results = await asyncio.gather(*(deliver(s) for s in signals))
        told += sum(results)
        late += len(results) - sum(results)
        await workflow.execute_activity_method(
            BankSteps.mark_bank_signalled, signals,
            start_to_close_timeout=timedelta(minutes=1), retry_policy=RETRY,
        )  # fmt: skip
        if len(signals) < ROUND:
            return told, late


async def _cycle(activity: Callable[[BankSteps, datetime], BankCycle]) -> BankCycle:
    """One bank activity (it heartbeats per file), then tell the cash-outs what changed."""
    cycle = await workflow.execute_activity_method(
        activity, workflow.now(),
        start_to_close_timeout=timedelta(minutes=5), heartbeat_timeout=HEARTBEAT,
        retry_policy=RETRY,
    )  # fmt: skip
    told, late = await _tell_cashouts()
    return cycle.model_copy(update={"signalled": told, "late": late})


@workflow.defn(name=Workflow.BANK_BATCH)
class BankBatchWorkflow:
    """At each cutoff (a Temporal Schedule): batch, write, validate and send the files."""

    @workflow.run
    async def run(self) -> BankCycle:
        return await _cycle(BankSteps.cut_bank_batches)


@workflow.defn(name=Workflow.BANK_REPORTS)
class BankReportsWorkflow:
    """Fetch and apply the bank's reports: every poll interval for as long as it runs
    (`payouts up` starts one, `payouts-BankReportsWorkflow`), or once without `Polling`."""

    @workflow.run
    async def run(self, polling: Polling | None = None) -> BankCycle:
        if polling is None:
            return await _cycle(BankSteps.process_bank_reports)
        await poll(polling, lambda: _cycle(BankSteps.process_bank_reports), _described)


def _described(c: BankCycle) -> str:
    text = f"{c.report_files} report files, {c.items_moved} items moved, {c.signalled} told"
    if c.quarantined:
        text += f"; QUARANTINED: {'; '.join(c.quarantined)}"
    return text
