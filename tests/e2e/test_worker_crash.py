"""A worker SIGKILLed in the middle of a disbursement: the next worker finishes it, once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from payouts.config.settings import Settings
from payouts.devstack.embedded import embedded_stack, platform_client
from payouts.devstack.stack import resolve_ports, sidecars
from payouts.domain.cashout import Stage
from payouts.domain.money import parse_micros
from payouts.temporal import search
from tests.support.databases import test_server_payload_key

REPO = Path(__file__).resolve().parents[1]


def start_worker(env: WorkflowEnvironment, settings: Settings) -> subprocess.Popen[bytes]:
    environ = dict(os.environ)
    environ.update(
        {
            "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
            "PAYOUTS_DATA_DIR": str(settings.data_dir),
            "PAYOUTS_TASK_QUEUE": settings.task_queue,
            "PAYOUTS_WALLET_API_URL": str(settings.wallet_api_url),
            "PAYOUTS_WALLET_TIMEOUT_SECONDS": str(settings.wallet_timeout_seconds),
        }
    )
    log = (settings.data_dir / f"worker-{uuid.uuid4().hex[:6]}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "worker"], cwd=REPO, env=environ, stdout=log, stderr=log
    )


async def until(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def test_worker_killed_mid_disbursement_finishes_once(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """SIGKILL after the wallet provider applied the payout but before the worker heard
    back; a new worker process retries the step, finds the payout by its idempotency key,
    and the cash-out is paid and booked once."""
    settings = resolve_ports(
        Settings(
            data_dir=tmp_path,
            task_queue=f"crash-{uuid.uuid4().hex[:8]}",
            wallet_port=0,
            webhook_port=0,
            platform_port=0,
            sandbox_timeout_rate=1.0,
            wallet_timeout_seconds=30,
            sandbox_wallet_complete_seconds=0.05,
        )
    )
    target = temporal_env.client.service_client.config.target_host
    stack = embedded_stack(
        settings, target, payload_key=test_server_payload_key()
    )  # the files and sidecars; workers are processes
    stack.ledger.credit_earning(
        event_id="e1",
        user_id="kai",
        currency="USD",
        amount=parse_micros("50"),
        earned_at=datetime.now(UTC) - timedelta(days=10),
    )
    client = platform_client(stack, temporal_env.client)
    first = second = None
    try:
        async with sidecars(settings, stack, temporal_env.client) as cars:
            assert cars.wallet is not None
            first = start_worker(temporal_env, settings)
            ticket = await client.request_cashout(
                request_id=uuid.uuid4().hex[:12],
                user_id="kai",
                amount=parse_micros("20"),
                currency="USD",
                method="wallet",
                destination="kai@example.com",
            )
            wallet = cars.wallet
            await until(lambda: wallet.payouts_for(ticket.workflow_id) == 1)
            first.send_signal(signal.SIGKILL)  # the provider is still "answering" (timeout)
            first.wait(10)
            desc = await temporal_env.client.get_workflow_handle(ticket.workflow_id).describe()
            assert desc.typed_search_attributes.get(search.STAGE) == "DISBURSING"

            second = start_worker(temporal_env, settings)
            status = await asyncio.wait_for(client.wait(ticket.request_id), 60)
            assert status.stage is Stage.PAID
            assert wallet.payouts_for(ticket.workflow_id) == 1
            assert wallet.calls_for(f"{ticket.workflow_id}:disburse") == 1
            assert any("resolved by asking the provider" in e.note for e in status.timeline)
            totals = stack.ledger.totals("USD")
            assert (totals.paid_out, totals.held) == (status.net, 0)
            assert stack.ledger.audit() == []
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
        stack.close()
