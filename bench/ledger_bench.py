"""Ledger benchmarks: bulk credit against the raw insert floor, balance reads vs ledger size.

Ingest: 1,000,000 micro-earnings for 10,000 users through `Ledger.credit_earnings` (which
validates, de-duplicates, writes the earnings and one ledger transaction with a leg per
account), beside the raw floor: the same rows written into a table of the same shape and
indexes with a bare executemany (SQLite) or COPY (PostgreSQL), in the same run.

Ingest with reversals: the same, with 1% of the rows reversing (half of) an earning of the
same file, applied in the same call and transaction.

Balance read: `Ledger.balance` for random users, with 10k and with 1M legs in the ledger.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import SQLModel

from bench.common import fresh_database, median, percentile, table, timed
from payouts.ledger import EarningRow, Ledger
from payouts.ledger.reversals import ReversalRow
from payouts.store.database import Database
from payouts.store.tables import to_epoch_us

HOUR_US = 3_600_000_000


def make_rows(n: int, users: int, seed: int = 7, prefix: str = "evt") -> list[EarningRow]:
    rng = random.Random(seed)
    now = to_epoch_us(datetime.now(UTC))
    return [
        EarningRow(
            f"{prefix}-{i:08d}",
            f"user-{i % users:05d}",
            "USD",
            rng.randint(1, 99_999),
            now - rng.randint(0, 240) * HOUR_US,
        )
        for i in range(n)
    ]


def _floor_table(db: Database) -> sa.Table:
    """A copy of `earnings` (columns and indexes) under another name."""
    src = SQLModel.metadata.tables["earnings"]
    meta = sa.MetaData()
    copy = sa.Table("earnings_floor", meta, *[c._copy() for c in src.columns])
    for ix in src.indexes:
        sa.Index(
            f"floor_{ix.name}",
            *[copy.c[c.name] for c in ix.columns],
            unique=ix.unique,
            **dict(ix.kwargs),
        )
    meta.create_all(db.engine)
    return copy


def raw_floor(db: Database, rows: list[EarningRow]) -> float:
    """Write the same rows with a bare bulk insert / COPY; seconds taken."""
    _floor_table(db)
    cols = "event_id, user_id, currency, amount, earned_at, matures_at, credit_tx_id, mature_tx_id"
    hold = 72 * HOUR_US
    records = [
        (
            r.event_id,
            r.user_id,
            r.currency,
            r.amount,
            r.earned_at,
            (r.earned_at or 0) + hold,
            1,
            None,
        )
        for r in rows
    ]

    def write() -> None:
        with db.engine.begin() as conn:
            raw = conn.connection.driver_connection
            if db.is_sqlite:
                raw.executemany(  # type: ignore[union-attr]
                    f"INSERT INTO earnings_floor ({cols}) VALUES (?,?,?,?,?,?,?,?)", records
                )
            else:
                with (
                    raw.cursor() as cur,
                    cur.copy(  # type: ignore[union-attr]
                        f"COPY earnings_floor ({cols}) FROM STDIN"
                    ) as copy,
                ):
                    for rec in records:
                        copy.write_row(rec)

    return timed(write)


def ingest(kind: str, n: int, users: int) -> tuple[str, ...]:
    rows = make_rows(n, users)
    with fresh_database(kind) as url:
        db = Database(url)
        db.ensure_schema()
        floor = raw_floor(db, rows)
        ledger = Ledger(db)
        ours = timed(lambda: ledger.credit_earnings(rows))
        total = sum(r.amount for r in rows)
        t = ledger.totals("USD")
        assert t.earned == total and t.conserved, "ingest lost or invented money"
        db.dispose()
    return (kind, f"{n:,}", f"{n / floor:,.0f}", f"{n / ours:,.0f}", f"{floor / ours:.2f}")


def ingest_with_reversals(kind: str, n: int, users: int) -> tuple[str, ...]:
    """A file of `n` rows of which 1% reverse (half of) an earning of the same file, in one
    call (one transaction), against the raw floor for `n` earnings."""
    reversing = n // 100
    rows = make_rows(n - reversing, users, seed=11, prefix="rvb")
    rng = random.Random(5)
    picked = rng.sample(range(len(rows)), reversing)
    reversals = [
        ReversalRow(f"rv-{i:08d}", rows[j].event_id, max(1, rows[j].amount // 2), "bench")
        for i, j in enumerate(picked)
    ]
    with fresh_database(kind) as url:
        db = Database(url)
        db.ensure_schema()
        floor = raw_floor(db, make_rows(n, users, seed=11, prefix="rvf"))
        ledger = Ledger(db)
        ours = timed(lambda: ledger.credit_earnings(rows, reversals=reversals))
        t = ledger.totals("USD")
        taken = sum(r.amount for r in reversals if r.amount is not None)
        assert t.reversed == taken and t.conserved, "reversals lost or invented money"
        db.dispose()
    label = f"{n:,} (1% reversals)"
    return (kind, label, f"{n / floor:,.0f}", f"{n / ours:,.0f}", f"{floor / ours:.2f}")


def balance_reads(kind: str, users: int = 10_000, reads: int = 2_000) -> tuple[str, ...]:
    """p50 balance read with ~10k legs, then again after growing the ledger to ~1M legs."""
    rng = random.Random(3)
    with fresh_database(kind) as url:
        db = Database(url)
        ledger = Ledger(db)

        def measure() -> tuple[float, float]:
            samples = []
            for _ in range(reads):
                user = f"user-{rng.randrange(users):05d}"
                samples.append(timed(lambda u=user: ledger.balance(u, "USD")))  # type: ignore[misc]
            return median(samples) * 1e6, percentile(samples, 99) * 1e6

        # Each call credits one earning per user: ~users legs per call.
        ledger.credit_earnings(make_rows(users, users, seed=0, prefix="b0"))
        legs_small = _legs(db)
        small = measure()
        for batch in range(1, 100):
            ledger.credit_earnings(make_rows(users, users, seed=batch, prefix=f"b{batch}"))
        legs_big = _legs(db)
        big = measure()
        db.dispose()
    return (
        kind,
        f"{legs_small:,}",
        f"{small[0]:.0f} / {small[1]:.0f}",
        f"{legs_big:,}",
        f"{big[0]:.0f} / {big[1]:.0f}",
        f"{big[0] / small[0]:.2f}",
    )


def _legs(db: Database) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT COUNT(*) FROM ledger_legs")).scalar_one())


def run(kinds: list[str], n: int, users: int) -> str:
    ingest_rows = [ingest(k, n, users) for k in kinds]
    ingest_rows += [ingest_with_reversals(k, n, users) for k in kinds]
    read_rows = [balance_reads(k, users) for k in kinds]
    return "\n\n".join(
        [
            table(
                f"Ingest: {n:,} micro-earnings for {users:,} users, credits/s "
                "(target: ours/floor >= 0.50)",
                ("database", "rows", "raw floor/s", "ledger/s", "ours/floor"),
                ingest_rows,
            ),
            table(
                "Balance read, p50 / p99 in microseconds (target 1M/10k <= 1.5)",
                ("database", "legs", "read p50/p99", "legs", "read p50/p99", "1M/10k p50"),
                read_rows,
            ),
        ]
    )
