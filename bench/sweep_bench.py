"""Automatic cash-out sweep benchmark: 100,000 opted-in payees, a few of them due.

Every payee has a saved gift card destination (sealed with the stack's vault, the rows
`Profiles._save` writes) and a standing instruction "pay out when the balance reaches
20.00 USD"; each holds 10.00 USD of matured earnings, so the sweep skips them with a
reason. The rows are written in bulk (`seed`): a signed `PayeeProfileWorkflow` per change
would take hours at this size. Then, on a dev server and one worker in this process:

- scan: `AutoCashoutSweepWorkflow` with nothing due: pages of 1,000 through the standing
  instructions, `auto_due` for each;
- starts: a fraction of the payees (`--sweep-due`, 0.2% by default: 200) earns another
  15.00 USD and the sweep runs at the default rate (`PAYOUTS_AUTO_SWEEP_RATE`, 50/s), then
  as many others at the rate's maximum (1,000/s): the difference is what the rate limit
  costs. The sweep's injected starter is timed (start p50), and the started cash-outs are
  followed until all are paid (the same worker runs them, as it would in production).
  1% (1,000) works too, but makes each sweep minutes long on two cores.

Floors measured in the same run: the same rows (standing instruction, destination's
method, available balance) read with one SQL query, and `auto_page` called in a loop with
`auto_due` for each row (the sweep's work without Temporal).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from temporalio.client import Client

from activities.payees import Starter
from bench.common import fresh_database, median, percentile, table, timed
from payouts.app.stack import Stack
from payouts.config.settings import DEV_SECRET, Settings
from payouts.devstack.devserver import DevServer
from payouts.devstack.embedded import embedded_stack, platform_client
from payouts.devstack.stack import resolve_ports, sidecars
from payouts.domain.cashout import CashoutInput, GiftCardDelivery, Stage, mask
from payouts.domain.policy import Method
from payouts.domain.profiles import AutoRule, SweepResult, auto_due, auto_request_id, destination_id
from payouts.ledger import EarningRow
from payouts.ledger.risk_facts import destination_fingerprint
from payouts.payees.profiles import auto_page
from payouts.security.deployment import derived_payload_key
from payouts.store.tables import AutoCashout, PayoutProfile, to_epoch_us
from payouts.temporal.codec import converter_for
from payouts.temporal.connection import wait_until_ready
from payouts.temporal.contract import Workflow
from payouts.web import free_port
from workflows.payees import PAGE

M = 1_000_000  # micros per USD
THRESHOLD = 20 * M
BALANCE = 10 * M  # below the threshold: skipped, "below your threshold by 10.00 USD"
TOP_UP = 15 * M  # a due payee: 25.00 USD (a gift card denomination, no identity check)
FAST_RATE = 1000.0  # the largest PAYOUTS_AUTO_SWEEP_RATE the settings accept
BATCH = 10_000

FLOOR_SQL = """
SELECT a.user_id, a.currency, a.destination_id, a.threshold, a.every, a.minimum,
       p.method, b.balance
FROM auto_cashouts a
JOIN payout_profiles p ON p.id = a.destination_id AND p.status = 'active'
LEFT JOIN accounts b ON b.owner = a.user_id AND b.kind = 'available'
                    AND b.currency = a.currency
