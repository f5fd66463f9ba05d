"""Statement benchmark: one payee with a million earnings, streamed as a statement.

A year of history for one payee (`--statement-earnings`, 1,000,000 by default): a file a
day of their earnings (with 10% as many for ten other payees in the same files), maturation
every day, a cash-out every week (every fifth voided, one returned by the rail), and a
reversal file every month (taking back matured earnings beyond what is available, so the
payee owes and later maturations settle it). Then, on SQLite and PostgreSQL:

- the whole statement streamed (`payouts.ledger.statement.statement`): seconds, lines/s,
  earnings/s, and the peak of Python memory while streaming (tracemalloc, a run of its own:
  it slows Python down);
- the baseline, in the same run over the same rows: one plain SQL `SELECT day, currency,
  count(*), sum(amount) ... GROUP BY day, currency` of the payee's earnings, fetched whole.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from bench.common import fresh_database, table, timed
from payouts.ledger import EarningRow, Ledger
from payouts.ledger.reversals import ReversalRow
from payouts.ledger.statement import statement
from payouts.store.database import Database
from payouts.store.tables import to_epoch_us

PAYEE = "payee-000"
OTHERS = 10
DAYS = 365
START = datetime(2025, 1, 1, tzinfo=UTC)
BASELINE_SQL = """
SELECT earned_at / 86400000000 AS day, currency, COUNT(*), SUM(amount)
FROM earnings WHERE user_id = :user
GROUP BY earned_at / 86400000000, currency ORDER BY day, currency
"""


HEADER = (
    "database", "earnings", "lines", "stream s", "lines/s", "earnings/s", "peak MiB",
    "baseline s", "stream/baseline",
)  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def day_rows(day: int, per_day: int) -> Iterator[EarningRow]:
    """One day's file: the payee's earnings spread over the day, and the other payees'."""
    base = to_epoch_us(START + timedelta(days=day))
    step = 86_400_000_000 // max(per_day, 1)
    for i in range(per_day):
        yield EarningRow(f"d{day}-{i}", PAYEE, "USD", 1_000 + i % 9_000, base + i * step)
    for i in range(per_day // 10):
        other = f"payee-{1 + i % OTHERS:03d}"
        yield EarningRow(f"d{day}-o{i}", other, "USD", 5_000, base + i * step * 10)


def seed(db: Database, earnings: int) -> tuple[float, dict[str, int]]:
    """The payee's year; seconds taken and what was written."""
    clock = Clock()
    ledger = Ledger(db, clock=clock)
    per_day = earnings // DAYS
    made = {"cash-outs": 0, "reversals": 0}
    started = time.perf_counter()
    for day in range(DAYS):
        clock.now = START + timedelta(days=day + 1, hours=1)  # the file comes the day after
        ledger.credit_earnings(day_rows(day, per_day))
        ledger.mature_due(user_id=PAYEE)
        bal = ledger.balance(PAYEE, "USD")
        if day % 7 == 6 and bal.owed == 0 and bal.available > 0:
            hold = f"cashout-w{day}"
            ledger.reserve(key=f"r{day}", hold_id=hold, user_id=PAYEE, currency="USD",
                           amount=bal.available)  # fmt: skip
            made["cash-outs"] += 1
            if day % 35 == 34:
                ledger.void(key=f"v{day}", hold_id=hold, reason="rejected by review")
            else:
                ledger.post(key=f"p{day}", hold_id=hold, gross=bal.available, fee=350_000)
                if day == 181:
                    clock.now += timedelta(hours=2)
                    ledger.reverse(key=f"x{day}", hold_id=hold, reason="account closed")
        if day % 30 == 20:  # matured earnings of ten days ago, some already paid out
            rows = [ReversalRow(f"rv{day}-{i}", f"d{day - 10}-{i}", None, "chargeback")
                    for i in range(0, per_day, max(1, per_day // 50))]  # fmt: skip
            ledger.reverse_earnings(rows)
            made["reversals"] += len(rows)
    assert ledger.audit() == [], "the seeded ledger does not balance"
    return time.perf_counter() - started, made


def stream(db: Database) -> int:
    return sum(1 for _ in statement(db, PAYEE))


def peak_memory(db: Database) -> int:
    tracemalloc.start()
    try:
        stream(db)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def baseline(db: Database) -> tuple[float, int]:
    with db.engine.connect() as conn:
        found: list[object] = []
        took = timed(
            lambda: found.extend(conn.execute(sa.text(BASELINE_SQL), {"user": PAYEE}).all())
        )
    return took, len(found)


def measure(kind: str, earnings: int) -> tuple[tuple[str, ...], str]:
    with fresh_database(kind) as url:
        db = Database(url)
        db.ensure_schema()
        seeded, made = seed(db, earnings)
        with db.engine.connect() as conn:
            if not db.is_sqlite:
                conn.execute(sa.text("ANALYZE"))
            n = conn.execute(
                sa.text("SELECT COUNT(*) FROM earnings WHERE user_id = :u"), {"u": PAYEE}
            ).scalar_one()
        stream(db)  # warm: statements compiled, pages cached by the database
        started = time.perf_counter()
        lines = stream(db)
        took = time.perf_counter() - started
        peak = peak_memory(db)
        base, groups = baseline(db)
        db.dispose()
    row = (
        kind,
        f"{n:,}",
        f"{lines:,}",
        f"{took:.2f}",
        f"{lines / took:,.0f}",
        f"{n / took:,.0f}",
        f"{peak / 2**20:.2f}",
        f"{base:.2f} ({groups} groups)",
        f"{took / base:.2f}",
    )
    note = (
        f"{kind}: seeded in {seeded:.0f} s ({made['cash-outs']} cash-outs, "
        f"{made['reversals']} reversals, {OTHERS} other payees in the same files)"
    )
    return row, note


def run(kinds: list[str], earnings: int) -> str:
    results = [measure(k, earnings) for k in kinds]
    return "\n".join(
        [
            table(
                f"Statement of one payee with {earnings:,} earnings over {DAYS} days "
                "(whole statement streamed; baseline: one SQL GROUP BY day of the same rows)",
                HEADER,
                [row for row, _ in results],
            ),
            *(note for _, note in results),
        ]
    )
