"""The composition root of a worker: settings -> database, ledger, rails -> Temporal worker.

Every process that runs a worker builds it here (`python worker.py`, `payouts worker`,
`payouts up`, the tests): one place decides which adapter serves each port.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker._workflow_instance import _WorkflowLogicFlag
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.bank import BankActivities
from activities.cashout import CashoutActivities
from activities.ops import OpsActivities
from payouts.config.settings import Settings
from payouts.domain.policy import Policy
from payouts.ledger import Ledger
from payouts.rails.bank.iso20022 import Party
from payouts.rails.bank.sandbox import BankTiming, SandboxBank
from payouts.rails.giftcards.sandbox import SandboxGiftCards
from payouts.rails.identity.sandbox import SandboxIdentity
from payouts.rails.platform.port import WebhookEndpoint
from payouts.rails.sandbox_db import SandboxDB
from payouts.rails.wallet.client import WalletClient
from payouts.security.vault import vault_for
from payouts.store.database import Database
from payouts.temporal import telemetry
from payouts.temporal.codec import converter_for
from payouts.temporal.connection import connect
from workflows.bank import BankBatchWorkflow, BankReportsWorkflow
from workflows.cashout import CashoutWorkflow
from workflows.ops import NotificationsWorkflow, ReconcileWorkflow

WORKFLOWS = [
    CashoutWorkflow,
    BankBatchWorkflow,
    BankReportsWorkflow,
    NotificationsWorkflow,
    ReconcileWorkflow,
]
PASSTHROUGH = (
    "payouts",
    "activities",
    "pydantic",
    "pydantic_core",
    "annotated_types",
    "schwifty",
    "anyascii",
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
        self.wallet = WalletClient(
            settings.wallet_api_url or f"http://127.0.0.1:{settings.wallet_port}",
            settings.wallet_api_key,
            timeout=settings.wallet_timeout_seconds,
        )
        self.gift_cards = SandboxGiftCards(
            self.sandbox, seed=settings.sandbox_seed, transient_rate=settings.sandbox_transient_rate
        )
        self.bank = SandboxBank(
            self.sandbox,
            account=self.debtor,
            timing=BankTiming(
                ack_seconds=settings.sandbox_bank_ack_seconds,
                book_seconds=settings.sandbox_bank_settle_seconds,
                return_seconds=settings.sandbox_bank_return_seconds,
            ),
            seed=settings.sandbox_seed,
            reject_rate=settings.sandbox_bank_reject_rate,
            return_rate=settings.sandbox_bank_return_rate,
        )
        self.vault = vault_for(settings)
        self.activities = CashoutActivities(
            ledger=self.ledger,
            identity=self.identity,
            wallet=self.wallet,
            gift_cards=self.gift_cards,
            vault=self.vault,
            fingerprint_key=settings.secret_key.encode(),
        )
        self.bank_activities = BankActivities(
            ledger=self.ledger,
            policy=self.policy,
            bank=self.bank,
            files_dir=settings.bank_dir,
            debtor=self.debtor,
        )
        url = settings.platform_webhook_url
        self.platform = WebhookEndpoint(url, settings.platform_webhook_secret) if url else None
        self.ops_activities = OpsActivities(
            db=self.db,
            platform=self.platform,
            wallet=self.wallet,
            gift_cards=self.gift_cards,
            bank=self.bank,
            bank_outbound=settings.bank_dir / "outbound",
            reports_dir=settings.reports_dir,
            held_too_long_hours=settings.held_too_long_hours,
        )
        self.executor = ThreadPoolExecutor(
            max_workers=settings.worker_threads, thread_name_prefix="activity"
        )

    @property
    def debtor(self) -> Party:
        s = self.settings
        return Party(s.bank_debtor_name, s.bank_debtor_iban, s.bank_debtor_bic)

    def worker(self, client: Client, *, task_queue: str | None = None) -> Worker:
        worker = Worker(
            client,
            task_queue=task_queue or self.settings.task_queue,
            workflows=WORKFLOWS,
            activities=[
                *self.activities.all(),
                *self.bank_activities.all(),
                *self.ops_activities.all(),
            ],
            activity_executor=self.executor,
            max_concurrent_activities=self.settings.worker_threads,
            max_concurrent_local_activities=self.settings.worker_threads,
            workflow_runner=SandboxedWorkflowRunner(
                restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
            ),
        )
        single_batch_activations(worker)
        return worker

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.db.dispose()


async def run_worker(settings: Settings) -> None:
    stack = Stack(settings)
    client = await connect(
        converter_for(settings),
        runtime=telemetry.runtime(settings.metrics_port, settings.metrics_host),
    )
    worker = stack.worker(client)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    metrics = (
        f"; metrics at http://{settings.metrics_host}:{settings.metrics_port}/metrics"
        if settings.metrics_port
        else ""
    )
    print(
        f"worker polling task queue {settings.task_queue!r} at "
        f"{client.service_client.config.target_host}{metrics}",
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
