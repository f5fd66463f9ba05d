"""The service workflows `payouts up` keeps running.

Schedules (created, or updated to the current settings), overlapping runs skipped:

- `payouts-bank-batches`: BankBatchWorkflow at every cutoff (policy: cutoff_minutes);
- `payouts-reconcile`: ReconcileWorkflow daily at 00:30 UTC (for the day before);
- `payouts-auto-cashouts`: AutoCashoutSweepWorkflow every `PAYOUTS_AUTO_SWEEP_MINUTES`,
  starting at most `PAYOUTS_AUTO_SWEEP_RATE` cash-outs a second.

Pollers, one long-lived workflow each (`workflows.polling`), started if not running:

- `payouts-BankReportsWorkflow`, every `PAYOUTS_BANK_POLL_SECONDS`;
- `payouts-NotificationsWorkflow`, every `PAYOUTS_NOTIFY_INTERVAL_SECONDS`.

Release 0.1 ran those two from schedules, a new workflow every few seconds; their
schedules are deleted here.
"""

from __future__ import annotations

import contextlib
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
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError

from payouts.config.settings import Settings
from payouts.domain.messages import Polling
from payouts.domain.policy import Method, Policy
from payouts.temporal import contract
from payouts.temporal.contract import Workflow


def schedules(settings: Settings, policy: Policy) -> dict[str, Schedule]:
    batching = policy.methods[Method.BANK_TRANSFER].batching
    cutoff = batching.cutoff_minutes if batching else 60

    def every(workflow: str, period: timedelta, *args: object) -> Schedule:
        return Schedule(
            action=ScheduleActionStartWorkflow(
                workflow,
                args=args,
                id=contract.scheduled_id(workflow),
                task_queue=settings.task_queue,
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
        "payouts-reconcile": daily,
        "payouts-auto-cashouts": every(
            Workflow.AUTO_SWEEP,
            timedelta(minutes=settings.auto_sweep_minutes),
            settings.auto_sweep_rate,
        ),
    }


RETIRED = ("payouts-bank-reports", "payouts-notifications")  # now pollers


def pollers(settings: Settings) -> dict[str, Polling]:
    return {
        Workflow.BANK_REPORTS: Polling(every_seconds=settings.bank_poll_seconds),
        Workflow.NOTIFICATIONS: Polling(every_seconds=settings.notify_interval_seconds),
    }


async def ensure_pollers(client: Client, settings: Settings) -> list[str]:
    """Start each poller unless one is running (a restart of `payouts up` adopts it; a new
    interval takes effect once the running one is terminated); retire the schedules that
    ran them before. Returns the pollers' workflow ids."""
    for schedule_id in RETIRED:
        with contextlib.suppress(RPCError):  # (not found: already retired, or never made)
            await client.get_schedule_handle(schedule_id).delete()
    ids = []
    for name, polling in pollers(settings).items():
        handle = await client.start_workflow(
            name,
            polling,
            id=contract.poller_id(name),
            task_queue=settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        )
        ids.append(handle.id)
    return ids


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
