"""Scheduled operations: platform notifications and the daily reconciliation."""

from datetime import date, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from payouts.domain.models import DeliveryResult, ReconcileInput, ReconcileResult

RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))


@workflow.defn(name="NotificationsWorkflow")
class NotificationsWorkflow:
    """Deliver every due outbox notification to the platform (retries with backoff are
    tracked per notification in the outbox)."""

    @workflow.run
    async def run(self) -> DeliveryResult:
        result: DeliveryResult = await workflow.execute_activity(
            "deliver_notifications", workflow.now(), result_type=DeliveryResult,
            start_to_close_timeout=timedelta(minutes=5), heartbeat_timeout=timedelta(seconds=30),
            retry_policy=RETRY,
        )  # fmt: skip
        return result


@workflow.defn(name="ReconcileWorkflow")
class ReconcileWorkflow:
    """Reconcile a day (default: yesterday, UTC) three ways and keep the report."""

    @workflow.run
    async def run(self, day: date | None = None) -> ReconcileResult:
        now = workflow.now()
        target = day or (now - timedelta(days=1)).date()
        result: ReconcileResult = await workflow.execute_activity(
            "reconcile_day", ReconcileInput(day=target, as_of=now), result_type=ReconcileResult,
            start_to_close_timeout=timedelta(minutes=30), heartbeat_timeout=timedelta(minutes=1),
            retry_policy=RETRY,
        )  # fmt: skip
        return result