ORDER BY a.user_id, a.currency
"""


def user_of(i: int) -> str:
    return f"auto-{i:07d}"


def seed(stack: Stack, n: int) -> float:
    """`n` payees with a saved gift card destination (default, out of its cool-off) and a
    20.00 USD threshold rule, as `Profiles._save` and `_set_auto` write them; seconds."""
    profiles, vault = stack.profiles, stack.profiles.vault
    hours = stack.policy.methods[Method.GIFT_CARD].cooloff_hours
    changed = datetime.now(UTC) - timedelta(days=30)
    start = time.perf_counter()
    for lo in range(0, n, BATCH):
        dests, autos = [], []
        for i in range(lo, min(n, lo + BATCH)):
            user = user_of(i)
            dest = GiftCardDelivery(email=f"{user}@example.com")
            fingerprint = destination_fingerprint(dest, profiles.fingerprint_key)
            dst = destination_id(user, fingerprint)
            dests.append(
                {
                    "id": dst,
                    "user_id": user,
                    "method": Method.GIFT_CARD.value,
                    "fingerprint": fingerprint,
                    "is_default": True,
                    "created_at": changed,
                    "sealed": vault.encrypt(json.dumps(dest.model_dump(mode="json"))),
                    "shown": mask(dest),
                    "status": "active",
                    "changed_at": changed,
                    "cooloff_until": changed + timedelta(hours=hours),
                    "verification": None,
                    "verified_name": None,
                    "verified_at": None,
                }
            )
            autos.append(
                {
                    "user_id": user,
                    "currency": "USD",
                    "destination_id": dst,
                    "threshold": THRESHOLD,
                    "every": None,
                    "minimum": 0,
                    "changed_at": changed,
                }
            )
        with stack.db.write_connection() as conn:
            conn.execute(sa.insert(PayoutProfile.__table__), dests)  # type: ignore[attr-defined]
            conn.execute(sa.insert(AutoCashout.__table__), autos)  # type: ignore[attr-defined]
    return time.perf_counter() - start


def earn(stack: Stack, users: list[int], amount: int, tag: str) -> float:
    """Matured earnings (earned 10 days ago) for these payees; seconds to credit and
    mature them (the sweep would mature them on its first page). Credited in batches of
    1,000, as a feed of earnings would be: one ledger transaction with a leg for each of
    100,000 accounts would skew PostgreSQL's statistics of `ledger_legs` (see
    BENCHMARKS.md)."""
    earned = to_epoch_us(datetime.now(UTC) - timedelta(days=10))
    rows = [EarningRow(f"{tag}-{i}", user_of(i), "USD", amount, earned) for i in users]
    start = time.perf_counter()
    for lo in range(0, len(rows), 1000):
        stack.ledger.credit_earnings(rows[lo : lo + 1000])
    stack.ledger.mature_due()
    return time.perf_counter() - start


def analyze(stack: Stack) -> str:
    """PostgreSQL: ANALYZE the bulk-loaded tables, as autovacuum would soon after such a
    load (without statistics the planner pages by sequential scans: see BENCHMARKS.md)."""
    if stack.db.is_sqlite:
        return ""
    with stack.db.engine.begin() as conn:
        autovacuum = conn.exec_driver_sql("SHOW autovacuum").scalar_one()
        for name in sa.inspect(conn).get_table_names():
            conn.exec_driver_sql(f'ANALYZE "{name}"')
    return f"tables ANALYZEd after the bulk load (autovacuum is {autovacuum} on this server)"


def floor_query(stack: Stack, n: int) -> float:
    """One SQL query reading every standing instruction with its method and balance."""
    db = stack.db

    def read() -> None:
        with db.engine.connect() as conn:
            cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            cur.execute(FLOOR_SQL)
            got = len(cur.fetchall())
            cur.close()
        assert got == n, got

    read()  # warm the caches, as the sweep before it would
    return median([timed(read) for _ in range(3)])


def paged_scan(stack: Stack, n: int) -> float:
    """`auto_page` in a loop, pages of the sweep's size, `auto_due` for each row."""
    now = datetime.now(UTC)

    def scan() -> None:
        after, seen, due = "", 0, 0
        while True:
            rows = auto_page(stack.db, after, PAGE)
            for r in rows:
                due += auto_due(r.rule, r.available, now)[0]
            seen += len(rows)
            if len(rows) < PAGE:
                break
            after = rows[-1].cursor
        assert (seen, due) == (n, 0), (seen, due)

    return timed(scan)


@dataclass
class Sweep:
    rate: float
    wall: float  # seconds, start to result
    result: SweepResult
    paid_after: float = 0.0  # seconds from the sweep's start until its last cash-out paid
    start_ms: float = 0.0  # p50 of one start (the injected starter's call)


