"""The service workflows `payouts up` keeps: three schedules (bank cutoffs, the daily
reconciliation, the automatic cash-out sweep) and two long-lived pollers (bank reports,
notifications), so the UI's list shows cash-outs and a handful of service workflows, not
a new poller every few seconds."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import (
    Schedule,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleSpec,
    WorkflowExecutionStatus,
)
from temporalio.service import RPCError

from payouts.devstack.demo import sandbox_iban
from payouts.domain.cashout import Stage
from payouts.domain.messages import Polling
from payouts.domain.profiles import SweepResult, auto_request_id
from payouts.temporal.schedules import ensure_pollers, ensure_schedules
from tests.support.harness import Harness

POLLERS = ["payouts-BankReportsWorkflow", "payouts-NotificationsWorkflow"]


async def runs_of(h: Harness, workflow_id: str) -> int:
    return len([w async for w in h.temporal.list_workflows(f'WorkflowId = "{workflow_id}"')])


async def test_schedules_and_pollers_are_kept_running(harness: Harness) -> None:
    """Run twice, `payouts up` updates its schedules, adopts the running pollers (one run
    each) and retires release 0.1's polling schedules; the pollers then pay a bank transfer
    and tell the platform with nobody running a cycle by hand."""
    h = harness
    settings = h.stack.settings.model_copy(
        update={"bank_poll_seconds": 1, "notify_interval_seconds": 1}
    )
    retired = Schedule(
        action=ScheduleActionStartWorkflow(
            "BankReportsWorkflow", id="old-reports", task_queue=h.task_queue
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=1))]),
    )
    await h.temporal.create_schedule("payouts-bank-reports", retired)
    ids_made = ("payouts-auto-cashouts", "payouts-bank-batches", "payouts-reconcile")
    try:
        ids = await ensure_schedules(h.temporal, settings, h.stack.policy)
        assert ids == await ensure_schedules(h.temporal, settings, h.stack.policy)
        assert ids == ["payouts-auto-cashouts", "payouts-bank-batches", "payouts-reconcile"]
        desc = await h.temporal.get_schedule_handle("payouts-bank-batches").describe()
        assert desc.schedule.spec.intervals[0].every.total_seconds() == 60
        started = await ensure_pollers(h.temporal, settings)
        assert started == await ensure_pollers(h.temporal, settings) == POLLERS
        assert [await runs_of(h, p) for p in POLLERS] == [1, 1]
        with pytest.raises(RPCError):
            await h.temporal.get_schedule_handle("payouts-bank-reports").describe()
        h.fund("pol", "100.00")
        ticket = await h.cashout("pol", "20", "bank_transfer", sandbox_iban("4242"), holder="Pol")
        await h.wait_for(ticket.request_id, lambda s: any("queued" in e.note for e in s.timeline))
        await h.run_workflow("BankBatchWorkflow")  # the cutoff; the poller does the rest
        await h.wait_stage(ticket.request_id, Stage.PAID)
        for _ in range(200):
            if h.platform.stages_for(ticket.request_id) == ["PAID"]:
                break
            await asyncio.sleep(0.05)
        assert h.platform.stages_for(ticket.request_id) == ["PAID"]
        # the automatic cash-out schedule: nobody asks, the payee above their threshold is paid
        h.fund("sol", "75.00")
        dst = await h.client.save_destination("sol", "gift_card", "sol@example.org")
        await h.client.set_auto_cashout("sol", destination_id=dst, currency="USD", threshold="50")
        schedule = h.temporal.get_schedule_handle("payouts-auto-cashouts")
        await schedule.trigger()
        for _ in range(400):
            actions = (await schedule.describe()).info.recent_actions
            if actions:
                break
            await asyncio.sleep(0.05)
        run = actions[-1].action
        assert isinstance(run, ScheduleActionExecutionStartWorkflow)
        swept = await h.temporal.get_workflow_handle(
            run.workflow_id, result_type=SweepResult
        ).result()
        assert swept.started == 1
        rule = (await h.client.payee_profile("sol")).auto[0]
        result = await h.result(auto_request_id("sol", rule, f"d{datetime.now(UTC):%Y%m%d}"))
        assert result.stage is Stage.PAID and h.balance("sol") == (0, 0)
    finally:
        for schedule_id in ids_made:
            with contextlib.suppress(RPCError):
                await h.temporal.get_schedule_handle(schedule_id).delete()
        for poller in POLLERS:
            with contextlib.suppress(RPCError):
                await h.temporal.get_workflow_handle(poller).terminate("test over")


async def test_a_poller_continues_as_new_and_shows_its_last_cycle(harness: Harness) -> None:
    """After `cycles` cycles a poller continues as new (its history stays small); the
    running one says in its current details what its last cycle did."""
    h = harness
    wid = f"poller-{uuid.uuid4().hex[:8]}"
    await h.temporal.start_workflow(
        "NotificationsWorkflow", Polling(every_seconds=0.05, cycles=2), id=wid,
        task_queue=h.task_queue,
    )  # fmt: skip
    try:
        for _ in range(400):
            if await runs_of(h, wid) >= 3:
                break
            await asyncio.sleep(0.05)
        assert await runs_of(h, wid) >= 3
        desc = await h.temporal.get_workflow_handle(wid).describe()
        assert desc.status == WorkflowExecutionStatus.RUNNING
        history = await h.temporal.get_workflow_handle(wid).fetch_history()
        assert len(history.events) < 60
        for _ in range(200):
            metadata = await h.temporal.get_workflow_handle(wid).query(
                "__temporal_workflow_metadata", result_type=WorkflowMetadata
            )
            if metadata.current_details:
                break
            await asyncio.sleep(0.05)
        assert metadata.current_details.startswith("**every 0.05 s** (run ")
        assert "0 delivered, 0 failed" in metadata.current_details
    finally:
        await h.temporal.get_workflow_handle(wid).terminate("test over")
