"""Scheduled operations: platform notifications and the daily reconciliation."""

from datetime import date, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from payouts.domain.messages import (
        DeliveryResult,
        Polling,
        ReconcileInput,
        ReconcileResult,
    )
    from payouts.temporal.contract import Workflow
    from payouts.temporal.interfaces import OpsSteps
    from workflows.polling import poll

RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))


@workflow.defn(name=Workflow.NOTIFICATIONS)
class NotificationsWorkflow:
    """Deliver every due outbox notification to the platform (retries with backoff are
    tracked per notification in the outbox): every interval for as long as it runs
    (`payouts up` starts one, `payouts-NotificationsWorkflow`), or once without `Polling`."""

    @workflow.run
    async def run(self, polling: Polling | None = None) -> DeliveryResult:
        if polling is None:
            return await _deliver()
        await poll(polling, _deliver, lambda d: f"{d.delivered} delivered, {d.failed} failed")


async def _deliver() -> DeliveryResult:
    return await workflow.execute_activity_method(
        OpsSteps.deliver_notifications, workflow.now(),
        start_to_close_timeout=timedelta(minutes=5), heartbeat_timeout=timedelta(seconds=30),
        retry_policy=RETRY,
    )  # fmt: skip


@workflow.defn(name=Workflow.RECONCILE)
class ReconcileWorkflow:
    """Reconcile a day (default: yesterday, UTC) three ways and keep the report."""

    @workflow.run
    async def run(self, day: date | None = None) -> ReconcileResult:
        now = workflow.now()
        target = day or (now - timedelta(days=1)).date()
        return await workflow.execute_activity_method(
            OpsSteps.reconcile_day, ReconcileInput(day=target, as_of=now),
            start_to_close_timeout=timedelta(minutes=30), heartbeat_timeout=timedelta(minutes=1),
            retry_policy=RETRY,
        )  # fmt: skip
