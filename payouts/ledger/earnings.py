"""Earnings: credited in bulk, then matured from pending to available.

Crediting many earnings is one ledger transaction whose legs are aggregated per account:
a million earnings for 10,000 users write 10,001 legs, while each earning keeps its own
row (keyed by the platform's event id) as the detail. Rows go in by the dialect's bulk path
inside a savepoint; if any event id already existed, the savepoint is rolled back and that
chunk goes through a staging table that tells same-content duplicates (skipped) from
conflicts (refused, or listed with `on_conflict="skip"`). Fresh data never pays for the
comparison.

An earning dated before its hold passed is credited straight to `available`; others go
to `pending` and move when `mature_due` runs (what reversals took of one stays behind).
Either way, money that becomes available settles what the payee owes first
(`payouts.ledger.owed`).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Column, Connection, and_, delete, func, insert, or_, select, update

from payouts.domain.money import format_money
from payouts.errors import IdempotencyConflict, InvalidInput
from payouts.ledger.accounts import PLATFORM, AccountKey, Kind
from payouts.ledger.books import Books, Result
from payouts.ledger.owed import settle
from payouts.ledger.results import (
    IN_BATCH_CONFLICT,
    Conflict,
    CreditSummary,
    EarningRow,
    MaturationResult,
    check_earning,
)
from payouts.ledger.reversals import ReversalRow, Reversals
from payouts.store.tables import Earning, to_epoch_us

EARNINGS = Earning.__table__  # type: ignore[attr-defined]
COLUMNS = tuple(c.name for c in EARNINGS.columns if c.name != "id")

Sums = dict[tuple[str, str, bool], int]  # (user, currency, matured) -> amount


class Earnings:
    def __init__(self, books: Books, hold_hours: int, reversals: Reversals) -> None:
        self.books = books
        self.reversals = reversals
        self.hold_us = hold_hours * 3_600_000_000
        self._stage = books.db.dialect.staging_table(
            "earning_stage", EARNINGS, [Column("earned_given", Boolean)]
        )

    # ------------------------------------------------------------------ credit

    def credit(
        self,
        rows: Iterable[EarningRow],
        *,
        on_conflict: str = "raise",
        chunk_size: int = 100_000,
        progress: Callable[[int], None] | None = None,
        reversals: Sequence[ReversalRow] = (),
    ) -> CreditSummary:
        """Credit many earnings in ONE database transaction: all or nothing.

        An event id seen before with the same content is skipped; with different content it
        is a conflict: `on_conflict="raise"` raises `IdempotencyConflict` and writes
        nothing, `"skip"` leaves those rows out and lists them in the summary.

        `reversals` are applied after the earnings, in the same transaction and under the
        same `on_conflict` (a file's reversal rows: the caller may fill the list while
        `rows` is being read, it is read after).
        """
        if on_conflict not in ("raise", "skip"):
            raise InvalidInput("on_conflict: must be 'raise' or 'skip'", field="on_conflict")
        books = self.books
        now_us = books.now_us()
        summary = CreditSummary()
        seen: dict[str, EarningRow] = {}
        fresh: dict[AccountKey, int] = {}
        sums: Sums = defaultdict(int)
        with books.db.write_connection() as conn:
            tx_id = books.open(conn, key=f"earnings:{uuid.uuid4()}", kind="earn", now_us=now_us)
            for chunk in _chunks(rows, chunk_size):
                new: list[EarningRow] = []
                for row in chunk:
                    check_earning(row)
                    first = seen.get(row.event_id)
                    if first is None:
                        seen[row.event_id] = row
                        new.append(row)
                    elif first == row:
                        summary.duplicates += 1
                    elif on_conflict == "raise":
                        raise IdempotencyConflict(f"event_id {row.event_id!r}: {IN_BATCH_CONFLICT}")
                    else:
                        summary.conflicts.append(Conflict(row.event_id, IN_BATCH_CONFLICT))
                if new:
                    self._chunk(conn, tx_id, new, now_us, on_conflict, summary, sums)
                if progress is not None:
                    progress(len(chunk))
            if reversals:  # the earnings they take back first, then accounts (as every writer)
                self.reversals.lock_earnings(conn, [r.event_id for r in reversals])
            if not sums:
                books.drop(conn, tx_id)
            else:
                summary.transaction_ids.append(tx_id)
                deltas: dict[AccountKey, int] = defaultdict(int)
                for (user, cur, matured), amount in sums.items():
                    deltas[(user, Kind.AVAILABLE if matured else Kind.PENDING, cur)] += amount
                    deltas[(PLATFORM, Kind.FUNDING, cur)] -= amount
                    summary.credited_amount[cur] += amount
                books.post(conn, tx_id, deltas, fresh)
                released = {(u, c): amount for (u, c, matured), amount in sums.items() if matured}
                settle(books, conn, released, after_tx=tx_id, now_us=now_us)
            if reversals:
                summary.reversals = self.reversals.apply(
                    conn, reversals, now_us=now_us, on_conflict=on_conflict
                )
        books.accounts.remember(fresh)
        return summary

    def _chunk(
        self,
        conn: Connection,
        tx_id: int,
        rows: list[EarningRow],
        now_us: int,
        on_conflict: str,
        summary: CreditSummary,
        sums: Sums,
    ) -> None:
        records: list[tuple[Any, ...]] = []
        chunk_sums: Sums = defaultdict(int)
        for r in rows:
            earned = now_us if r.earned_at is None else r.earned_at
            matures = earned + self.hold_us
            matured = matures <= now_us
            records.append(
                (r.event_id, r.user_id, r.currency, r.amount, earned, matures, tx_id,
                 tx_id if matured else None, 0)
            )  # fmt: skip
            chunk_sums[(r.user_id, r.currency, matured)] += r.amount
        dialect = self.books.db.dialect
        savepoint = conn.begin_nested()
        if dialect.insert_rows(conn, EARNINGS, COLUMNS, records):
            savepoint.commit()
            summary.credited += len(records)
        else:
            # Some event ids exist already: redo this chunk through the staging table.
            savepoint.rollback()
            given = [r.earned_at is not None for r in rows]
            staged = [(*rec, g) for rec, g in zip(records, given, strict=True)]
            credited, chunk_sums = self._chunk_slow(conn, staged, on_conflict, summary)
            summary.credited += credited
        for k, v in chunk_sums.items():
            sums[k] += v

    def _chunk_slow(
        self,
        conn: Connection,
        records: list[tuple[Any, ...]],
        on_conflict: str,
        summary: CreditSummary,
    ) -> tuple[int, Sums]:
        stage = self._stage
        stage.create(conn, checkfirst=True)
        self.books.db.dialect.fill(conn, stage, records)
        s, e = stage.c, EARNINGS.c
        same_time = or_(~s.earned_given, e.earned_at == s.earned_at)
        same = and_(e.user_id == s.user_id, e.currency == s.currency, e.amount == s.amount)
        clashes = conn.execute(
            select(s.event_id, e.user_id, e.currency, e.amount, s.user_id, s.currency, s.amount,
                   same_time)
            .join(EARNINGS, e.event_id == s.event_id)
            .where(~and_(same, same_time))
        ).all()  # fmt: skip
        for ev, ou, oc, oa, nu, nc, na, time_ok in clashes:
            reason = (
                f"event_id was already credited as {ou} {format_money(oa, oc)}; "
                f"this row says {nu} {format_money(na, nc)}"
                + ("" if time_ok else " (earned_at differs)")
            )
            if on_conflict == "raise":
                raise IdempotencyConflict(f"event_id {ev!r}: {reason}")
            summary.conflicts.append(Conflict(ev, reason))
        existing = conn.execute(delete(stage).where(s.event_id.in_(select(e.event_id)))).rowcount
        summary.duplicates += existing - len(clashes)
        conn.execute(insert(EARNINGS).from_select(list(COLUMNS), select(*(s[c] for c in COLUMNS))))
        credited = len(records) - existing
        matured = s.mature_tx_id.is_not(None)
        sums: Sums = {}
        for user, cur, is_matured, total in conn.execute(
            select(s.user_id, s.currency, matured, func.sum(s.amount)).group_by(
                s.user_id, s.currency, matured
            )
        ):
            sums[(user, cur, bool(is_matured))] = int(total)
        return int(credited), sums

    # ------------------------------------------------------------------ maturation

    def mature_due(
        self, *, user_id: str | None = None, now: datetime | None = None, key: str | None = None
    ) -> MaturationResult:
        """Move every earning whose maturity time has come from pending to available."""
        books = self.books
        now_us = to_epoch_us(now or books.clock())
        if user_id is not None and key is None and not self._anything_due(user_id, now_us):
            return MaturationResult(transaction_id=None, earnings=0, amount={})
        key = key or f"mature:{user_id or '*'}:{now_us}"

        def run(conn: Connection, chash: str) -> tuple[Result, int | None]:
            tx_id = books.open(
                conn, key=key, kind="mature", chash=chash, user_id=user_id, now_us=now_us
            )
            due = [EARNINGS.c.mature_tx_id.is_(None), EARNINGS.c.matures_at <= now_us]
            if user_id is not None:
                due.append(EARNINGS.c.user_id == user_id)
            moved = conn.execute(
                update(EARNINGS)
                .where(*due)
                .values(mature_tx_id=tx_id)
                .returning(
                    EARNINGS.c.user_id,
                    EARNINGS.c.currency,
                    EARNINGS.c.amount - EARNINGS.c.reversed,  # reversals took the rest
                )
            ).all()
            if not moved:
                books.drop(conn, tx_id)  # nothing was due: the key stays free
                return {"transaction_id": None, "earnings": 0, "amount": {}}, None
            deltas: dict[AccountKey, int] = defaultdict(int)
            per_cur: dict[str, int] = defaultdict(int)
            released: dict[tuple[str, str], int] = defaultdict(int)
            for user, cur, amount in moved:
                deltas[(user, Kind.PENDING, cur)] -= amount
                deltas[(user, Kind.AVAILABLE, cur)] += amount
                per_cur[cur] += amount
                released[(user, cur)] += amount
            books.post(conn, tx_id, deltas, {})
            settle(books, conn, released, after_tx=tx_id, now_us=now_us)
            return {"transaction_id": tx_id, "earnings": len(moved), "amount": dict(per_cur)}, tx_id

        content = {"user_id": user_id, "now": now_us}
        result, replayed = books.idempotent(key, "mature", content, run, empty_ok=True)
        return MaturationResult(**result, replayed=replayed)

    def _anything_due(self, user_id: str, now_us: int) -> bool:
        """A cheap read before the write: most cash-outs find nothing left to mature."""
        with self.books.db.read_connection() as conn:
            found = conn.execute(
                select(EARNINGS.c.id)
                .where(
                    EARNINGS.c.user_id == user_id,
                    EARNINGS.c.mature_tx_id.is_(None),
                    EARNINGS.c.matures_at <= now_us,
                )
                .limit(1)
            ).first()
        return found is not None


def _chunks(rows: Iterable[EarningRow], size: int) -> Iterator[list[EarningRow]]:
    chunk: list[EarningRow] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
