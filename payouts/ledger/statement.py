"""A payee's statement: every movement of their money in time order, with running balances.

Why: the legs of the payee's accounts are the truth, but two kinds of transaction tell a
payee nothing as they are. An `earn` transaction (one per credited file, legs aggregated
per account) is replaced by the `earnings` rows grouped per UTC day and currency in SQL
over `ix_earnings_user_time`: a million earnings make a few hundred lines. A `reversal`
transaction is replaced by its `earning_reversals` rows, each with its reason and where the
money came from. Every other transaction on the payee's accounts (`mature`, `reserve`,
`post`, `void`, `reverse`, `settle`, kinds added later) is a line per currency, from its
legs; a cash-out's lines carry its hold.

A day's earnings are placed at the start of the UTC day they were earned (not when they
were credited), before that day's other lines (at `start` if it falls in the day): they are
what that day's cash-outs could use. Each earning counts at its `earned_at`, each other
movement at its transaction's `created_at`, once, against `start` (inclusive) and `end`
(exclusive): the opening balances are everything before `start`, the closing ones the
opening plus every line, and with no `end` the ledger's balances.

The three sources are read by keyset cursors, `page` rows a query (the groups: windows of
days that hold at most `page` groups, found through the index; few windows, as each may
scan the table), and merged as they stream: memory does not grow with the history. All in
one read transaction (a snapshot on SQLite's WAL and PostgreSQL's REPEATABLE READ), so a
statement read during writes still adds up.
"""

from __future__ import annotations

import heapq
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from payouts.domain.money import format_money, normalize_currency
from payouts.domain.statements import (
    FIELDS,
    Balances,
    CashoutInfo,
    LineKind,
    ReversalInfo,
    StatementLine,
)
from payouts.errors import InvalidInput
from payouts.ledger.accounts import ACCOUNTS, Kind
from payouts.ledger.books import LEGS, TRANSACTIONS
from payouts.store.columns import from_epoch_us, to_epoch_us
from payouts.store.database import Database
from payouts.store.tables import Earning, EarningReversal, Hold

EARNINGS = Earning.__table__  # type: ignore[attr-defined]
REVERSALS = EarningReversal.__table__  # type: ignore[attr-defined]
HOLDS = Hold.__table__  # type: ignore[attr-defined]
func = sa.func

DAY_US = 86_400_000_000
PAGE = 1000
REPLACED = ("earn", "reversal")  # transactions shown from `earnings` / `earning_reversals`
LEGS_JOIN = LEGS.join(ACCOUNTS, ACCOUNTS.c.id == LEGS.c.account_id).join(
    TRANSACTIONS, TRANSACTIONS.c.id == LEGS.c.transaction_id
)


BY_TX_KIND = dict(
    mature=LineKind.MATURED, reserve=LineKind.CASHOUT, post=LineKind.CASHOUT_PAID,
    void=LineKind.CASHOUT_VOIDED, reverse=LineKind.CASHOUT_RETURNED, settle=LineKind.SETTLEMENT,
)  # fmt: skip
STATUS_SHOWN = {"reserved": "in progress", "posted": "paid", "voided": "voided"}

Key = tuple[int, int, int, int, str]  # (day, rank: groups first, at, transaction, tie-break)
Move = tuple[Key, StatementLine]  # a line whose balances are not known yet


@dataclass(frozen=True)
class _Query:
    user: str
    lo: int | None
    hi: int | None
    currency: str | None
    page: int

    def window(self, when: Any) -> list[Any]:
        out = [] if self.lo is None else [when >= self.lo]
        return out if self.hi is None else [*out, when < self.hi]

    def in_currency(self, col: Any) -> list[Any]:
        return [] if self.currency is None else [col == self.currency]


