"""Cash-out benchmark: auto-approved cash-outs against floors on the same embedded server.

- floor: a bare workflow running as many no-op activities, one after another, as the
  pipeline has steps (reserve, identity, fraud, disburse, settlement, post, notify);
- server limit: a bare workflow with no activities at all;
- ours: `CashoutWorkflow` end to end (wallet, auto-approved, SQLite ledger, sandbox rail).

Each is measured serially (one at a time: p50/p99 latency; the workloads take turns, so a
drift of the machine moves floor and ours alike) and under load (many in flight:
completions per second, one workload after another), on a dev server started with the same flags as
`payouts up` and a file-backed state: first with one worker in this process, then the floor
and the gift card path again with two worker processes (`python -m worker`, as deployed)
sharing the task queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker

from bench.common import percentile, table
from bench.floor import FloorWorkflow, noop
from payouts.config.settings import DEV_SECRET, Settings
from payouts.devstack.devserver import DevServer
from payouts.devstack.embedded import embedded_stack, platform_client
from payouts.devstack.stack import resolve_ports, sidecars
from payouts.domain.cashout import Stage
from payouts.ledger import EarningRow
from payouts.security.deployment import derived_payload_key
from payouts.store.tables import to_epoch_us
from payouts.temporal.codec import converter_for
from payouts.temporal.connection import wait_until_ready
from payouts.web import free_port

PIPELINE_STEPS = 7
REPO = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def processes(argv: list[str], env: dict[str, str], n: int, log: Path) -> Iterator[None]:
    """`n` worker processes for the length of the block, stopped with SIGTERM after."""
    with log.open("ab") as out:
        procs = [
            subprocess.Popen(argv, cwd=REPO, env={**os.environ, **env}, stdout=out, stderr=out)
            for _ in range(n)
        ]
        try:
            yield
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()


async def _serial(
    runs: dict[str, Callable[[int], Awaitable[None]]], n: int
) -> dict[str, list[float]]:
    """Each workload `n` times, one at a time, taking turns (floor, ours, floor, ...), so
    that a machine that slows down or speeds up during the run moves every column alike."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for i in range(n):
        for name, run_one in runs.items():
            start = time.perf_counter()
            await run_one(i)
            times[name].append(time.perf_counter() - start)
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
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        server = DevServer(port=port, ui_port=None, db_file=data / "temporal.sqlite3")
        server.start()
        try:
            client = await wait_until_ready(converter_for(Settings()), target_host=server.address)
            return await _measure(client, data, serial, load, in_flight)
        finally:
            server.stop()


async def _measure(client: Client, data: Path, serial: int, load: int, in_flight: int) -> str:
    rows: list[tuple[str, ...]] = []
    floor_q, bare_q = f"floor-{uuid.uuid4().hex[:6]}", f"bare-{uuid.uuid4().hex[:6]}"
    results: dict[str, tuple[list[float], float]] = {}

    address = client.service_client.config.target_host

    async def measure(runs: dict[str, Callable[[int], Awaitable[None]]]) -> None:
        await _serial(runs, 5)  # warm up (and, with worker processes, wait for them)
        latencies = await _serial(runs, serial)
        for name, one in runs.items():
            results[name] = (latencies[name], await _load(one, load, in_flight))

    def floor_run(steps: int, queue: str) -> Callable[[int], Awaitable[None]]:
        async def one(i: int) -> None:
            await client.execute_workflow(
                FloorWorkflow.run, steps, id=f"{queue}-{uuid.uuid4()}", task_queue=queue
            )

        return one

    def floor_worker(queue: str) -> Worker:
        return Worker(client, task_queue=queue, workflows=[FloorWorkflow], activities=[noop])

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
    # the benchmark's client and floor workers encrypt with the default secret's key
    stack = embedded_stack(settings, address, payload_key=derived_payload_key(DEV_SECRET))
    users = 3 * (serial + load + 5)  # a fresh payee per cash-out: gift card, wallet, x2
    earned = to_epoch_us(datetime.now(UTC) - timedelta(days=10))
    stack.ledger.credit_earnings(
        [
            EarningRow(f"b-{u}-{i}", f"bench-{u}", "USD", 250_000, earned)
            for u in range(users)
            for i in range(100)
        ]
    )
    payouts = platform_client(stack, client)
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

    async with sidecars(settings, stack, client):
        async with floor_worker(floor_q), floor_worker(bare_q), stack.worker(client):
            await measure(
                {
                    "floor": floor_run(PIPELINE_STEPS, floor_q),
                    "bare": floor_run(0, bare_q),
                    "gift_card": cashout("gift_card"),
                    "wallet": cashout("wallet"),
                }
            )
        floor2_q = f"floor2-{uuid.uuid4().hex[:6]}"
        env = {
            "TEMPORAL_ADDRESS": address,
            "PAYOUTS_DATA_DIR": str(data),
            "PAYOUTS_TASK_QUEUE": settings.task_queue,
            "PAYOUTS_WALLET_API_URL": str(settings.wallet_api_url),
            "PAYOUTS_PLATFORM_WEBHOOK_URL": str(settings.platform_webhook_url),
            "PAYOUTS_METRICS_PORT": "0",
        }
        with (
            processes(
                [sys.executable, "-m", "bench.floor_worker", floor2_q],
                {"TEMPORAL_ADDRESS": address},
                2,
                data / "workers.log",
            ),
            processes([sys.executable, "-m", "worker"], env, 2, data / "workers.log"),
        ):
            await measure(
                {
                    "floor x2": floor_run(PIPELINE_STEPS, floor2_q),
                    "gift_card x2": cashout("gift_card"),
                }
            )
    assert stack.ledger.audit() == [], "the benchmark broke the books"
    stack.close()

    _, bare_rate = results["bare"]
    for name, label in (
        ("floor", f"floor: {PIPELINE_STEPS} no-op activities, 1 worker"),
        ("bare", "server limit: no activities, 1 worker"),
        ("gift_card", "CashoutWorkflow: gift card (rail answers at once), 1 worker"),
        ("wallet", "CashoutWorkflow: wallet (paid on the HTTP webhook), 1 worker"),
        ("floor x2", f"floor: {PIPELINE_STEPS} no-op activities, 2 worker processes"),
        ("gift_card x2", "CashoutWorkflow: gift card, 2 worker processes"),
    ):
        lat, rate = results[name]
        p50, p99 = percentile(lat, 50) * 1000, percentile(lat, 99) * 1000
        rows.append((label, f"{p50:.1f}", f"{p99:.1f}", f"{rate:.1f}"))
    lines = []
    for name, floor in (("gift_card", "floor"), ("wallet", "floor"), ("gift_card x2", "floor x2")):
        ours_lat, ours_rate = results[name]
        floor_lat, floor_rate = results[floor]
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
