"""Scheduled bank workflows: one cuts batches at each cutoff, one reads the bank's reports.

Both end by telling every affected cash-out workflow (signal `bank_event`) what became of
its transfer. A cash-out that has already ended (a return after its return window) is
handled here instead: the return is still reversed in the ledger and reported.
"""

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from payouts.domain.models import BankCycle, BankSignal

RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
ROUND = 500
# The schedules skip a run while the last one is still open: a worker lost in the middle of
# a cycle must be noticed in seconds, or batches and reports would wait for the 5 minutes.
HEARTBEAT = timedelta(seconds=15)


async def _tell_cashouts() -> tuple[int, int]:
    """Signal every pending bank event to its cash-out; (signalled, handled late)."""
    told = late = 0
    while True:
        signals = await workflow.execute_activity(
            "bank_signals", ROUND, result_type=list[BankSignal],
            start_to_close_timeout=timedelta(minutes=1), retry_policy=RETRY,
        )  # fmt: skip
        if not signals:
            return told, late

        async def deliver(s: BankSignal) -> bool:
            try:
                await workflow.get_external_workflow_handle(s.workflow_id).signal(
                    "bank_event", s.event
                )
                return True
            except FailureError:  # the cash-out has ended
                await workflow.execute_activity(
                    "apply_late_bank_event", s, result_type=str,
                    start_to_close_timeout=timedelta(minutes=1), retry_policy=RETRY,
                )  # fmt: skip
                return False

        results = await asyncio.gather(*(deliver(s) for s in signals))
        told += sum(results)
        late += len(results) - sum(results)
        await workflow.execute_activity(
            "mark_bank_signalled", signals, result_type=int,
            start_to_close_timeout=timedelta(minutes=1), retry_policy=RETRY,
        )  # fmt: skip
        if len(signals) < ROUND:
            return told, late


async def _cycle(activity: str) -> BankCycle:
    """One bank activity (it heartbeats per file), then tell the cash-outs what changed."""
    cycle: BankCycle = await workflow.execute_activity(
        activity, workflow.now(), result_type=BankCycle,
        start_to_close_timeout=timedelta(minutes=5), heartbeat_timeout=HEARTBEAT,
        retry_policy=RETRY,
    )  # fmt: skip
    told, late = await _tell_cashouts()
    return cycle.model_copy(update={"signalled": told, "late": late})


@workflow.defn(name="BankBatchWorkflow")
class BankBatchWorkflow:
    """At each cutoff (a Temporal Schedule): batch, write, validate and send the files."""

    @workflow.run
    async def run(self) -> BankCycle:
        return await _cycle("cut_bank_batches")


@workflow.defn(name="BankReportsWorkflow")
class BankReportsWorkflow:
    """Every poll interval (a Temporal Schedule): fetch and apply the bank's reports."""

    @workflow.run
    async def run(self) -> BankCycle:
        return await _cycle("process_bank_reports")
