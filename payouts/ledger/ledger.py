"""The double-entry ledger: earn, mature, reserve, post, void, reverse.

Accounts
    per user and currency: `pending` (immature earnings), `available`, `held` (reserved by a
    cash-out); per currency for the platform (owner `@platform`): `earnings_funding` (the
    source of every earning; its balance is minus everything ever earned), `fees`, and
    `payout_clearing` (money paid out to the rails).

Every write is one database transaction whose legs sum to zero per currency, and updates
the balance rows it touches in the same transaction, so balances are read in O(1).

Idempotency
    Every write carries a key. Same key and same content returns the first result (marked
    `replayed`); same key and different content raises `IdempotencyConflict`. Earnings are
    keyed by the platform's event id: a re-sent event with the same content is skipped, one
    with different content is a conflict.

Concurrency
    A reserve checks the available balance with the account row locked (`BEGIN IMMEDIATE`
    on SQLite, `SELECT ... FOR UPDATE` on PostgreSQL), so racing cash-outs cannot overdraw.
    Balance rows are always updated in account-id order, so writers never deadlock.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from payouts.domain.money import CURRENCIES, INT64_MAX, format_money
from payouts.errors import (
    IdempotencyConflict,
    InsufficientFunds,
    InvalidAmount,
    InvalidInput,
    InvalidState,
    LimitExceeded,
    NotFound,
)
from payouts.store.database import Database
from payouts.store.tables import Account, Earning, Hold, LedgerTransaction, Leg, to_epoch_us

PLATFORM = "@platform"


class Kind(StrEnum):
    PENDING = "pending"
    AVAILABLE = "available"
    HELD = "held"
    FUNDING = "earnings_funding"
    FEES = "fees"
    CLEARING = "payout_clearing"


USER_KINDS = (Kind.PENDING, Kind.AVAILABLE, Kind.HELD)


class HoldStatus(StrEnum):
    RESERVED = "reserved"
    POSTED = "posted"
    VOIDED = "voided"
    REVERSED = "reversed"


def utcnow() -> datetime:
    return datetime.now(UTC)


class EarningRow(NamedTuple):
    """One micro-earning to credit. `earned_at` is epoch microseconds (UTC).

    `earned_at=None` means "now" and is not part of the earning's identity: re-sending the
    event later without a time is a duplicate, not a conflict.
    """

    event_id: str
    user_id: str
    currency: str
    amount: int
    earned_at: int | None


class Balance(BaseModel):
    model_config = ConfigDict(frozen=True)

    user_id: str
    currency: str
    pending: int = 0
    available: int = 0
    held: int = 0


class HoldReceipt(BaseModel):
    """The result of reserve/post/void/reverse; `replayed` when returned for a reused key."""

    model_config = ConfigDict(frozen=True)

    op: str
    hold_id: str
    transaction_id: int
    user_id: str
    currency: str
    amount: int
    gross: int = 0
    fee: int = 0
    released: int = 0
    status: HoldStatus
    available_after: int
    replayed: bool = False


IN_BATCH_CONFLICT = "event_id appears twice in this batch with different content"


class Conflict(NamedTuple):
    event_id: str
    reason: str


@dataclass
class CreditSummary:
    credited: int = 0
    duplicates: int = 0
    credited_amount: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    conflicts: list[Conflict] = field(default_factory=list)
    transaction_ids: list[int] = field(default_factory=list)


class MaturationResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    transaction_id: int | None
    earnings: int
    amount: dict[str, int]
    replayed: bool = False


class Totals(BaseModel):
    """Per-currency position.

    Conservation: earned == paid_out + fees + held + available + pending.
    """

    model_config = ConfigDict(frozen=True)

    currency: str
    earned: int
    paid_out: int
    fees: int
    held: int
    available: int
    pending: int

    @property
    def conserved(self) -> bool:
        return self.earned == self.paid_out + self.fees + self.held + self.available + self.pending


def content_hash(op: str, content: dict[str, Any]) -> str:
    canonical = json.dumps({"op": op, **content}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


_ACC = Account.__table__  # type: ignore[attr-defined]
_TX = LedgerTransaction.__table__  # type: ignore[attr-defined]
_LEG = Leg.__table__  # type: ignore[attr-defined]
_EARN = Earning.__table__  # type: ignore[attr-defined]
_HOLD = Hold.__table__  # type: ignore[attr-defined]

_EARNING_COLUMNS = (
    "event_id",
    "user_id",
    "currency",
    "amount",
    "earned_at",
    "matures_at",
    "credit_tx_id",
    "mature_tx_id",
)


class Ledger:
    def __init__(
        self,
        db: Database,
        *,
        hold_hours: int = 72,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.hold_us = hold_hours * 3_600_000_000
        self.clock = clock
        self._account_ids: dict[tuple[str, str, str], int] = {}

    # ------------------------------------------------------------------ reads

    def balance(self, user_id: str, currency: str) -> Balance:
        """O(1): the three balance rows of one user and currency."""
        with self.db.read_connection() as conn:
            rows = conn.execute(
                select(_ACC.c.kind, _ACC.c.balance).where(
                    _ACC.c.owner == user_id, _ACC.c.currency == currency
                )
            )
            values = {kind: bal for kind, bal in rows}
        return Balance(user_id=user_id, currency=currency, **values)

    def balances(self, user_id: str) -> list[Balance]:
        with self.db.read() as s:
            rows = s.connection().execute(
                select(_ACC.c.currency, _ACC.c.kind, _ACC.c.balance)
                .where(_ACC.c.owner == user_id)
                .order_by(_ACC.c.currency)
            )
            by_cur: dict[str, dict[str, int]] = defaultdict(dict)
            for cur, kind, bal in rows:
                by_cur[cur][kind] = bal
        return [Balance(user_id=user_id, currency=c, **v) for c, v in by_cur.items()]

    def totals(self, currency: str) -> Totals:
        with self.db.read() as s:
            rows = s.connection().execute(
                select(_ACC.c.kind, func.coalesce(func.sum(_ACC.c.balance), 0))
                .where(_ACC.c.currency == currency)
                .group_by(_ACC.c.kind)
            )
            by_kind = {k: int(v) for k, v in rows}
        return Totals(
            currency=currency,
            earned=-by_kind.get(Kind.FUNDING, 0),
            paid_out=by_kind.get(Kind.CLEARING, 0),
            fees=by_kind.get(Kind.FEES, 0),
            held=by_kind.get(Kind.HELD, 0),
            available=by_kind.get(Kind.AVAILABLE, 0),
            pending=by_kind.get(Kind.PENDING, 0),
        )

    def currencies(self) -> list[str]:
        with self.db.read() as s:
            rows = s.connection().execute(select(_ACC.c.currency).distinct())
            return sorted(r[0] for r in rows)

    def audit(self) -> list[str]:
        """Every broken invariant, as text: unbalanced transactions, balances that differ
        from the sum of their legs, negative user balances. Empty when the books are sound."""
        problems: list[str] = []
        with self.db.read() as s:
            conn = s.connection()
            unbalanced = conn.execute(
                select(_LEG.c.transaction_id, _ACC.c.currency, func.sum(_LEG.c.amount))
                .join(_ACC, _ACC.c.id == _LEG.c.account_id)
                .group_by(_LEG.c.transaction_id, _ACC.c.currency)
                .having(func.sum(_LEG.c.amount) != 0)
            )
            for tx, cur, total in unbalanced:
                problems.append(f"transaction {tx} legs sum to {total} {cur}, not zero")
            leg_sums = (
                select(_LEG.c.account_id, func.sum(_LEG.c.amount).label("total"))
                .group_by(_LEG.c.account_id)
                .subquery()
            )
            drift = conn.execute(
                select(_ACC.c.id, _ACC.c.owner, _ACC.c.kind, _ACC.c.balance, leg_sums.c.total)
                .outerjoin(leg_sums, leg_sums.c.account_id == _ACC.c.id)
                .where(_ACC.c.balance != func.coalesce(leg_sums.c.total, 0))
            )
            for acc_id, owner, kind, bal, total in drift:
                problems.append(f"account {acc_id} ({owner}/{kind}) is {bal}, legs sum to {total}")
            negative = conn.execute(
                select(_ACC.c.owner, _ACC.c.kind, _ACC.c.currency, _ACC.c.balance).where(
                    _ACC.c.owner != PLATFORM, _ACC.c.balance < 0
                )
            )
            for owner, kind, cur, bal in negative:
                problems.append(f"{owner}/{kind} is negative: {bal} {cur}")
        return problems

    def hold(self, hold_id: str) -> Hold | None:
        with self.db.read() as s:
            return s.get(Hold, hold_id)

    # ------------------------------------------------------------------ earnings

    def credit_earning(
        self,
        *,
        event_id: str,
        user_id: str,
        currency: str,
        amount: int,
        earned_at: datetime | None = None,
    ) -> CreditSummary:
        """Credit one earning; idempotent by `event_id`. No `earned_at` means now."""
        when = None if earned_at is None else to_epoch_us(earned_at)
        return self.credit_earnings([EarningRow(event_id, user_id, currency, amount, when)])

    def credit_earnings(
        self,
        rows: Iterable[EarningRow],
        *,
        on_conflict: str = "raise",
        chunk_size: int = 100_000,
        progress: Callable[[int], None] | None = None,
    ) -> CreditSummary:
        """Credit many earnings in ONE database transaction: all or nothing.

        Each earning goes to `available` if it has matured by now, else to `pending`. The
        earnings rows are written in chunks (bulk insert or COPY); the whole call is one
        ledger transaction with one leg per account it touched.
        An event id seen before with the same content is skipped; with different content it
        is a conflict: `on_conflict="raise"` raises `IdempotencyConflict` and writes nothing,
        `"skip"` leaves those rows out and lists them in the summary.
        """
        if on_conflict not in ("raise", "skip"):
            raise ValueError("on_conflict must be 'raise' or 'skip'")
        now_us = to_epoch_us(self.clock())
        summary = CreditSummary()
        seen: dict[str, EarningRow] = {}
        new_ids: dict[tuple[str, str, str], int] = {}
        sums: dict[tuple[str, str, bool], int] = defaultdict(int)
        with self.db.write_connection() as conn:
            tx_id = self._insert_tx(
                conn,
                key=f"earnings:{uuid.uuid4()}",
                kind="earn",
                chash="",
                user_id=None,
                hold_id=None,
                now_us=now_us,
            )
            for chunk in _chunks(rows, chunk_size):
                fresh: list[EarningRow] = []
                for row in chunk:
                    _check_earning(row)
                    first = seen.get(row.event_id)
                    if first is None:
                        seen[row.event_id] = row
                        fresh.append(row)
                    elif first == row:
                        summary.duplicates += 1
                    else:
                        reason = IN_BATCH_CONFLICT
                        if on_conflict == "raise":
                            raise IdempotencyConflict(f"event_id {row.event_id!r}: {reason}")
                        summary.conflicts.append(Conflict(row.event_id, reason))
                if fresh:
                    self._credit_chunk(conn, tx_id, fresh, now_us, on_conflict, summary, sums)
                if progress is not None:
                    progress(len(chunk))
            if not sums:
                conn.execute(delete(_TX).where(_TX.c.id == tx_id))
            else:
                summary.transaction_ids.append(tx_id)
                deltas: dict[tuple[str, str, str], int] = defaultdict(int)
                for (user, cur, matured), amount in sums.items():
                    deltas[(user, Kind.AVAILABLE if matured else Kind.PENDING, cur)] += amount
                    deltas[(PLATFORM, Kind.FUNDING, cur)] -= amount
                    summary.credited_amount[cur] += amount
                self._apply_legs(conn, tx_id, deltas, new_ids)
        self._account_ids.update(new_ids)
        return summary

    def _credit_chunk(
        self,
        conn: Connection,
        tx_id: int,
        rows: list[EarningRow],
        now_us: int,
        on_conflict: str,
        summary: CreditSummary,
        sums: dict[tuple[str, str, bool], int],
    ) -> None:
        hold = self.hold_us
        records = []
        chunk_sums: dict[tuple[str, str, bool], int] = defaultdict(int)
        for r in rows:
            earned = now_us if r.earned_at is None else r.earned_at
            matures = earned + hold
            matured = matures <= now_us
            records.append(
                (
                    r.event_id,
                    r.user_id,
                    r.currency,
                    r.amount,
                    earned,
                    matures,
                    tx_id,
                    tx_id if matured else None,
                )
            )
            chunk_sums[(r.user_id, r.currency, matured)] += r.amount
        nested = conn.begin_nested()
        inserted = self._bulk_insert_earnings(conn, records)
        if inserted == len(records):
            nested.commit()
            summary.credited += inserted
        else:
            # Some event ids exist already: redo this chunk through a staging table that
            # tells same-content duplicates (skipped) from conflicts.
            nested.rollback()
            given = [r.earned_at is not None for r in rows]
            credited, chunk_sums = self._credit_chunk_slow(
                conn,
                [(*rec, g) for rec, g in zip(records, given, strict=True)],
                on_conflict,
                summary,
            )
            summary.credited += credited
        for k, v in chunk_sums.items():
            sums[k] += v

    def _bulk_insert_earnings(self, conn: Connection, records: list[tuple[Any, ...]]) -> int:
        """Fast path: write the rows straight into `earnings`; returns how many went in."""
        cols = ", ".join(_EARNING_COLUMNS)
        if self.db.is_sqlite:
            cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            cur.executemany(
                f"INSERT INTO earnings ({cols}) VALUES (?,?,?,?,?,?,?,?) "
                "ON CONFLICT(event_id) DO NOTHING",
                records,
            )
            return int(cur.rowcount)
        raw = conn.connection.driver_connection
        try:
            with raw.cursor() as cur, cur.copy(f"COPY earnings ({cols}) FROM STDIN") as copy:  # type: ignore[union-attr]
                for rec in records:
                    copy.write_row(rec)
        except Exception as exc:  # a duplicate event id aborts COPY: take the slow path
            if "earnings_event_id_key" in str(exc) or "unique" in str(exc).lower():
                return -1
            raise
        return len(records)

    def _credit_chunk_slow(
        self,
        conn: Connection,
        records: list[tuple[Any, ...]],
        on_conflict: str,
        summary: CreditSummary,
    ) -> tuple[int, dict[tuple[str, str, bool], int]]:
        if self.db.is_sqlite:
            conn.exec_driver_sql(
                "CREATE TEMP TABLE IF NOT EXISTS earning_stage (event_id TEXT, user_id TEXT, "
                "currency TEXT, amount BIGINT, earned_at BIGINT, matures_at BIGINT, "
                "credit_tx_id BIGINT, mature_tx_id BIGINT, earned_given BOOLEAN)"
            )
            conn.exec_driver_sql("DELETE FROM earning_stage")
            cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            cur.executemany("INSERT INTO earning_stage VALUES (?,?,?,?,?,?,?,?,?)", records)
        else:
            conn.exec_driver_sql(
                "CREATE TEMP TABLE IF NOT EXISTS earning_stage (event_id TEXT, user_id TEXT, "
                "currency TEXT, amount BIGINT, earned_at BIGINT, matures_at BIGINT, "
                "credit_tx_id BIGINT, mature_tx_id BIGINT, earned_given BOOLEAN) "
                "ON COMMIT DELETE ROWS"
            )
            conn.exec_driver_sql("TRUNCATE earning_stage")
            raw = conn.connection.driver_connection
            with raw.cursor() as cur, cur.copy("COPY earning_stage FROM STDIN") as copy:  # type: ignore[union-attr]
                for rec in records:
                    copy.write_row(rec)
        clashes = conn.exec_driver_sql(
            "SELECT s.event_id, e.user_id, e.currency, e.amount, s.user_id, s.currency, s.amount, "
            "(NOT s.earned_given OR e.earned_at = s.earned_at) FROM earning_stage s "
            "JOIN earnings e ON e.event_id = s.event_id WHERE NOT (e.user_id = s.user_id AND "
            "e.currency = s.currency AND e.amount = s.amount AND "
            "(NOT s.earned_given OR e.earned_at = s.earned_at))"
        ).all()
        for ev, ou, oc, oa, nu, nc, na, same_time in clashes:
            was = f"{ou} {format_money(oa, oc)}"
            now = f"{nu} {format_money(na, nc)}"
            reason = f"event_id was already credited as {was}; this row says {now}" + (
                "" if same_time else " (earned_at differs)"
            )
            if on_conflict == "raise":
                raise IdempotencyConflict(f"event_id {ev!r}: {reason}")
            summary.conflicts.append(Conflict(ev, reason))
        existing = conn.exec_driver_sql(
            "DELETE FROM earning_stage WHERE event_id IN (SELECT event_id FROM earnings)"
        ).rowcount
        summary.duplicates += existing - len(clashes)
        cols = ", ".join(_EARNING_COLUMNS)
        credited = conn.exec_driver_sql(
            f"INSERT INTO earnings ({cols}) SELECT {cols} FROM earning_stage"
        ).rowcount
        sums: dict[tuple[str, str, bool], int] = {}
        for user, cur_code, matured, total in conn.exec_driver_sql(
            "SELECT user_id, currency, mature_tx_id IS NOT NULL, SUM(amount) FROM earning_stage "
            "GROUP BY user_id, currency, mature_tx_id IS NOT NULL"
        ):
            sums[(user, cur_code, bool(matured))] = int(total)
        return credited, sums

    def mature_due(
        self, *, user_id: str | None = None, now: datetime | None = None, key: str | None = None
    ) -> MaturationResult:
        """Move every earning whose maturity time has come from pending to available."""
        now_us = to_epoch_us(now or self.clock())
        if user_id is not None and key is None and not self._anything_due(user_id, now_us):
            return MaturationResult(transaction_id=None, earnings=0, amount={})
        key = key or f"mature:{user_id or '*'}:{now_us}"
        chash = content_hash("mature", {"user_id": user_id, "now": now_us})

        def run(conn: Connection) -> tuple[dict[str, Any], int | None]:
            tx_id = self._insert_tx(
                conn,
                key=key,
                kind="mature",
                chash=chash,
                user_id=user_id,
                hold_id=None,
                now_us=now_us,
            )
            where = "mature_tx_id IS NULL AND matures_at <= :now"
            params: dict[str, Any] = {"now": now_us, "tx": tx_id}
            if user_id is not None:
                where += " AND user_id = :user"
                params["user"] = user_id
            moved = conn.execute(
                text(
                    f"UPDATE earnings SET mature_tx_id = :tx WHERE {where} "
                    "RETURNING user_id, currency, amount"
                ),
                params,
            ).all()
            deltas: dict[tuple[str, str, str], int] = defaultdict(int)
            per_cur: dict[str, int] = defaultdict(int)
            for user, cur, amount in moved:
                deltas[(user, Kind.PENDING, cur)] -= amount
                deltas[(user, Kind.AVAILABLE, cur)] += amount
                per_cur[cur] += amount
            if not moved:
                # Nothing was due: leave no transaction behind, so the key stays free.
                conn.execute(delete(_TX).where(_TX.c.id == tx_id))
                return {"transaction_id": None, "earnings": 0, "amount": {}}, None
            new_ids: dict[tuple[str, str, str], int] = {}
            self._apply_legs(conn, tx_id, deltas, new_ids)
            return {"transaction_id": tx_id, "earnings": len(moved), "amount": dict(per_cur)}, tx_id

        result, replayed = self._idempotent(key, "mature", chash, run, empty_ok=True)
        return MaturationResult(**result, replayed=replayed)

    def _anything_due(self, user_id: str, now_us: int) -> bool:
        """A cheap read before the write: most cash-outs find nothing left to mature."""
        with self.db.read_connection() as conn:
            found = conn.execute(
                select(_EARN.c.id)
                .where(
                    _EARN.c.user_id == user_id,
                    _EARN.c.mature_tx_id.is_(None),
                    _EARN.c.matures_at <= now_us,
                )
                .limit(1)
            ).first()
        return found is not None

    # ------------------------------------------------------------------ cash-outs

    def reserve(
        self,
        *,
        key: str,
        hold_id: str,
        user_id: str,
        currency: str,
        amount: int,
        daily_amount_limit: int | None = None,
        daily_count_limit: int | None = None,
    ) -> HoldReceipt:
        """available -> held, if the available balance covers `amount` and limits allow."""
        _check_positive(amount, "amount")
        content = {"hold_id": hold_id, "user_id": user_id, "currency": currency, "amount": amount}
        chash = content_hash("reserve", content)

        def run(conn: Connection) -> tuple[dict[str, Any], int | None]:
            now = self.clock()
            now_us = to_epoch_us(now)
            if conn.execute(select(_HOLD.c.id).where(_HOLD.c.id == hold_id)).first():
                raise InvalidState(f"hold {hold_id!r} exists already under another key")
            ids = self._account_id_map(conn, user_id, currency, (Kind.AVAILABLE, Kind.HELD))
            available = self._locked_balance(conn, ids[Kind.AVAILABLE])
            if daily_amount_limit is not None or daily_count_limit is not None:
                self._check_limits(
                    conn, user_id, currency, amount, now, daily_amount_limit, daily_count_limit
                )
            if available < amount:
                raise InsufficientFunds(
                    f"amount: {format_money(amount, currency)} is more than the available "
                    f"balance of {format_money(available, currency)}"
                )
            tx_id = self._insert_tx(
                conn,
                key=key,
                kind="reserve",
                chash=chash,
                user_id=user_id,
                hold_id=hold_id,
                now_us=now_us,
            )
            self._move(conn, tx_id, {ids[Kind.AVAILABLE]: -amount, ids[Kind.HELD]: amount})
            conn.execute(
                insert(_HOLD).values(
                    id=hold_id,
                    user_id=user_id,
                    currency=currency,
                    amount=amount,
                    status=HoldStatus.RESERVED,
                    gross=0,
                    fee=0,
                    created_at=now_us,
                    updated_at=now_us,
                )
            )
            receipt = dict(
                op="reserve",
                hold_id=hold_id,
                transaction_id=tx_id,
                user_id=user_id,
                currency=currency,
                amount=amount,
                status=HoldStatus.RESERVED,
                available_after=available - amount,
            )
            return receipt, tx_id

        result, replayed = self._idempotent(key, "reserve", chash, run)
        return HoldReceipt(**result, replayed=replayed)

    def post(self, *, key: str, hold_id: str, gross: int, fee: int) -> HoldReceipt:
        """Book a paid cash-out: held -> clearing (net) and fees; the unpaid rest -> available."""
        _check_positive(gross, "gross")
        if isinstance(fee, bool) or not isinstance(fee, int) or fee < 0 or fee > gross:
            raise InvalidAmount("fee: must be an integer between 0 and gross", field="fee")
        chash = content_hash("post", {"hold_id": hold_id, "gross": gross, "fee": fee})

        def run(conn: Connection) -> tuple[dict[str, Any], int | None]:
            hold = self._locked_hold(conn, hold_id, expect=HoldStatus.RESERVED, op="post")
            amount, cur, user = hold["amount"], hold["currency"], hold["user_id"]
            if gross > amount:
                raise InvalidAmount(
                    f"gross: {format_money(gross, cur)} is more than the hold of "
                    f"{format_money(amount, cur)}",
                    field="gross",
                )
            ids = self._account_id_map(conn, user, cur, (Kind.AVAILABLE, Kind.HELD))
            plat = self._account_id_map(conn, PLATFORM, cur, (Kind.CLEARING, Kind.FEES))
            now_us = to_epoch_us(self.clock())
            tx_id = self._insert_tx(
                conn,
                key=key,
                kind="post",
                chash=chash,
                user_id=user,
                hold_id=hold_id,
                now_us=now_us,
            )
            released = amount - gross
            self._move(
                conn,
                tx_id,
                {
                    ids[Kind.HELD]: -amount,
                    plat[Kind.CLEARING]: gross - fee,
                    plat[Kind.FEES]: fee,
                    ids[Kind.AVAILABLE]: released,
                },
            )
            self._set_hold(conn, hold_id, HoldStatus.POSTED, now_us, gross=gross, fee=fee)
            available = self._balance_of(conn, ids[Kind.AVAILABLE])
            return dict(
                op="post",
                hold_id=hold_id,
                transaction_id=tx_id,
                user_id=user,
                currency=cur,
                amount=amount,
                gross=gross,
                fee=fee,
                released=released,
                status=HoldStatus.POSTED,
                available_after=available,
            ), tx_id

        result, replayed = self._idempotent(key, "post", chash, run)
        return HoldReceipt(**result, replayed=replayed)

    def void(self, *, key: str, hold_id: str, reason: str) -> HoldReceipt:
        """Release a hold that will not be paid: held -> available."""
        chash = content_hash("void", {"hold_id": hold_id})

        def run(conn: Connection) -> tuple[dict[str, Any], int | None]:
            hold = self._locked_hold(conn, hold_id, expect=HoldStatus.RESERVED, op="void")
            amount, cur, user = hold["amount"], hold["currency"], hold["user_id"]
            ids = self._account_id_map(conn, user, cur, (Kind.AVAILABLE, Kind.HELD))
            now_us = to_epoch_us(self.clock())
            tx_id = self._insert_tx(
                conn,
                key=key,
                kind="void",
                chash=chash,
                user_id=user,
                hold_id=hold_id,
                now_us=now_us,
            )
            self._move(conn, tx_id, {ids[Kind.HELD]: -amount, ids[Kind.AVAILABLE]: amount})
            self._set_hold(conn, hold_id, HoldStatus.VOIDED, now_us, reason=reason)
            available = self._balance_of(conn, ids[Kind.AVAILABLE])
            return dict(
                op="void",
                hold_id=hold_id,
                transaction_id=tx_id,
                user_id=user,
                currency=cur,
                amount=amount,
                released=amount,
                status=HoldStatus.VOIDED,
                available_after=available,
            ), tx_id

        result, replayed = self._idempotent(key, "void", chash, run)
        return HoldReceipt(**result, replayed=replayed)

    def reverse(self, *, key: str, hold_id: str, reason: str) -> HoldReceipt:
        """Undo a posted cash-out the rail returned: clearing and fee -> available."""
        chash = content_hash("reverse", {"hold_id": hold_id})

        def run(conn: Connection) -> tuple[dict[str, Any], int | None]:
            hold = self._locked_hold(conn, hold_id, expect=HoldStatus.POSTED, op="reverse")
            cur, user, gross, fee = hold["currency"], hold["user_id"], hold["gross"], hold["fee"]
            ids = self._account_id_map(conn, user, cur, (Kind.AVAILABLE,))
            plat = self._account_id_map(conn, PLATFORM, cur, (Kind.CLEARING, Kind.FEES))
            now_us = to_epoch_us(self.clock())
            tx_id = self._insert_tx(
                conn,
                key=key,
                kind="reverse",
                chash=chash,
                user_id=user,
                hold_id=hold_id,
                now_us=now_us,
            )
            self._move(
                conn,
                tx_id,
                {
                    plat[Kind.CLEARING]: -(gross - fee),
                    plat[Kind.FEES]: -fee,
                    ids[Kind.AVAILABLE]: gross,
                },
            )
            self._set_hold(conn, hold_id, HoldStatus.REVERSED, now_us, reason=reason)
            available = self._balance_of(conn, ids[Kind.AVAILABLE])
            return dict(
                op="reverse",
                hold_id=hold_id,
                transaction_id=tx_id,
                user_id=user,
                currency=cur,
                amount=hold["amount"],
                gross=gross,
                fee=fee,
                released=gross,
                status=HoldStatus.REVERSED,
                available_after=available,
            ), tx_id

        result, replayed = self._idempotent(key, "reverse", chash, run)
        return HoldReceipt(**result, replayed=replayed)

    # ------------------------------------------------------------------ internals

    def _idempotent(
        self,
        key: str,
        op: str,
        chash: str,
        run: Callable[[Connection], tuple[dict[str, Any], int | None]],
        *,
        empty_ok: bool = False,
    ) -> tuple[dict[str, Any], bool]:
        if not isinstance(key, str) or not key or len(key) > 200:
            raise InvalidInput("key: the idempotency key must be 1 to 200 characters", field="key")
        for _ in range(5):
            try:
                with self.db.write_connection() as conn:
                    found = conn.execute(
                        select(_TX.c.kind, _TX.c.content_hash, _TX.c.result_json).where(
                            _TX.c.idempotency_key == key
                        )
                    ).first()
                    if found is not None:
                        kind, first_hash, result_json = found
                        if kind != op or first_hash != chash:
                            raise IdempotencyConflict(
                                f"key: {key!r} was first used for a different {kind} "
                                f"(this request is a {op} with other content)",
                                field="key",
                            )
                        return json.loads(result_json), True
                    result, tx_id = run(conn)
                    if tx_id is not None:
                        conn.execute(
                            update(_TX)
                            .where(_TX.c.id == tx_id)
                            .values(result_json=json.dumps(result))
                        )
                    elif not empty_ok:  # pragma: no cover - every op but mature writes a tx
                        raise RuntimeError(f"{op} wrote no transaction")
                    return result, False
            except IntegrityError as exc:
                # A concurrent writer took this key (or hold id) first: read its result.
                if "idempotency_key" not in str(exc) and "ledger_transactions" not in str(exc):
                    raise
        raise IdempotencyConflict(f"key: {key!r} is being written concurrently; retry")

    def _insert_tx(
        self,
        conn: Connection,
        *,
        key: str,
        kind: str,
        chash: str,
        user_id: str | None,
        hold_id: str | None,
        now_us: int,
    ) -> int:
        result = conn.execute(
            insert(_TX)
            .values(
                idempotency_key=key,
                kind=kind,
                content_hash=chash,
                user_id=user_id,
                hold_id=hold_id,
                created_at=now_us,
                result_json="",
            )
            .returning(_TX.c.id)
        )
        return int(result.scalar_one())

    def _account_id_map(
        self, conn: Connection, owner: str, currency: str, kinds: Sequence[Kind]
    ) -> dict[Kind, int]:
        new_ids: dict[tuple[str, str, str], int] = {}
        ids = self._ensure_accounts(conn, {(owner, k, currency) for k in kinds}, new_ids)
        return {k: ids[(owner, k, currency)] for k in kinds}

    def _ensure_accounts(
        self,
        conn: Connection,
        keys: set[tuple[str, str, str]],
        new_ids: dict[tuple[str, str, str], int],
    ) -> dict[tuple[str, str, str], int]:
        """Account ids for (owner, kind, currency), creating missing accounts.

        Ids are cached per process once their transaction committed; `new_ids` collects the
        ones seen inside the current transaction (the caller merges them after commit).
        """
        found: dict[tuple[str, str, str], int] = {}
        missing: list[tuple[str, str, str]] = []
        for k in keys:
            acc = self._account_ids.get(k) or new_ids.get(k)
            if acc is None:
                missing.append(k)
            else:
                found[k] = acc
        if not missing:
            return found
        # A user's three accounts are always created together.
        wanted = set(missing)
        for owner, _kind, cur in missing:
            if owner != PLATFORM:
                wanted.update((owner, k, cur) for k in USER_KINDS)
        ordered = sorted(wanted)
        owners = sorted({o for o, _, _ in ordered})
        if self.db.is_sqlite:
            conn.execute(
                self.db.insert_new(_ACC),
                [{"owner": o, "kind": k, "currency": c, "balance": 0} for o, k, c in ordered],
            )
            rows: list[Any] = []
            for start in range(0, len(owners), 500):
                rows += list(
                    conn.execute(
                        select(_ACC.c.id, _ACC.c.owner, _ACC.c.kind, _ACC.c.currency).where(
                            _ACC.c.owner.in_(owners[start : start + 500])
                        )
                    )
                )
        else:
            conn.execute(
                text(
                    "INSERT INTO accounts (owner, kind, currency, balance) "
                    "SELECT o, k, c, 0 FROM unnest(CAST(:o AS text[]), CAST(:k AS text[]), "
                    "CAST(:c AS text[])) AS t(o, k, c) ON CONFLICT DO NOTHING"
                ),
                {
                    "o": [w[0] for w in ordered],
                    "k": [str(w[1]) for w in ordered],
                    "c": [w[2] for w in ordered],
                },
            )
            rows = list(
                conn.execute(
                    text(
                        "SELECT id, owner, kind, currency FROM accounts "
                        "WHERE owner = ANY(CAST(:owners AS text[]))"
                    ),
                    {"owners": owners},
                )
            )
        for acc_id, owner, kind, cur in rows:
            key = (owner, kind, cur)
            if key in wanted:
                new_ids[key] = acc_id
                if key in keys:
                    found[key] = acc_id
        return found

    def _apply_legs(
        self,
        conn: Connection,
        tx_id: int,
        deltas: dict[tuple[str, str, str], int],
        new_ids: dict[tuple[str, str, str], int],
    ) -> None:
        ids = self._ensure_accounts(conn, set(deltas), new_ids)
        self._move(conn, tx_id, {ids[k]: v for k, v in deltas.items()})

    def _move(self, conn: Connection, tx_id: int, by_account: dict[int, int]) -> None:
        """Write one leg per account and update the balances, in account-id order."""
        legs = sorted((acc, amt) for acc, amt in by_account.items() if amt != 0)
        if not legs:
            return
        if self.db.is_sqlite:
            raw = conn.connection.driver_connection
            raw.executemany(  # type: ignore[union-attr]
                "INSERT INTO ledger_legs (transaction_id, account_id, amount) VALUES (?, ?, ?)",
                [(tx_id, acc, amt) for acc, amt in legs],
            )
            raw.executemany(  # type: ignore[union-attr]
                "UPDATE accounts SET balance = balance + ? WHERE id = ?",
                [(amt, acc) for acc, amt in legs],
            )
            return
        ids = [acc for acc, _ in legs]
        amounts = [amt for _, amt in legs]
        params = {"tx": tx_id, "ids": ids, "amounts": amounts}
        # Lock the accounts in id order before anything else touches them, so that concurrent
        # writers never deadlock. It must come before the legs: their foreign-key check takes
        # a KEY SHARE lock on each account, and two posts that both hold KEY SHARE on the
        # platform's clearing account would each wait for the other to upgrade. NO KEY UPDATE
        # is what the balance update needs, and it does not block other writers' key checks.
        conn.execute(
            text(
                "SELECT id FROM accounts WHERE id = ANY(CAST(:ids AS int[])) ORDER BY id "
                "FOR NO KEY UPDATE"
            ),
            params,
        )
        conn.execute(
            text(
                "INSERT INTO ledger_legs (transaction_id, account_id, amount) "
                "SELECT :tx, i, a FROM unnest(CAST(:ids AS int[]), CAST(:amounts AS bigint[])) "
                "AS t(i, a)"
            ),
            params,
        )
        conn.execute(
            text(
                "UPDATE accounts SET balance = accounts.balance + t.a FROM "
                "unnest(CAST(:ids AS int[]), CAST(:amounts AS bigint[])) AS t(i, a) "
                "WHERE accounts.id = t.i"
            ),
            params,
        )

    def _locked_balance(self, conn: Connection, account_id: int) -> int:
        stmt = select(_ACC.c.balance).where(_ACC.c.id == account_id)
        if not self.db.is_sqlite:
            stmt = stmt.with_for_update(key_share=True)  # FOR NO KEY UPDATE, as in _move
        return int(conn.execute(stmt).scalar_one())

    def _balance_of(self, conn: Connection, account_id: int) -> int:
        return int(conn.execute(select(_ACC.c.balance).where(_ACC.c.id == account_id)).scalar_one())

    def _locked_hold(
        self, conn: Connection, hold_id: str, *, expect: HoldStatus, op: str
    ) -> dict[str, Any]:
        stmt = select(_HOLD).where(_HOLD.c.id == hold_id)
        if not self.db.is_sqlite:
            stmt = stmt.with_for_update()
        row = conn.execute(stmt).mappings().first()
        if row is None:
            raise NotFound(f"hold {hold_id!r} does not exist")
        if row["status"] != expect:
            raise InvalidState(f"cannot {op} hold {hold_id!r}: it is {row['status']}")
        return dict(row)

    def _set_hold(
        self, conn: Connection, hold_id: str, status: HoldStatus, now_us: int, **values: Any
    ) -> None:
        conn.execute(
            update(_HOLD)
            .where(_HOLD.c.id == hold_id)
            .values(status=status, updated_at=now_us, **values)
        )

    def _check_limits(
        self,
        conn: Connection,
        user_id: str,
        currency: str,
        amount: int,
        now: datetime,
        amount_limit: int | None,
        count_limit: int | None,
    ) -> None:
        since = now - timedelta(days=1)
        live = (
            _HOLD.c.user_id == user_id,
            _HOLD.c.created_at > since,
            _HOLD.c.status != HoldStatus.VOIDED,
        )
        if count_limit is not None:
            count = conn.execute(select(func.count()).select_from(_HOLD).where(*live)).scalar_one()
            if count >= count_limit:
                raise LimitExceeded(
                    f"limits.daily_count: {count} cash-outs in the last 24 hours; "
                    f"the limit is {count_limit}"
                )
        if amount_limit is not None:
            total = int(
                conn.execute(
                    select(func.coalesce(func.sum(_HOLD.c.amount), 0)).where(
                        *live, _HOLD.c.currency == currency
                    )
                ).scalar_one()
            )
            if total + amount > amount_limit:
                raise LimitExceeded(
                    f"amount: {format_money(amount, currency)} would bring the last 24 hours' "
                    f"cash-outs to {format_money(total + amount, currency)}; the daily limit is "
                    f"{format_money(amount_limit, currency)}"
                )


def _chunks(rows: Iterable[EarningRow], size: int) -> Iterator[list[EarningRow]]:
    chunk: list[EarningRow] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _check_positive(amount: int, name: str) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise InvalidAmount(f"{name}: must be a positive integer of micro-units", field=name)
    if amount > INT64_MAX:
        raise InvalidAmount(f"{name}: beyond the int64 range", field=name)


def _check_earning(row: EarningRow) -> None:
    if not row.event_id or len(row.event_id) > 200:
        raise InvalidInput("event_id: must be 1 to 200 characters", field="event_id")
    if not row.user_id or len(row.user_id) > 128 or row.user_id.startswith("@"):
        raise InvalidInput(
            f"user_id: {row.user_id!r} must be 1 to 128 characters and not start with '@'",
            field="user_id",
        )
    if row.currency not in CURRENCIES:
        raise InvalidInput(
            f"currency: {row.currency!r} is not a supported ISO 4217 code", field="currency"
        )
    amount = row.amount
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0 or amount > INT64_MAX:
        raise InvalidAmount(
            f"amount: {amount!r} must be a positive integer of micro-units", field="amount"
        )
