"""The worker's composition root: settings -> database, ledger, providers -> Temporal worker.

`python worker.py` runs one worker against the Temporal server from Temporal's standard
environment configuration (default localhost:7233) and the ledger from PAYOUTS_* settings.
Run more of them on the same task queue to share the load.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.cashout import CashoutActivities
from payouts.client import connect
from payouts.db import Database
from payouts.ledger import Ledger
from payouts.policy import Policy
from payouts.providers.identity import SandboxIdentity
from payouts.providers.rails import Faults, SandboxRails
from payouts.providers.sandbox_db import SandboxDB
from payouts.settings import Settings
from workflows.cashout import CashoutWorkflow

PASSTHROUGH = ("payouts", "activities", "pydantic", "pydantic_core", "annotated_types", "schwifty")


class Stack:
    """Everything a worker needs, built once from settings."""

    def __init__(self, settings: Settings, policy: Policy | None = None) -> None:
        self.settings = settings
        self.policy = policy or settings.load_policy()
        self.db = Database(settings.ledger_url)
        self.db.ensure_schema()
        self.ledger = Ledger(self.db, hold_hours=self.policy.maturation.hold_hours)
        self.sandbox = SandboxDB(settings.sandbox_path)
        self.identity = SandboxIdentity(
            self.sandbox, default_pending_seconds=settings.sandbox_identity_pending_seconds
        )
        self.rails = SandboxRails(
            self.sandbox,
            faults=Faults(
                seed=settings.sandbox_seed,
                transient_rate=settings.sandbox_transient_rate,
                timeout_rate=settings.sandbox_timeout_rate,
                latency_ms=settings.sandbox_latency_ms,
            ),
            bank_settle_seconds=settings.sandbox_bank_settle_seconds,
        )
        self.activities = CashoutActivities(
            ledger=self.ledger,
            identity=self.identity,
            rail=self.rails,
            fingerprint_key=settings.secret_key.encode(),
        )
        self.executor = ThreadPoolExecutor(
            max_workers=settings.worker_threads, thread_name_prefix="activity"
        )

    def worker(self, client: Client, *, task_queue: str | None = None) -> Worker:
        return Worker(
            client,
            task_queue=task_queue or self.settings.task_queue,
            workflows=[CashoutWorkflow],
            activities=self.activities.all(),
            activity_executor=self.executor,
            max_concurrent_activities=self.settings.worker_threads,
            max_concurrent_local_activities=self.settings.worker_threads,
            workflow_runner=SandboxedWorkflowRunner(
                restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
            ),
        )

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.db.dispose()


async def run_worker(settings: Settings) -> None:
    stack = Stack(settings)
    client = await connect()
    worker = stack.worker(client)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(
        f"worker polling task queue {settings.task_queue!r} at "
        f"{client.service_client.config.target_host}",
        flush=True,
    )
    async with worker:
        await stop.wait()
    stack.close()


def main() -> None:
    asyncio.run(run_worker(Settings()))
    sys.stdout.flush()
    os._exit(0)  # see the exit-crash note in docs/design.md


if __name__ == "__main__":
    main()
