"""A running worker with its own ledger, sandbox and task queue, and helpers to drive it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from payouts.client import PayoutsClient, Ticket
from payouts.ledger import EarningRow
from payouts.models import CashoutResult, CashoutStatus, Stage
from payouts.money import parse_micros
from payouts.settings import Settings
from payouts.tables import to_epoch_us
from worker import Stack


class Harness:
    def __init__(self, env: WorkflowEnvironment, stack: Stack, task_queue: str) -> None:
        self.env = env
        self.stack = stack
        self.task_queue = task_queue
        self.client = PayoutsClient(env.client, policy=stack.policy, task_queue=task_queue)

    @classmethod
    @asynccontextmanager
    async def running(
        cls, env: WorkflowEnvironment, data_dir: Path, **overrides: Any
    ) -> AsyncIterator[Harness]:
        task_queue = f"tq-{uuid.uuid4().hex[:10]}"
        overrides.setdefault("sandbox_bank_settle_seconds", 1)
        settings = Settings(data_dir=data_dir, task_queue=task_queue, **overrides)
        stack = Stack(settings)
        try:
            async with stack.worker(env.client):
                yield cls(env, stack, task_queue)
        finally:
            stack.close()

    @property
    def temporal(self) -> Client:
        return self.env.client

    def fund(self, user: str, amount: str, currency: str = "USD", *, days_ago: int = 10) -> None:
        """Credit a matured earning (earned `days_ago`, past the 72-hour hold)."""
        earned = datetime.now(UTC) - timedelta(days=days_ago)
        self.stack.ledger.credit_earnings(
            [
                EarningRow(
                    f"fund-{uuid.uuid4().hex}",
                    user,
                    currency,
                    parse_micros(amount),
                    to_epoch_us(earned),
                )
            ]
        )

    async def cashout(
        self,
        user: str,
        amount: str,
        method: str,
        destination: str,
        *,
        currency: str = "USD",
        holder: str | None = None,
        request_id: str | None = None,
    ) -> Ticket:
        return await self.client.request_cashout(
            request_id=request_id or uuid.uuid4().hex[:16],
            user_id=user,
            amount=parse_micros(amount),
            currency=currency,
            method=method,
            destination=destination,
            holder=holder,
        )

    async def result(self, request_id: str, timeout: float = 30) -> CashoutResult:
        return await asyncio.wait_for(self.client.result(request_id), timeout)

    async def wait_for(self, request_id: str, predicate: Any, timeout: float = 30) -> CashoutStatus:
        """Poll the status query until `predicate(status)` holds."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            status = await self.client.status(request_id)
            if predicate(status):
                return status
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{request_id} stuck in {status.stage}: {status.timeline[-1]}")
            await asyncio.sleep(0.05)

    async def wait_stage(self, request_id: str, stage: Stage, timeout: float = 30) -> CashoutStatus:
        return await self.wait_for(request_id, lambda s: s.stage is stage, timeout)

    def balance(self, user: str, currency: str = "USD") -> tuple[int, int]:
        b = self.stack.ledger.balance(user, currency)
        return b.available, b.held
