"""Reversing earnings: the platform takes back (part of) an earning it credited.

A reversal names the earning by its event id and has an id of its own (its idempotency
key: the same id with the same content is a duplicate, with other content a conflict).
An earning can be reversed in parts (an adjusted task price) up to what it credited;
more, or again once nothing is left, is refused naming the event.

Where the money comes from, per earning:

- still pending: from `pending` (maturation later moves only what is left of it);
- matured: from `available`, as far as it goes; what a cash-out in flight holds is not
  touched (that cash-out goes on), and the shortfall, like a reversal of money already
  paid out, is what the payee now owes (`owed`, which later earnings settle first).

Many reversals go in at once, in the caller's database transaction (a file's earnings and
reversals are one transaction): they are staged in a temporary table, checked against the
earnings in one join, streamed in payee order, and written as one ledger transaction with
legs per account, a row per reversal, and a bulk update of the earnings. (Memory holds the
batch's reversal rows, as the earnings path holds its event ids: a few hundred bytes each.)
A reversal that creates or changes what a payee owes puts a `payee.owed_changed` event in
the outbox, in the same transaction.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import BigInteger, Column, Connection, Integer, MetaData, String, Table, select

from payouts.domain import validation
from payouts.domain.money import INT64_MAX, format_money
from payouts.domain.reversals import OWED_CHANGED
from payouts.errors import IdempotencyConflict, InvalidAmount, InvalidInput, ReversalRefused
from payouts.ledger.accounts import ACCOUNTS, PLATFORM, AccountKey, Kind
from payouts.ledger.books import TRANSACTIONS, Books
from payouts.store import outbox
from payouts.store.columns import from_epoch_us
from payouts.store.tables import Earning, EarningReversal

EARNINGS = Earning.__table__  # type: ignore[attr-defined]
REVERSALS = EarningReversal.__table__  # type: ignore[attr-defined]
REVERSAL_COLUMNS = tuple(c.name for c in REVERSALS.columns)
IN_BATCH_CONFLICT = "reversal id appears twice in this batch with different content"
MAX_REASON = 500
MAX_LISTED = 20  # reversal ids named in one notification

_STAGE = Table(
    "reversal_stage_template",
    MetaData(),
    Column("seq", Integer),
    Column("rid", String(200)),
    Column("event_id", String(200)),
    Column("amount", BigInteger),
    Column("reason", String(MAX_REASON)),
    Column("user_id", String(128)),
    Column("currency", String(3)),
)


class ReversalRow(NamedTuple):
    """One reversal to apply. `amount=None` takes back all that is left of the earning;
    `user_id`/`currency`, when given (a file row), must be the earning's."""

    reversal_id: str
    event_id: str
    amount: int | None
    reason: str
    user_id: str | None = None
    currency: str | None = None


class Refusal(NamedTuple):
    reversal_id: str
    event_id: str
    reason: str


class OwedChange(NamedTuple):
    user_id: str
    currency: str
    before: int
    after: int


@dataclass
class ReversalSummary:
    reversed: int = 0
    duplicates: int = 0
    amount: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    from_pending: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    from_available: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    owed: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    owed_changes: list[OwedChange] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    transaction_id: int | None = None


def check_reversal(row: ReversalRow) -> ReversalRow:
    """The row's own rules (ids, amount, reason); the earning is checked when applied."""
    validation.event_id(row.reversal_id, field="reversal_id")
    validation.event_id(row.event_id, field="event_id")
    amount = row.amount
    if amount is not None and (
        isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= INT64_MAX
    ):
        raise InvalidAmount(
            f"amount: {amount!r} must be a positive integer of micro-units", field="amount"
        )
    reason = row.reason.strip() if isinstance(row.reason, str) else ""
    if not reason or len(reason) > MAX_REASON:
        raise InvalidInput(f"reason: must be 1 to {MAX_REASON} characters", field="reason")
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in reason):
        raise InvalidInput("reason: control or format characters are not allowed", field="reason")
    return row._replace(reason=reason)


