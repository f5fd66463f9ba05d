"""Chaos: many cash-outs over every method while workers are SIGKILLed and restarted, the
Temporal server is killed and restarted on its persistent file, and every rail fault is on.

    python -m tests.chaos [--cashouts 200] [--workers 2] [--server-restarts 2] [--seed 7]

(`make chaos`; a short run is part of `make test`.) Afterwards every cash-out must have
reached a terminal stage, no payee may have been paid twice (counted at the rails), no hold
may be left reserved, the ledger must conserve every micro-unit and reconcile cleanly. It
prints one table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from temporalio.client import Client
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.service import RPCError

from payouts.config.settings import Settings
from payouts.devstack.demo import sandbox_iban
from payouts.devstack.devserver import DevServer
from payouts.devstack.embedded import embedded_stack, platform_client
from payouts.devstack.stack import Sidecars, resolve_ports, sidecars
from payouts.domain.cashout import TERMINAL, CashoutStatus, Stage
from payouts.errors import PayoutError
from payouts.ledger import EarningRow
from payouts.store.tables import to_epoch_us
from payouts.temporal import contract, search
from payouts.temporal.client import PayoutsClient
from payouts.temporal.codec import converter_for
from payouts.temporal.connection import connect
from payouts.web import free_port

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[1]

FAULTS = {
    "sandbox_transient_rate": 0.15,  # wallet 503s, gift card provider refusals
    "sandbox_throttle_rate": 0.10,  # wallet 429s
    "sandbox_timeout_rate": 0.10,  # wallet answers after the client gave up (applied)
    "sandbox_webhook_duplicate_rate": 0.30,
    "sandbox_webhook_reorder_rate": 0.30,
    "sandbox_bank_reject_rate": 0.10,
    "sandbox_bank_return_rate": 0.10,
}
TIMING = {
    "wallet_timeout_seconds": 2.0,
    "sandbox_wallet_complete_seconds": 0.2,
    "sandbox_bank_ack_seconds": 1,
    "sandbox_bank_settle_seconds": 2,
    "sandbox_bank_return_seconds": 4,
}


@dataclass
class Report:
    faults: Counter[str] = field(default_factory=Counter)
    stages: Counter[str] = field(default_factory=Counter)
    cashouts: int = 0
    double_paid: int = 0
    lost: int = 0
    dangling_holds: int = 0
    mismatches: list[str] = field(default_factory=list)
    conserved: bool = False
    workers_seen: Counter[str] = field(default_factory=Counter)  # cash-outs per worker
    lost_details: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return (
            self.double_paid == 0
            and self.lost == 0
            and self.dangling_holds == 0
            and self.conserved
            and not self.mismatches
        )

    def table(self) -> str:
        faults = ", ".join(f"{n} {k}" for k, n in sorted(self.faults.items()))
        rows = [
            ("faults injected", faults or "none"),
            ("cash-outs", str(self.cashouts)),
            ("paid", str(self.stages["PAID"])),
            ("failed", str(self.stages["FAILED"])),
            ("returned", str(self.stages["RETURNED"])),
            ("rejected / cancelled", f"{self.stages['REJECTED']} / {self.stages['CANCELLED']}"),
            ("double-paid", str(self.double_paid)),
            ("lost", str(self.lost) + "".join(f"\n    {d}" for d in self.lost_details)),
            ("dangling holds", str(self.dangling_holds)),
            ("ledger conserves", "yes" if self.conserved else "NO"),
            ("reconciliation", "clean" if not self.mismatches else "; ".join(self.mismatches)),
            (
                "finished by",
                " / ".join(f"{n}" for _, n in self.workers_seen.most_common())
                + " cash-outs per worker process",
            ),
            ("took", f"{self.seconds:.0f} s"),
        ]
        width = max(len(r[0]) for r in rows)
        return "\n".join(
            ["Chaos run", "-" * (width + 40)] + [f"{k.ljust(width)}  {v}" for k, v in rows]
        )


async def retrying(make: Callable[[], Awaitable[T]], *, for_seconds: float = 120) -> T:
    """Call through a server restart or a worker's death: retry failed calls (RPC errors,
    and the client's translation of them) until the server and a worker are back."""
    deadline = time.monotonic() + for_seconds
    while True:
        try:
            return await make()
        except (RPCError, RuntimeError, PayoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


class Chaos:
    def __init__(
        self,
        data_dir: Path,
        *,
        cashouts: int,
        workers: int,
        server_restarts: int,
        seed: int,
        faults: bool = True,
        kill_workers: bool = True,
        database_url: str | None = None,
    ) -> None:
        self.faults_on = faults
        self.kill_on = kill_workers
        self.database_url = database_url
        self.data_dir = data_dir
        self.n = cashouts
        self.n_workers = workers
        self.server_restarts = server_restarts
        self.rng = random.Random(seed)
        self.seed = seed
        self.report = Report(cashouts=cashouts)
        self.workers: list[subprocess.Popen[bytes] | None] = [None] * workers
        self.started: list[tuple[str, str]] = []  # (request id, method)
        self.done = asyncio.Event()
        self.reviewers: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------------ processes

    def settings(self) -> Settings:
        chosen = {**(FAULTS if self.faults_on else {}), **TIMING}
        env = {f"PAYOUTS_{k.upper()}": str(v) for k, v in chosen.items()}
        if self.database_url:
            env["PAYOUTS_DATABASE_URL"] = self.database_url
        env["PAYOUTS_SANDBOX_SEED"] = str(self.seed)
        env["PAYOUTS_TASK_QUEUE"] = "chaos"
        env["PAYOUTS_DATA_DIR"] = str(self.data_dir)
        env["PAYOUTS_METRICS_PORT"] = "0"
        settings = resolve_ports(
            Settings(
                **{k.removeprefix("PAYOUTS_").lower(): v for k, v in env.items()},
                wallet_port=0,
                webhook_port=0,
                platform_port=0,
            )
        )
        env["PAYOUTS_WALLET_API_URL"] = str(settings.wallet_api_url)
        env["PAYOUTS_PLATFORM_WEBHOOK_URL"] = str(settings.platform_webhook_url)
        self.worker_env = {**os.environ, **env}
        return settings

    def start_worker(self, i: int) -> None:
        log = (self.data_dir / f"worker-{i}.log").open("ab")
        self.worker_env["TEMPORAL_ADDRESS"] = self.server.address
        self.workers[i] = subprocess.Popen(
            [sys.executable, "-m", "worker"], cwd=REPO, env=self.worker_env, stdout=log, stderr=log
        )

    def stop_workers(self) -> None:
        for proc in self.workers:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.workers:
            if proc is not None:
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()

    # ------------------------------------------------------------------ the run

    async def run(self) -> Report:
        began = time.monotonic()
        settings = self.settings()
        self.server = DevServer(
            port=free_port(), ui_port=None, db_file=self.data_dir / "temporal.sqlite3"
        )
        self.server.start()
        stack = embedded_stack(settings, self.server.address)  # workers share its keys
        settings = stack.settings
        quiet = Runtime(
            telemetry=TelemetryConfig(
                logging=LoggingConfig(
                    filter=TelemetryFilter(core_level="ERROR", other_level="ERROR")
                )
            )
        )
        client = await retrying(
            lambda: connect(converter_for(settings), target_host=self.server.address, runtime=quiet)
        )
        payouts = platform_client(stack, client, "chaos")
        try:
            async with sidecars(settings, stack, client) as cars:
                for i in range(self.n_workers):
                    self.start_worker(i)
                self.fund(stack)
                monkey = asyncio.create_task(
                    self.kill_workers() if self.kill_on else self.done.wait()
                )
                driver = asyncio.create_task(self.drive_rails(client, cars))
                await self.start_cashouts(payouts)
                await self.wait_until_settled(client, stack)
                self.done.set()
                await asyncio.gather(monkey, driver)
                await self.tally(payouts)
                self.collect(stack, cars)
                await self.check(stack)
                await self.who_worked(client)
        finally:
            self.done.set()
            self.stop_workers()
            stack.close()
            self.server.stop()
        self.report.seconds = time.monotonic() - began
        return self.report

    def fund(self, stack: Any) -> None:
        for i in range(self.n):  # bank holders are compared with the verified legal name
            stack.identity.register(f"chaos-{i}", "verified", legal_name=f"chaos-{i}")
        earned = to_epoch_us(datetime.now(UTC) - timedelta(days=10))
        stack.ledger.credit_earnings(
            [
                EarningRow(f"chaos-{i}-{k}", f"chaos-{i}", "USD", 100_000_000, earned)
                for i in range(self.n)
                for k in range(10)
            ]
        )

    def plan(self, i: int) -> dict[str, Any]:
        """A mix of methods; some above the review threshold (a reviewer approves them)."""
        user = f"chaos-{i}"
        kind = self.rng.random()
        amount = 600_000_000 if self.rng.random() < 0.1 else self.rng.randint(6, 60) * 1_000_000
        if kind < 0.7:  # wallet (capped at 2,000) or gift card (capped at 500)
            method, cap = ("wallet", 2_000_000_000) if kind < 0.4 else ("gift_card", 500_000_000)
            return dict(
                user_id=user,
                amount=min(amount, cap),
                method=method,
                destination=f"{user}@example.com",
            )
        return dict(
            user_id=user,
            amount=max(amount, 11_000_000),
            method="bank_transfer",
            destination=sandbox_iban(f"{8000 + i:04d}"[-4:]),
            holder=user,
        )

    async def start_cashouts(self, payouts: PayoutsClient) -> None:
        restarts_at = {
            int(self.n * (k + 1) / (self.server_restarts + 1)) for k in range(self.server_restarts)
        }
        gate = asyncio.Semaphore(20)

        async def one(i: int) -> None:
            async with gate:
                plan = self.plan(i)
                ticket = await retrying(
                    lambda: payouts.request_cashout(
                        request_id=f"chaos-{self.seed}-{i}", currency="USD", **plan
                    )
                )
                self.started.append((ticket.request_id, plan["method"]))
                if plan["amount"] > 500_000_000:
                    self.reviewers.append(
                        asyncio.create_task(self.approve(payouts, ticket.request_id))
                    )

        tasks = []
        for i in range(self.n):
            if i in restarts_at:
                await asyncio.gather(*tasks)
                tasks = []
                await self.restart_server()
            tasks.append(asyncio.create_task(one(i)))
            await asyncio.sleep(0.02)
        await asyncio.gather(*tasks)

    async def approve(self, payouts: PayoutsClient, request_id: str) -> None:
        """A reviewer who keeps trying through the chaos until the approval lands."""
        while not self.done.is_set():
            try:
                status = await payouts.status(request_id)
                if status.stage is Stage.AWAITING_REVIEW:
                    await payouts.review(
                        request_id, reviewer="bob", decision="approve", client="chaos"
                    )
                    return
                if status.stage not in (Stage.REQUESTED, Stage.RESERVED, Stage.VERIFYING):
                    return
            except Exception:  # the server or the workers are down: try again
                pass
            await asyncio.sleep(0.5)

    async def restart_server(self) -> None:
        self.server.kill()
        self.report.faults["server kills"] += 1
        await asyncio.sleep(self.rng.uniform(0.5, 2.0))
        self.server.start()
        await asyncio.sleep(1.0)  # let the workers and the client reconnect

    async def kill_workers(self) -> None:
        while not self.done.is_set():
            await asyncio.sleep(self.rng.uniform(2.0, 5.0))
            if self.done.is_set():
                return
            i = self.rng.randrange(self.n_workers)
            proc = self.workers[i]
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                self.report.faults["worker SIGKILLs"] += 1
            await asyncio.sleep(self.rng.uniform(0.2, 1.5))
            self.start_worker(i)

    async def drive_rails(self, client: Client, cars: Sidecars) -> None:
        """What the schedules do: bank cutoffs and reports, platform notifications, each
        skipped while its previous run is still going (the schedules' overlap policy: one
        workflow id per kind); and a platform that is down now and then."""
        n = 0
        while not self.done.is_set():
            n += 1
            for name in ("BankBatchWorkflow", "BankReportsWorkflow", "NotificationsWorkflow"):
                with contextlib.suppress(Exception):
                    await client.start_workflow(name, id=f"chaos-{name}", task_queue="chaos")
            if self.faults_on and cars.platform is not None and n % 5 == 0:
                cars.platform.fail_next = 2
                self.report.faults["platform outages"] += 1
            await asyncio.sleep(1.5)

    async def wait_until_settled(self, client: Client, stack: Any, deadline: float = 900) -> None:
        """Until every cash-out is terminal and the bank has no return left to send. The
        stage is read from the search attribute (a describe: no worker needed, so a worker
        killed at that moment does not hold the watch up)."""
        until = time.monotonic() + deadline
        pending = {rid for rid, _ in self.started}
        gate = asyncio.Semaphore(16)

        async def look(rid: str) -> None:
            async with gate:
                with contextlib.suppress(Exception):
                    described = await client.get_workflow_handle(
                        contract.cashout_id(rid)
                    ).describe()
                    stage = described.typed_search_attributes.get(search.STAGE)
                    if stage is not None and Stage(stage) in TERMINAL:
                        pending.discard(rid)

        while pending and time.monotonic() < until:
            await asyncio.gather(*(look(rid) for rid in list(pending)))
            if os.environ.get("PAYOUTS_CHAOS_PROGRESS"):
                print(f"{time.monotonic() - until + deadline:6.1f} s: {len(pending)} pending")
            await asyncio.sleep(1.0)
        # returns are due a few seconds after booking: let them arrive
        while time.monotonic() < until:
            due = (
                stack.sandbox.read()
                .execute(
                    "SELECT COUNT(*) FROM bank_txs WHERE return_due_us IS NOT NULL "
                    "AND returned = 0 AND reject_code IS NULL"
                )
                .fetchone()[0]
            )
            with stack.db.engine.connect() as conn:
                unsignalled = conn.execute(
                    sa.text(
                        "SELECT COUNT(*) FROM bank_items WHERE status != signalled AND "
                        "status IN ('rejected', 'booked', 'returned')"
                    )
                ).scalar()
            if not due and not unsignalled:
                break
            await asyncio.sleep(1.0)

    async def tally(self, payouts: PayoutsClient) -> None:
        """Once the faults have stopped: every cash-out's own account of where it ended (its
        status query); one that is not terminal, or cannot answer within a minute, is lost."""
        final: Counter[str] = Counter()
        gate = asyncio.Semaphore(16)

        async def ask(rid: str) -> CashoutStatus | Exception:
            async with gate:
                try:
                    return await retrying(lambda: payouts.status(rid), for_seconds=60)
                except Exception as exc:
                    return exc

        answers = await asyncio.gather(*(ask(rid) for rid, _ in self.started))
        for (rid, _), status in zip(self.started, answers, strict=True):
            if isinstance(status, Exception):
                self.report.lost += 1
                self.report.lost_details.append(f"{rid}: status failed: {status}"[:300])
                continue
            if status.stage in TERMINAL:
                final[status.stage.value] += 1
            else:
                self.report.lost += 1
                self.report.lost_details.append(
                    f"{rid}: {status.stage.value}: {status.timeline[-1].note}"[:300]
                )
        self.report.stages = final

    async def who_worked(self, client: Client) -> None:
        """Which worker process completed each cash-out's last workflow task."""
        for rid, _ in self.started:
            with contextlib.suppress(Exception):
                history = await client.get_workflow_handle(contract.cashout_id(rid)).fetch_history()
                done = [
                    e.workflow_task_completed_event_attributes.identity
                    for e in history.events
                    if e.HasField("workflow_task_completed_event_attributes")
                ]
                if done:
                    self.report.workers_seen[done[-1].split("@")[0]] += 1

    def collect(self, stack: Any, cars: Sidecars) -> None:
        f = self.report.faults
        if cars.wallet is not None:
            for kind, count in cars.wallet.injected.items():
                f[f"wallet {kind}s"] += count
        for line in stack.bank.statement():
            if line.status in ("rejected", "returned"):
                f[f"bank {line.status} ({line.code})"] += 1
        gift = (
            stack.sandbox.read()
            .execute("SELECT COALESCE(SUM(calls - 1), 0) FROM giftcard_calls")
            .fetchone()[0]
        )
        if gift:
            f["gift card provider refusals/retries"] += int(gift)

    async def check(self, stack: Any) -> None:
        r = self.report
        sb = stack.sandbox.read()
        r.double_paid += sb.execute(
            "SELECT COUNT(*) FROM (SELECT reference FROM wallet_payouts GROUP BY reference "
            "HAVING COUNT(*) > 1)"
        ).fetchone()[0]
        r.double_paid += sb.execute(
            "SELECT COUNT(*) FROM (SELECT reference FROM giftcard_issues GROUP BY reference "
            "HAVING COUNT(DISTINCT key) > 1)"
        ).fetchone()[0]
        r.double_paid += sb.execute(
            "SELECT COUNT(*) FROM (SELECT end_to_end_id FROM bank_txs GROUP BY end_to_end_id "
            "HAVING COUNT(*) > 1)"
        ).fetchone()[0]
        with stack.db.engine.connect() as conn:
            r.dangling_holds = int(
                conn.execute(
                    sa.text("SELECT COUNT(*) FROM holds WHERE status = 'reserved'")
                ).scalar_one()
            )
        problems = stack.ledger.audit()
        r.conserved = not problems and stack.ledger.totals("USD").conserved
        report = await stack.ops_activities.run(datetime.now(UTC).date(), datetime.now(UTC))
        r.mismatches = [f"{m.kind} {m.cashout}" for m in report.mismatches]


async def chaos(
    cashouts: int,
    workers: int,
    server_restarts: int,
    seed: int,
    data_dir: Path | None = None,
    **options: Any,
) -> Report:
    if data_dir is not None:
        return await Chaos(
            data_dir,
            cashouts=cashouts,
            workers=workers,
            server_restarts=server_restarts,
            seed=seed,
            **options,
        ).run()
    with tempfile.TemporaryDirectory() as tmp:
        return await Chaos(
            Path(tmp),
            cashouts=cashouts,
            workers=workers,
            server_restarts=server_restarts,
            seed=seed,
            **options,
        ).run()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos")
    parser.add_argument("--cashouts", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--server-restarts", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, default=None, help="keep the data in this folder")
    parser.add_argument("--database-url", default=None, help="the ledger (default: SQLite)")
    parser.add_argument("--no-faults", action="store_true", help="no rail faults, no kills")
    args = parser.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    report = asyncio.run(
        chaos(
            args.cashouts,
            args.workers,
            args.server_restarts,
            args.seed,
            data_dir=args.keep,
            database_url=args.database_url,
            faults=not args.no_faults,
            kill_workers=not args.no_faults,
        )
    )
    print(report.table(), flush=True)
    return 0 if report.ok else 1


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)
