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

from payouts.app.stack import Stack
from payouts.config.settings import Settings
from payouts.devstack.embedded import embedded_stack, platform_client
from payouts.devstack.stack import Sidecars, resolve_ports, sidecars
from payouts.domain.cashout import CashoutResult, CashoutStatus, Stage
from payouts.domain.fees import Speed
from payouts.domain.money import parse_micros
from payouts.ledger import EarningRow
from payouts.rails.platform.sandbox import PlatformSandbox
from payouts.rails.wallet.sandbox import WalletSandbox
from payouts.store.tables import to_epoch_us
from payouts.temporal.starting import Ticket
from tests.support.databases import test_server_payload_key


class Harness:
    def __init__(
        self, env: WorkflowEnvironment, stack: Stack, task_queue: str, cars: Sidecars
    ) -> None:
        self.env = env
        self.stack = stack
        self.task_queue = task_queue
        self.cars = cars
        self.client = platform_client(stack, env.client, task_queue)

    @classmethod
    @asynccontextmanager
    async def running(
        cls, env: WorkflowEnvironment, data_dir: Path, **overrides: Any
    ) -> AsyncIterator[Harness]:
        """A worker on its own task queue, with the wallet sandbox, our webhook ingress and
        the platform sandbox on free ports; the bank answers within a second."""
        task_queue = f"tq-{uuid.uuid4().hex[:10]}"
        for key, value in (
            ("sandbox_bank_settle_seconds", 1),
            ("sandbox_bank_ack_seconds", 0),
            ("wallet_port", 0),
            ("webhook_port", 0),
            ("platform_port", 0),
            ("sandbox_wallet_complete_seconds", 0.05),
            ("wallet_timeout_seconds", 2.0),
        ):
            overrides.setdefault(key, value)
        settings = resolve_ports(Settings(data_dir=data_dir, task_queue=task_queue, **overrides))
        stack = embedded_stack(
            settings,
            env.client.service_client.config.target_host,
            payload_key=test_server_payload_key(),
        )
        try:
            async with sidecars(settings, stack, env.client) as cars, stack.worker(env.client):
                yield cls(env, stack, task_queue, cars)
        finally:
            stack.close()

    @property
    def wallet(self) -> WalletSandbox:
        assert self.cars.wallet is not None
        return self.cars.wallet

    @property
    def platform(self) -> PlatformSandbox:
        assert self.cars.platform is not None
        return self.cars.platform

    async def run_workflow(
        self, name: str, arg: Any = None, result_type: type | None = None
    ) -> Any:
        """Run one of the scheduled workflows now (as its schedule would).

        The result is read through a plain handle: on the time-skipping server, waiting on the
        handle that `start_workflow` returns would let the clock run ahead meanwhile."""
        args = [] if arg is None else [arg]
        started = await self.temporal.start_workflow(
            name, args=args, id=f"{name}-{uuid.uuid4().hex[:8]}", task_queue=self.task_queue
        )
        handle = self.temporal.get_workflow_handle(started.id, result_type=result_type)
        return await handle.result()

    async def bank_cycle(self, *, settle: bool = True) -> None:
        """Cut the batches, then (after the sandbox bank's short delay) read its reports."""
        await self.run_workflow("BankBatchWorkflow")
        if settle:
            await asyncio.sleep(1.1)
            await self.run_workflow("BankReportsWorkflow")

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
        speed: Speed = "standard",
    ) -> Ticket:
        """Start a cash-out as the platform would. A bank payee the test has not registered
        with the identity sandbox is a verified person named as the account holder (a
        holder that cannot be compared would go to review)."""
        if holder is not None and not self.stack.identity.known(user):
            self.stack.identity.register(user, "verified", legal_name=holder)
        return await self.client.request_cashout(
            request_id=request_id or uuid.uuid4().hex[:16],
            user_id=user,
            amount=parse_micros(amount),
            currency=currency,
            method=method,
            destination=destination,
            holder=holder,
            speed=speed,
            requested_at=await self.env.get_current_time(),
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
                raise TimeoutError(
                    f"{request_id} stuck in {status.stage}: {status.timeline[-1]}; "
                    f"risk {status.risk_score}: {status.risk_reasons}"
                )
            await asyncio.sleep(0.05)

    async def wait_stage(self, request_id: str, stage: Stage, timeout: float = 30) -> CashoutStatus:
        return await self.wait_for(request_id, lambda s: s.stage is stage, timeout)

    def balance(self, user: str, currency: str = "USD") -> tuple[int, int]:
        b = self.stack.ledger.balance(user, currency)
        return b.available, b.held
