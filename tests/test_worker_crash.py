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

from payouts import search
from payouts.client import PayoutsClient
from payouts.models import Stage
from payouts.money import parse_micros
from payouts.settings import Settings
from worker import Stack

REPO = Path(__file__).resolve().parents[1]


def start_worker(
    env: WorkflowEnvironment, data_dir: Path, task_queue: str, **settings: str
) -> subprocess.Popen[bytes]:
    environ = dict(os.environ)
    environ.update(
        {
            "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
            "PAYOUTS_DATA_DIR": str(data_dir),
            "PAYOUTS_TASK_QUEUE": task_queue,
            "PAYOUTS_SANDBOX_BANK_SETTLE_SECONDS": "1",
            **{f"PAYOUTS_{k.upper()}": v for k, v in settings.items()},
        }
    )
    log = (data_dir / f"worker-{uuid.uuid4().hex[:6]}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "worker"], cwd=REPO, env=environ, stdout=log, stderr=log
    )


async def until(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def test_worker_killed_mid_disbursement_finishes_once(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """SIGKILL after the rail applied the payout but before the worker heard back; a new
    worker process retries the step, finds the payout at the rail, and books it once."""
    task_queue = f"crash-{uuid.uuid4().hex[:8]}"
    stack = Stack(Settings(data_dir=tmp_path, task_queue=task_queue))  # files only, no worker
    stack.ledger.credit_earning(
        event_id="e1",
        user_id="kai",
        currency="USD",
        amount=parse_micros("50"),
        earned_at=datetime.now(UTC) - timedelta(days=10),
    )
    client = PayoutsClient(temporal_env.client, policy=stack.policy, task_queue=task_queue)
    first = start_worker(temporal_env, tmp_path, task_queue, sandbox_latency_ms="8000")
    second = None
    try:
        ticket = await client.request_cashout(
            request_id=uuid.uuid4().hex[:12],
            user_id="kai",
            amount=parse_micros("20"),
            currency="USD",
            method="wallet",
            destination="kai@example.com",
        )
        rid = ticket.request_id

        async def applied_at_rail() -> bool:
            return stack.rails.payouts_for(rid) == 1

        await until(applied_at_rail)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        desc = await temporal_env.client.get_workflow_handle(ticket.workflow_id).describe()
        assert desc.typed_search_attributes.get(search.STAGE) == "DISBURSING"

        second = start_worker(temporal_env, tmp_path, task_queue)
        result = await asyncio.wait_for(client.result(rid), 60)
        assert result.stage is Stage.PAID
        assert stack.rails.payouts_for(rid) == 1
        assert any("resolved by asking the rail" in e.note for e in result.status.timeline)
        totals = stack.ledger.totals("USD")
        assert (totals.paid_out, totals.held) == (result.status.net, 0)
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
