"""The Temporal worker every process runs: which workflows, the sandbox's pass-through
modules, and the SDK's single-batch activations (docs/design.md)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker._workflow_instance import _WorkflowLogicFlag
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from workflows.bank import BankBatchWorkflow, BankReportsWorkflow
from workflows.cashout import CashoutWorkflow
from workflows.ops import NotificationsWorkflow, ReconcileWorkflow
from workflows.payees import (
    AutoCashoutSweepWorkflow,
    EarningReversalWorkflow,
    PayeeProfileWorkflow,
    PayeeStatementWorkflow,
)

WORKFLOWS = [
    CashoutWorkflow,
    BankBatchWorkflow,
    BankReportsWorkflow,
    NotificationsWorkflow,
    ReconcileWorkflow,
    PayeeProfileWorkflow,
    AutoCashoutSweepWorkflow,
    EarningReversalWorkflow,
    PayeeStatementWorkflow,
]
PASSTHROUGH = (
    "payouts",
    "activities",
    "pydantic",
    "pydantic_core",
    "annotated_types",
    "schwifty",
    "anyascii",
    "cryptography",
)


def single_batch_activations(worker: Worker) -> None:
    """Apply every job of an activation before any workflow code runs (the SDK's fix for
    signals racing other events, sdk-python #673; recorded per workflow in its history, so
    older histories replay as before). Not yet the SDK's default in 1.35.0, and only
    reachable through a private method: temporalio is pinned, and
    `tests/test_replay.py::test_new_cash_outs_record_single_batch_activations` fails if an
    upgrade drops it. With it, a signal that arrives in the same workflow task as an
    activity result is decided after the workflow has seen that result, however the
    worker's SDK core splits the task (see `CashoutWorkflow._decider`)."""
    worker._set_default_workflow_logic_flag(
        _WorkflowLogicFlag.PROCESS_WORKFLOW_ACTIVATION_JOBS_AS_SINGLE_BATCH, enabled=True
    )


def sandbox() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
    )


def new_worker(
    client: Client,
    *,
    task_queue: str,
    activities: Sequence[Callable[..., Any]],
    executor: Executor,
    threads: int,
) -> Worker:
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=activities,
        activity_executor=executor,
        max_concurrent_activities=threads,
        max_concurrent_local_activities=threads,
        workflow_runner=sandbox(),
    )
    single_batch_activations(worker)
    return worker