def statement(
    db: Database,
    user_id: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    currency: str | None = None,
    page: int = PAGE,
) -> Generator[StatementLine]:
    """The payee's lines from `start` (inclusive) to `end` (exclusive): an opening line per
    currency, the movements, a closing line per currency. The arguments are checked here,
    before anything is read."""
    if not isinstance(user_id, str) or not user_id or user_id.startswith("@"):
        raise InvalidInput(f"user_id: {user_id!r} is not a payee", field="user_id")
    lo = None if start is None else to_epoch_us(start)
    hi = None if end is None else to_epoch_us(end)
    if lo is not None and hi is not None and hi <= lo:
        raise InvalidInput("end: must be after start", field="end")
    if isinstance(page, bool) or not isinstance(page, int) or page < 1:
        raise InvalidInput("page: must be a positive number of rows", field="page")
    code = None if currency is None else normalize_currency(currency, field="currency")
    return _lines(db, _Query(user_id, lo, hi, code, page))


def _lines(db: Database, q: _Query) -> Generator[StatementLine]:
    with db.read_connection() as conn:
        if not db.is_sqlite:
            conn.execution_options(isolation_level="REPEATABLE READ")
        a = ACCOUNTS.c
        mine = sa.select(a.currency).distinct().where(a.owner == q.user)
        known = conn.execute(mine.where(*q.in_currency(a.currency))).scalars()
        opening = dict.fromkeys(sorted(known), Balances())
        if q.lo is not None:
            opening.update(_before(conn, q))
        at_open = None if q.lo is None else from_epoch_us(q.lo)
        running: dict[str, Balances] = {}

        def fixed(kind: LineKind, cur: str, at: datetime | None) -> StatementLine:
            bal, text = running[cur], f"{kind.value} balance"
            return StatementLine(at=at, currency=cur, kind=kind, description=text, balance=bal,
                                 net=bal.net)  # fmt: skip

        running.update(sorted(opening.items()))
        yield from (fixed(LineKind.OPENING, cur, at_open) for cur in running)
        days = max(1, q.page // max(1, len(running)))  # a query's groups: at most `page`
        sources = (_groups(conn, q, days), _transactions(conn, q), _reversals(conn, q))
        for _, line in heapq.merge(*sources, key=lambda move: move[0]):
            # in this snapshot, every currency of a line has accounts: it had an opening
            bal = running[line.currency] = running[line.currency] + line.change
            yield line.model_copy(update={"balance": bal, "net": bal.net})
        at_close = None if q.hi is None else from_epoch_us(q.hi)
        yield from (fixed(LineKind.CLOSING, cur, at_close) for cur in sorted(running))


def _us(col: Any) -> Any:  # a time column as its stored BIGINT microseconds
    return sa.type_coerce(col, sa.BigInteger)


def _by_credit() -> tuple[Any, Any]:
    """Earnings credited to pending, and to available (`mature_tx_id = credit_tx_id`)."""
    e = EARNINGS.c
    direct = e.mature_tx_id == e.credit_tx_id
    return (func.sum(sa.case((direct, 0), else_=e.amount)),
            func.sum(sa.case((direct, e.amount), else_=0)))  # fmt: skip


def _changes() -> tuple[Any, ...]:
    """The legs' sums on the payee's four balances (`owed` is kept at or below zero)."""

    def on(kind: Kind) -> Any:
        return func.sum(sa.case((ACCOUNTS.c.kind == kind, LEGS.c.amount), else_=0))

    return on(Kind.PENDING), on(Kind.AVAILABLE), on(Kind.HELD), -on(Kind.OWED)


def _before(conn: sa.Connection, q: _Query) -> dict[str, Balances]:
    """The opening balances: everything before `start`, per currency, summed in SQL."""
    e, a, t, r = EARNINGS.c, ACCOUNTS.c, TRANSACTIONS.c, REVERSALS.c
    zero = sa.literal(0, sa.BigInteger)
    sums = sa.union_all(
        sa.select(e.currency, *_by_credit(), zero, zero)
        .where(e.user_id == q.user, _us(e.earned_at) < q.lo, *q.in_currency(e.currency))
        .group_by(e.currency),
        sa.select(a.currency, *_changes())
        .select_from(LEGS_JOIN)
        .where(a.owner == q.user, t.kind.not_in(REPLACED), _us(t.created_at) < q.lo,
               *q.in_currency(a.currency))
        .group_by(a.currency),
        sa.select(r.currency, -func.sum(r.from_pending), -func.sum(r.from_available), zero,
                  func.sum(r.owed))
        .where(r.user_id == q.user, _us(r.created_at) < q.lo, *q.in_currency(r.currency))
        .group_by(r.currency),
    )  # fmt: skip
    out: dict[str, Balances] = {}
    for cur, *amounts in conn.execute(sums):
        part = Balances(**dict(zip(FIELDS, (int(v or 0) for v in amounts), strict=True)))
        out[cur] = out.get(cur, Balances()) + part
    return out


def _pages(conn: sa.Connection, base: sa.Select[Any], cursor: Any, q: _Query) -> Iterator[Any]:
    """The rows of `base` (ordered by the `cursor` columns), `q.page` at a time: each page
    starts after the last row of the one before (a keyset cursor)."""
    last: tuple[Any, ...] | None = None
    while True:
        stmt = base if last is None else base.where(sa.tuple_(*cursor) > sa.tuple_(*last))
        rows = conn.execute(stmt.order_by(*cursor).limit(q.page)).all()
        yield from rows
        if len(rows) < q.page:
            return
        last = tuple(rows[-1][: len(cursor)])


def _groups(conn: sa.Connection, q: _Query, days: int) -> Iterator[Move]:
    """Earnings per UTC day and currency, a window of days per query. The cursor is a
    time: the next earning after it is found through the index, so gaps cost nothing."""
    e = EARNINGS.c
    earned, span = _us(e.earned_at), sa.literal_column(str(DAY_US), sa.BigInteger)
    day = earned - (earned % span + span) % span  # the floor, before 1970 too
    mine = [e.user_id == q.user, *q.in_currency(e.currency)]
    by = (day, e.currency)
    totals = sa.select(*by, func.count(), *_by_credit()).group_by(*by).order_by(*by)
    window = days * DAY_US
    cursor = q.lo
    while True:
        after = [] if cursor is None else [earned >= cursor]
        below = [] if q.hi is None else [earned < q.hi]
        first = conn.execute(sa.select(func.min(earned)).where(*mine, *after, *below)).scalar()
        if first is None:
            return
        upper = int(first) - int(first) % DAY_US + window
        upper = upper if q.hi is None else min(upper, q.hi)
        rows = conn.execute(totals.where(*mine, earned >= int(first), earned < upper)).all()
        for day_us, cur, tasks, pending, available in rows:
            at = int(day_us) if q.lo is None else max(int(day_us), q.lo)
            change = Balances(pending=int(pending), available=int(available))
            shown = from_epoch_us(int(day_us)).date().isoformat()
            text = f"{tasks:,} task{'s' if tasks != 1 else ''} earned on {shown}"
            if change.available:
                part = f"{format_money(change.available, cur)} of it" if change.pending else "all"
                text += f" ({part} already available)"
            line = StatementLine(at=from_epoch_us(at), currency=cur, kind=LineKind.EARNINGS,
                                 description=text, change=change, tasks=int(tasks))  # fmt: skip
            yield (int(day_us), 0, at, 0, cur), line
        cursor = upper


def _transactions(conn: sa.Connection, q: _Query) -> Iterator[Move]:
    """Every other transaction on the payee's accounts, its legs summed per currency, with
    its hold and, for a settlement, the transaction whose release it followed (its key is
    `settle:<that transaction's id>`)."""
    a, t, h = ACCOUNTS.c, TRANSACTIONS.c, HOLDS.c
    src = TRANSACTIONS.alias("released_by")
    created = _us(t.created_at)
    release = sa.cast(func.substr(t.idempotency_key, 8), sa.Integer)
    cols = (created, t.id, a.currency, t.kind, h.id, h.amount, h.gross, h.fee, h.status,
            h.reason, src.c.kind, src.c.hold_id)  # fmt: skip
    base = (
        sa.select(*cols, *_changes())
        .select_from(
            LEGS_JOIN
            .outerjoin(HOLDS, h.id == t.hold_id)
            .outerjoin(src, src.c.id == sa.case((t.kind == "settle", release), else_=None))
        )
        .where(a.owner == q.user, t.kind.not_in(REPLACED), *q.window(created),
               *q.in_currency(a.currency))
        .group_by(*cols)
    )  # fmt: skip
    for row in _pages(conn, base, (created, t.id, a.currency), q):
        at, tx_id, cur, kind, hold_id, amount, gross, fee, status, reason, by, by_hold = row[:12]
        change = Balances(**dict(zip(FIELDS, map(int, row[12:]), strict=True)))
        cashout = None if hold_id is None else CashoutInfo(
            hold_id=hold_id, request_id=hold_id.removeprefix("cashout-"), amount=int(amount),
            gross=int(gross), fee=int(fee), status=status, reason=reason,
        )  # fmt: skip
        line = StatementLine(
            at=from_epoch_us(at), currency=cur, kind=BY_TX_KIND.get(kind, kind),
            description=_describe(kind, cur, change, cashout, by, by_hold), change=change,
            transaction_id=tx_id, cashout=cashout,
        )  # fmt: skip
        yield (at - at % DAY_US, 1, at, tx_id, cur), line


SETTLED_FROM = {  # what released the money a settlement used, by that transaction's kind
    "earn": "earnings credited already available", "mature": "earnings that matured",
    "void": "{}, voided", "post": "the unpaid rest of {}", "reverse": "{}, returned",
}  # fmt: skip


def _describe(
    kind: str, cur: str, change: Balances, c: CashoutInfo | None, by: str | None, hold: Any
) -> str:
    def m(micros: int) -> str:
        return format_money(micros, cur)

    if kind == "mature":
        return f"earnings matured: {m(change.available)} now available"
    if kind == "settle":
        source = SETTLED_FROM.get(by or "", "money that became available")
        source = source.format("cash-out " + str(hold).removeprefix("cashout-"))
        return f"{m(-change.owed)} of what you owe paid back from {source}"
    if c is None:
        return f"ledger transaction {kind}"
    name, why = f"cash-out {c.request_id}", f" ({c.reason})" if c.reason else ""
    if kind == "reserve":
        fee = f", fee {m(c.fee)}" if c.status == "posted" else ""
        return f"{name}: {m(c.amount)} reserved (now {STATUS_SHOWN.get(c.status, 'returned')}{fee})"
    if kind == "post":
        unpaid = c.amount - c.gross
        rest = f"; {m(unpaid)} not paid out, back to available" if unpaid else ""
        return f"{name} paid: {m(c.gross)} sent, fee {m(c.fee)}, {m(c.gross - c.fee)} to you{rest}"
    if kind == "void":
        return f"{name} voided{why}: {m(c.amount)} back to available"
    if kind == "reverse":
        return f"{name} returned{why}: {m(c.gross)} back to available, fee refunded"
    return f"{name}: ledger transaction {kind}"


def _reversals(conn: sa.Connection, q: _Query) -> Iterator[Move]:
    """One line per reversal row, a page at a time (the (user_id, created_at) index)."""
    r = REVERSALS.c
    created = _us(r.created_at)
    # in the order applied: what is owed only grows; the row that raised it came first
    order = (created, r.transaction_id, r.owed_after, -r.owed, r.id)
    base = sa.select(
        *order[:3], (-r.owed).label("raised_first"), r.id.label("reversal_id"), r.currency,
        r.event_id, r.reason, r.amount, r.from_pending, r.from_available, r.owed,
    ).where(r.user_id == q.user, *q.window(created), *q.in_currency(r.currency))  # fmt: skip
    for row in _pages(conn, base, order, q):
        at, tx_id, cur, x = row[0], row.transaction_id, row.currency, ReversalInfo(**row._mapping)
        parts = ((x.from_pending, "from pending"), (x.from_available, "from available"),
                 (x.owed, "now owed"))  # fmt: skip
        taken = ", ".join(f"{format_money(v, cur)} {what}" for v, what in parts if v)
        line = StatementLine(
            at=from_epoch_us(at), currency=cur, kind=LineKind.REVERSAL,
            description=f"earning {x.event_id} reversed ({x.reason}): {taken}",
            change=Balances(pending=-x.from_pending, available=-x.from_available, owed=x.owed),
            transaction_id=tx_id, reversal=x,
        )  # fmt: skip
        yield (at - at % DAY_US, 1, at, tx_id, x.reversal_id), line