def timed_starter(stack: Stack) -> list[float]:
    """Wrap the sweep's starter (`start_new`, as the stack injects it) to time each call."""
    inner: Starter = stack.payee_activities.start
    took: list[float] = []

    async def start(client: Client, inp: CashoutInput, queue: str) -> bool:
        t = time.perf_counter()
        try:
            return await inner(client, inp, queue)
        finally:
            took.append(time.perf_counter() - t)

    stack.payee_activities.start = start
    return took


async def sweep(
    client: Client, stack: Stack, rate: float, due: list[int], took: list[float]
) -> Sweep:
    """One sweep at `rate`; then follow the cash-outs it started until all are paid."""
    payouts = platform_client(stack, client)
    took.clear()
    start = time.perf_counter()
    handle = await client.start_workflow(
        Workflow.AUTO_SWEEP,
        rate,
        id=f"bench-sweep-{uuid.uuid4().hex[:8]}",
        task_queue=stack.settings.task_queue,
        result_type=SweepResult,
    )
    result: SweepResult = await handle.result()
    wall = time.perf_counter() - start
    assert result.started == len(due), result
    assert result.scanned - result.skipped == len(due), result
    begun = (await handle.describe()).start_time
    rule = AutoRule(destination_id="", currency="USD", threshold=THRESHOLD)  # the id: currency
    gate = asyncio.Semaphore(20)

    async def paid(i: int) -> None:
        rid = auto_request_id(user_of(i), rule, f"d{begun:%Y%m%d}")
        async with gate:
            res = await payouts.result(rid)
        assert res.stage is Stage.PAID, (rid, res.status.outcome)

    await asyncio.gather(*(paid(i) for i in due))
    start_ms = percentile(took, 50) * 1000 if took else 0.0
    return Sweep(rate, wall, result, time.perf_counter() - start, start_ms)


@dataclass
class Measured:
    kind: str
    payees: int
    seeded: float  # seconds: profiles and rules
    earned: float  # seconds: credit and mature one earning per payee
    floor: float  # seconds: one SQL query
    paged: float  # seconds: auto_page + auto_due, no Temporal
    scan: Sweep  # nothing due
    slow: Sweep  # due payees at the default rate
    fast: Sweep  # as many others at FAST_RATE
    analyzed: str = ""  # PostgreSQL: what ANALYZE after the bulk load stood in for


