"""The Temporal Schedules `payouts up` creates (or updates to the current settings):

- `payouts-bank-batches`: BankBatchWorkflow at every cutoff (policy: cutoff_minutes);
- `payouts-bank-reports`: BankReportsWorkflow every `PAYOUTS_BANK_POLL_SECONDS`;
- `payouts-notifications`: NotificationsWorkflow every `PAYOUTS_NOTIFY_INTERVAL_SECONDS`;
- `payouts-reconcile`: ReconcileWorkflow daily at 00:30 UTC (for the day before).

Overlapping runs are skipped: a slow cycle is never run twice at once.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from payouts.config.settings import Settings
from payouts.domain.policy import Method, Policy
from payouts.temporal import contract
from payouts.temporal.contract import Workflow


def schedules(settings: Settings, policy: Policy) -> dict[str, Schedule]:
    batching = policy.methods[Method.BANK_TRANSFER].batching
    cutoff = batching.cutoff_minutes if batching else 60

    def every(workflow: str, period: timedelta) -> Schedule:
        return Schedule(
            action=ScheduleActionStartWorkflow(
                workflow, id=contract.scheduled_id(workflow), task_queue=settings.task_queue
            ),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=period)]),
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        )

    daily = Schedule(
        action=ScheduleActionStartWorkflow(
            Workflow.RECONCILE,
            id=contract.scheduled_id(Workflow.RECONCILE),
            task_queue=settings.task_queue,
        ),
        spec=ScheduleSpec(cron_expressions=["30 0 * * *"]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    return {
        "payouts-bank-batches": every(Workflow.BANK_BATCH, timedelta(minutes=cutoff)),
        "payouts-bank-reports": every(
            Workflow.BANK_REPORTS, timedelta(seconds=settings.bank_poll_seconds)
        ),
        "payouts-notifications": every(
            Workflow.NOTIFICATIONS, timedelta(seconds=settings.notify_interval_seconds)
        ),
        "payouts-reconcile": daily,
    }


async def ensure_schedules(client: Client, settings: Settings, policy: Policy) -> list[str]:
    """Create each schedule, or bring an existing one up to date; returns their ids."""
    for schedule_id, schedule in schedules(settings, policy).items():
        try:
            await client.create_schedule(schedule_id, schedule)
        except ScheduleAlreadyRunningError:

            def replace(_: ScheduleUpdateInput, new: Schedule = schedule) -> ScheduleUpdate:
                return ScheduleUpdate(schedule=new)

            await client.get_schedule_handle(schedule_id).update(replace)
    return sorted(schedules(settings, policy))