class Reversals:
    def __init__(self, books: Books) -> None:
        self.books = books
        self._stage = books.db.dialect.staging_table("reversal_stage", _STAGE)

    def lock_earnings(self, conn: Connection, event_ids: list[str]) -> None:
        """Lock these earnings for the caller's transaction (PostgreSQL; SQLite's writer
        holds the database): a file's credit takes them before it locks any account, the
        order maturation takes too, so the two cannot deadlock on one earning and its
        payee's balance."""
        if self.books.db.is_sqlite or not event_ids:
            return
        e = EARNINGS.c
        stmt = self.books.db.dialect.for_update(select(e.id))
        self.books.db.dialect.select_where_in(conn, stmt, e.event_id, sorted(set(event_ids)))

    def find(self, reversal_id: str) -> dict[str, Any] | None:
        """The reversal applied under this id (its row), or None."""
        with self.books.db.read_connection() as conn:
            row = conn.execute(select(REVERSALS).where(REVERSALS.c.id == reversal_id)).first()
        return None if row is None else dict(row._mapping)

    def reverse(
        self, rows: Iterable[ReversalRow], *, on_conflict: str = "raise"
    ) -> ReversalSummary:
        """Apply `rows` in one database transaction of their own (see `apply`)."""
        with self.books.db.write_connection() as conn:
            return self.apply(conn, rows, now_us=self.books.now_us(), on_conflict=on_conflict)

    def apply(
        self,
        conn: Connection,
        rows: Iterable[ReversalRow],
        *,
        now_us: int,
        on_conflict: str = "raise",
    ) -> ReversalSummary:
        """Apply `rows` in the caller's transaction. `on_conflict="raise"`: the first
        refusal raises (`ReversalRefused`, `IdempotencyConflict`) and the caller's
        transaction writes nothing; `"skip"`: refused rows are listed and left out."""
        summary = ReversalSummary()

        def refuse(row: ReversalRow | tuple[Any, ...], why: str, conflict: bool = False) -> None:
            rid, ev = row[0], row[1]
            if on_conflict == "raise":
                raise (IdempotencyConflict if conflict else ReversalRefused)(
                    f"event_id {ev!r} (reversal {rid!r}): {why}", field="event_id"
                )
            summary.refused.append(Refusal(rid, ev, why))

        staged: list[tuple[Any, ...]] = []
        seen: dict[str, ReversalRow] = {}
        for row in rows:
            row = check_reversal(row)
            first = seen.setdefault(row.reversal_id, row)
            if first is not row:
                if first == row:
                    summary.duplicates += 1
                else:
                    refuse(row, f"reversal {row.reversal_id!r}: {IN_BATCH_CONFLICT}", True)
                continue
            staged.append((len(staged), row.reversal_id, row.event_id, row.amount, row.reason,
                           row.user_id, row.currency))  # fmt: skip
        if not staged:
            return summary
        stage = self._stage
        stage.create(conn, checkfirst=True)
        dialect = self.books.db.dialect
        dialect.fill(conn, stage, staged)
        # lock the earnings first (the order every writer takes), then look for reversals
        # applied before: a copy of this batch that committed while we waited is seen here
        s, e = stage.c, EARNINGS.c
        conn.execute(dialect.for_update(select(e.id).where(e.event_id.in_(select(s.event_id)))))
        self._drop_seen(conn, summary, refuse)
        self._apply_staged(conn, summary, refuse, now_us)
        conn.execute(stage.delete())
        return summary

    def _drop_seen(self, conn: Connection, summary: ReversalSummary, refuse: Any) -> None:
        """Reversal ids applied before: the same content is a duplicate, other a conflict."""
        s, r = self._stage.c, REVERSALS.c
        found = conn.execute(
            select(s.rid, s.event_id, s.amount, s.reason, s.user_id, s.currency,
                   r.event_id.label("was_event"), r.amount.label("was_amount"),
                   r.requested.label("was_requested"),
                   r.reason.label("was_reason"), r.user_id.label("was_user"),
                   r.currency.label("was_currency"))
            .join(REVERSALS, r.id == s.rid)
        ).all()  # fmt: skip
        for f in found:
            same = (f.event_id, f.reason) == (f.was_event, f.was_reason)
            same = same and f.amount == f.was_requested  # ("all that is left" is not 1.00)
            same = same and f.user_id in (None, f.was_user) and f.currency in (None, f.was_currency)
            if same:
                summary.duplicates += 1
            else:
                was = f"{format_money(f.was_amount, f.was_currency)}, {f.was_reason!r}"
                why = f"reversal {f.rid!r} was already applied to {f.was_event!r} ({was})"
                refuse((f.rid, f.event_id), f"{why} with other content", True)
        if found:
            conn.execute(self._stage.delete().where(s.rid.in_(select(r.id))))

    def _apply_staged(
        self, conn: Connection, summary: ReversalSummary, refuse: Any, now_us: int
    ) -> None:
        books, s, e = self.books, self._stage.c, EARNINGS.c
        dialect = books.db.dialect
        balances = self._balances(conn)  # (after the earnings' locks: see `apply`)
        tx_id = books.open(conn, key=f"reversals:{uuid.uuid4()}", kind="reversal", now_us=now_us)
        deltas: dict[AccountKey, int] = defaultdict(int)
        taken: dict[str, int] = defaultdict(int)  # per event id, in this batch
        owed_before = {k: v[1] for k, v in balances.items()}
        written: list[tuple[Any, ...]] = []
        named: dict[tuple[str, str], list[str]] = defaultdict(list)
        users: set[str] = set()
        joined = conn.execute(
            select(s.rid, s.event_id, s.amount, s.reason, s.user_id, s.currency,
                   e.user_id, e.currency, e.amount, e.reversed, e.mature_tx_id.is_(None))
            .outerjoin(EARNINGS, e.event_id == s.event_id)
            .order_by(e.user_id, e.currency, s.seq)
        )  # fmt: skip
        for (
            rid,
            ev,
            want,
            reason,
            given_user,
            given_cur,
            user,
            cur,
            credited,
            was,
            pending,
        ) in joined:
            if user is None:
                refuse((rid, ev), "no earning was credited with this event id")
                continue
            if (given_user or user, given_cur or cur) != (user, cur):
                refuse((rid, ev), f"was credited to {user} in {cur}; this row says "
                       f"{given_user or user} in {given_cur or cur}")  # fmt: skip
                continue
            left = credited - was - taken[ev]
            if left <= 0:
                refuse((rid, ev), f"is already reversed in full ({format_money(credited, cur)})")
                continue
            amount = left if want is None else want
            if amount > left:
                refuse((rid, ev), f"credited {format_money(credited, cur)}, "
                       f"{format_money(credited - left, cur)} of it already reversed: "
                       f"{format_money(amount, cur)} is more than the "
                       f"{format_money(left, cur)} left")  # fmt: skip
                continue
            taken[ev] += amount
            bal = balances.setdefault((user, cur), [0, 0])
            if pending:
                parts = (amount, 0, 0)
            else:
                from_available = min(bal[0], amount)
                parts = (0, from_available, amount - from_available)
            bal[0] -= parts[1]
            bal[1] += parts[2]
            for kind, part, totals in zip(
                (Kind.PENDING, Kind.AVAILABLE, Kind.OWED),
                parts,
                (summary.from_pending, summary.from_available, summary.owed),
                strict=True,
            ):
                if part:
                    deltas[(user, kind, cur)] -= part
                    totals[cur] += part
            deltas[(PLATFORM, Kind.REVERSED, cur)] += amount
            summary.amount[cur] += amount
            summary.reversed += 1
            users.add(user)
            if parts[2]:
                named[(user, cur)].append(rid)
            written.append(
                (rid, ev, user, cur, amount, reason, *parts, bal[1], now_us, tx_id, want)
            )
        if not written:
            books.drop(conn, tx_id)
            return
        if len(users) == 1:
            conn.execute(
                TRANSACTIONS.update()
                .where(TRANSACTIONS.c.id == tx_id)
                .values(user_id=next(iter(users)))
            )
        if not dialect.insert_rows(conn, REVERSALS, REVERSAL_COLUMNS, written):
            raise IdempotencyConflict("reversal_id: being written concurrently; retry")
        dialect.add_by_key(conn, e.reversed, e.event_id, list(taken.items()))
        books.post(conn, tx_id, deltas, {})
        summary.transaction_id = tx_id
        for (user, cur), rids in named.items():
            change = OwedChange(
                user, cur, owed_before.get((user, cur), 0), balances[(user, cur)][1]
            )
            summary.owed_changes.append(change)
            _tell(conn, change, rids, tx_id, now_us)

    def _balances(self, conn: Connection) -> dict[tuple[str, str], list[int]]:
        """[available, owed] of every payee and currency the staged reversals touch,
        locked for this transaction (in id order)."""
        a, s, e = ACCOUNTS.c, self._stage.c, EARNINGS.c
        touched = select(e.user_id).join(self._stage, s.event_id == e.event_id)
        # every `owed` account this batch may touch exists before the lock is taken: a
        # concurrent batch that creates one would otherwise be missed by it (READ COMMITTED)
        pairs = conn.execute(
            select(e.user_id, e.currency).distinct().join(self._stage, s.event_id == e.event_id)
        ).all()
        self.books.accounts.ensure(conn, [(u, str(Kind.OWED), c) for u, c in pairs], {})
        rows = conn.execute(
            self.books.db.dialect.for_balance_update(
                select(a.owner, a.kind, a.currency, a.balance)
                .where(a.owner.in_(touched), a.kind.in_([Kind.AVAILABLE, Kind.OWED]))
                .order_by(a.id)
            )
        )
        out: dict[tuple[str, str], list[int]] = {}
        for owner, kind, cur, bal in rows:
            slot = out.setdefault((owner, cur), [0, 0])
            if kind == Kind.AVAILABLE:
                slot[0] = int(bal)
            else:
                slot[1] = -int(bal)
        return out


def _tell(conn: Connection, change: OwedChange, rids: list[str], tx_id: int, now_us: int) -> None:
    """The platform's event: this payee now owes `after` (was `before`), because of these
    reversals; one per payee, currency and ledger transaction."""
    outbox.record_in(
        conn,
        event_id=f"owed:{tx_id}:{change.currency}:{change.user_id}",
        request_id=rids[0][:100],
        user_id=change.user_id,
        stage=OWED_CHANGED,
        payload={
            "stage": OWED_CHANGED,
            "user_id": change.user_id,
            "currency": change.currency,
            "owed_before": change.before,
            "owed_after": change.after,
            "owed_after_shown": format_money(change.after, change.currency),
            "reversal_ids": rids[:MAX_LISTED],
            "reversals": len(rids),
        },
        at=from_epoch_us(now_us),
    )
