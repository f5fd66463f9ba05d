"""Cash-out benchmark: auto-approved cash-outs against floors on the same embedded server.

- floor: a bare workflow running as many no-op activities, one after another, as the
  pipeline has steps (reserve, identity, fraud, disburse, settlement, post, notify);
- server limit: a bare workflow with no activities at all;
- ours: `CashoutWorkflow` end to end (wallet, auto-approved, SQLite ledger, sandbox rail).

Each is measured serially (one at a time: p50/p99 latency) and under load (many in
flight: completions per second), on a dev server started with the same flags as
`payouts up` and a file-backed state, with one worker in this process.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker

from bench.common import percentile, table
from bench.floor import FloorWorkflow, noop
from payouts.client import PayoutsClient, wait_until_ready
from payouts.devserver import DevServer, free_port
from payouts.ledger import EarningRow
from payouts.models import Stage
from payouts.settings import Settings
from payouts.stack import resolve_ports, sidecars
from payouts.tables import to_epoch_us

PIPELINE_STEPS = 7


async def _serial(run_one: Callable[[int], Awaitable[None]], n: int) -> list[float]:
    times = []
    for i in range(n):
        start = time.perf_counter()
        await run_one(i)
        times.append(time.perf_counter() - start)
    return times


async def _load(run_one: Callable[[int], Awaitable[None]], n: int, in_flight: int) -> float:
    gate = asyncio.Semaphore(in_flight)

    async def one(i: int) -> None:
        async with gate:
            await run_one(i)

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return n / (time.perf_counter() - start)


async def run_bench(serial: int = 60, load: int = 400, in_flight: int = 40) -> str:
    from worker import Stack  # the composition root

    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        server = DevServer(port=port, ui_port=None, db_file=data / "temporal.sqlite3")
        server.start()
        try:
            client = await wait_until_ready(Settings().data_converter(), target_host=server.address)
            return await _measure(client, Stack, data, serial, load, in_flight)
        finally:
            server.stop()


async def _measure(
    client: Client, stack_cls: type, data: Path, serial: int, load: int, in_flight: int
) -> str:
    rows: list[tuple[str, ...]] = []
    floor_q, bare_q = f"floor-{uuid.uuid4().hex[:6]}", f"bare-{uuid.uuid4().hex[:6]}"
    results: dict[str, tuple[list[float], float]] = {}

    async def bench_floor(steps: int, queue: str) -> tuple[list[float], float]:
        async def one(i: int) -> None:
            await client.execute_workflow(
                FloorWorkflow.run, steps, id=f"{queue}-{uuid.uuid4()}", task_queue=queue
            )

        async with Worker(client, task_queue=queue, workflows=[FloorWorkflow], activities=[noop]):
            await _serial(one, 5)  # warm up
            lat = await _serial(one, serial)
            rate = await _load(one, load, in_flight)
        return lat, rate

    results["floor"] = await bench_floor(PIPELINE_STEPS, floor_q)
    results["bare"] = await bench_floor(0, bare_q)

    settings = resolve_ports(
        Settings(
            data_dir=data,
            task_queue=f"cash-{uuid.uuid4().hex[:6]}",
            wallet_port=0,
            webhook_port=0,
            platform_port=0,
            sandbox_wallet_complete_seconds=0.0,
        )
    )
    stack = stack_cls(settings)
    users = 2 * (serial + load + 10)
    earned = to_epoch_us(datetime.now(UTC) - timedelta(days=10))
    stack.ledger.credit_earnings(
        [
            EarningRow(f"b-{u}-{i}", f"bench-{u}", "USD", 250_000, earned)
            for u in range(users)
            for i in range(100)
        ]
    )
    payouts = PayoutsClient(client, policy=stack.policy, task_queue=settings.task_queue)
    counter = iter(range(users))

    def cashout(method: str) -> Callable[[int], Awaitable[None]]:
        async def one(_: int) -> None:
            u = next(counter)
            ticket = await payouts.request_cashout(
                request_id=f"bench-{uuid.uuid4().hex[:12]}",
                user_id=f"bench-{u}",
                amount=10_000_000,
                currency="USD",
                method=method,
                destination=f"bench-{u}@example.com",
            )
            result = await payouts.result(ticket.request_id)
            assert result.stage is Stage.PAID, result.status.outcome

        return one

    async with sidecars(settings, stack, client), stack.worker(client):
        for method in ("gift_card", "wallet"):
            for _ in range(5):
                await cashout(method)(0)
            lat = await _serial(cashout(method), serial)
            rate = await _load(cashout(method), load, in_flight)
            results[method] = (lat, rate)
    assert stack.ledger.audit() == [], "the benchmark broke the books"
    stack.close()

    floor_lat, floor_rate = results["floor"]
    _, bare_rate = results["bare"]
    for name, label in (
        ("floor", f"floor: {PIPELINE_STEPS} no-op activities"),
        ("bare", "server limit: no activities"),
        ("gift_card", "CashoutWorkflow: gift card (rail answers at once)"),
        ("wallet", "CashoutWorkflow: wallet (paid on the HTTP webhook)"),
    ):
        lat, rate = results[name]
        p50, p99 = percentile(lat, 50) * 1000, percentile(lat, 99) * 1000
        rows.append((label, f"{p50:.1f}", f"{p99:.1f}", f"{rate:.1f}"))
    lines = []
    for name in ("gift_card", "wallet"):
        ours_lat, ours_rate = results[name]
        lines.append(
            f"{name}: ours/floor throughput {ours_rate / floor_rate:.2f}x (target >= 1.0), "
            f"serial p50 {percentile(ours_lat, 50) / percentile(floor_lat, 50):.2f}x "
            f"(target <= 0.5); ours/server limit throughput {ours_rate / bare_rate:.2f}x "
            "(aim >= 0.5)"
        )
    return (
        table(
            f"Cash-outs on the embedded dev server ({serial} serial, {load} under load with "
            f"{in_flight} in flight, auto-approved)",
            ("workload", "serial p50 ms", "serial p99 ms", "completed/s under load"),
            rows,
        )
        + "\n"
        + "\n".join(lines)
    )


def run(serial: int = 60, load: int = 400, in_flight: int = 40) -> str:
    return asyncio.run(run_bench(serial, load, in_flight))