async def measure(kind: str, n: int, due_fraction: float, rate: float) -> Measured:
    every = max(1, round(1 / due_fraction)) if due_fraction > 0 else n + 1
    first = list(range(0, n, every))  # due at the default rate
    second = list(range(every // 2, n, every))[: len(first)]  # due at FAST_RATE
    with tempfile.TemporaryDirectory() as tmp, fresh_database(kind) as url:
        data = Path(tmp)
        server = DevServer(port=free_port(), ui_port=None, db_file=data / "temporal.sqlite3")
        server.start()
        try:
            client = await wait_until_ready(converter_for(Settings()), target_host=server.address)
            settings = resolve_ports(
                Settings(
                    data_dir=data,
                    database_url=None if kind == "sqlite" else url,
                    task_queue=f"sweep-{uuid.uuid4().hex[:6]}",
                    wallet_port=0,
                    webhook_port=0,
                    platform_port=0,
                )
            )
            stack = embedded_stack(
                settings, server.address, payload_key=derived_payload_key(DEV_SECRET)
            )
            try:
                seeded = seed(stack, n)
                earned = earn(stack, list(range(n)), BALANCE, "base")
                analyzed = analyze(stack)
                floor = floor_query(stack, n)
                paged = paged_scan(stack, n)
                took = timed_starter(stack)
                async with sidecars(settings, stack, client), stack.worker(client):
                    scan = await sweep(client, stack, rate, [], took)
                    earn(stack, first, TOP_UP, "due1")
                    slow = await sweep(client, stack, rate, first, took)
                    earn(stack, second, TOP_UP, "due2")
                    fast = await sweep(client, stack, FAST_RATE, second, took)
                assert stack.ledger.audit() == [], "the benchmark broke the books"
            finally:
                stack.close()
        finally:
            server.stop()
    return Measured(kind, n, seeded, earned, floor, paged, scan, slow, fast, analyzed)


def report(results: list[Measured], due_fraction: float, rate: float) -> str:
    period = Settings().auto_sweep_minutes * 60
    n = results[0].payees
    due = results[0].slow.result.started
    scan_rows: list[tuple[str, ...]] = []
    start_rows: list[tuple[str, ...]] = []
    lines: list[str] = []
    for m in results:
        scan_rows.append(
            (
                m.kind,
                f"{m.payees:,}",
                f"{m.payees / m.floor:,.0f}",
                f"{m.payees / m.paged:,.0f}",
                f"{m.payees / m.scan.wall:,.0f}",
                f"{m.scan.wall:.1f}",
                f"{m.floor / m.scan.wall:.2f}",
            )
        )
        for s in (m.slow, m.fast):
            beyond = max(s.wall - m.scan.wall, 1e-9)
            start_rows.append(
                (
                    m.kind,
                    f"{s.rate:g}",
                    f"{s.result.started:,}",
                    f"{s.wall:.1f}",
                    f"{beyond:.1f}",
                    f"{s.result.started / beyond:.1f}",
                    f"{s.start_ms:.0f}",
                    f"{1 / (1 / s.rate + s.start_ms / 1000):.0f}",
                    f"{s.paid_after:.1f}",
                )
            )
        share = m.slow.wall / period
        verdict = (
            "finishes well inside its period"
            if share < 0.25
            else "finishes inside its period"
            if share < 1
            else "does NOT finish inside its period"
        )
        measured = m.slow.result.started / max(m.slow.wall - m.scan.wall, 1e-9)
        room = max(period - m.scan.wall, 0)
        lines += [
            f"{m.kind}: at {rate:g}/s the sweep of {m.payees:,} payees ({due:,} started) took "
            f"{m.slow.wall:.1f} s = {100 * share:.1f}% of its {period // 60}-minute period "
            f"(PAYOUTS_AUTO_SWEEP_MINUTES): {verdict}",
            f"{m.kind}: the rate limit cost {m.slow.wall - m.fast.wall:+.1f} s against "
            f"{FAST_RATE:g}/s (its pauses alone: {due / rate:.1f} s); a period has room for "
            f"{room * measured:,.0f} starts after the scan at the {measured:.1f}/s measured "
            f"here, {room * rate:,.0f} at {rate:g}/s",
            f"{m.kind}: at 1% due ({m.payees // 100:,}) the sweep would take about "
            f"{m.scan.wall + m.payees / 100 / measured:.0f} s at that rate",
            f"{m.kind}: setup, outside the figures: {m.payees:,} profiles and rules written in "
            f"bulk in {m.seeded:.1f} s, one matured earning each in {m.earned:.1f} s"
            + (f"; {m.analyzed}" if m.analyzed else ""),
        ]
    return (
        table(
            f"Automatic cash-out sweep, scan: {n:,} opted-in payees (threshold 20.00 USD, "
            "each holding 10.00 USD: none due), payees/s",
            (
                "database",
                "payees",
                "floor: 1 query/s",
                "auto_page loop/s",
                "sweep/s",
                "sweep s",
                "sweep/floor",
            ),
            scan_rows,
        )
        + "\n\n"
        + table(
            f"Automatic cash-out sweep, starts: {due:,} of {n:,} payees due "
            f"({100 * due_fraction:g}%, --sweep-due: 1% would make each sweep minutes long "
            "on two cores), 25.00 USD gift cards paid by the same worker; at the default "
            f"rate and at {FAST_RATE:g}/s",
            (
                "database",
                "rate/s",
                "started",
                "sweep s",
                "s beyond scan",
                "starts/s",
                "start p50 ms",
                "ceiling/s",
                "all paid s",
            ),
            start_rows,
        )
        + "\n"
        + "\n".join(lines)
    )


def run(kinds: list[str], payees: int, due_fraction: float, rate: float | None = None) -> str:
    rate = rate or Settings().auto_sweep_rate
    results = [asyncio.run(measure(k, payees, due_fraction, rate)) for k in kinds]
    return report(results, due_fraction, rate)
