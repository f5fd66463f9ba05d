"""What a payee owes, and how it is paid back: money that becomes available settles it first.

A reversal that no balance covers leaves the payee owing (`owed`, at or below zero in the
books). From then on, every amount that becomes available to that payee in that currency
(earnings maturing or credited already mature, a cash-out voided, the unpaid rest of a
partial one, a payout the rail returned) first moves from `available` to `owed` until the
debt is gone. Each settlement is a ledger transaction of its own (kind `settle`, key
`settle:<the transaction that released the money>`), written in the same database
transaction as the release, so statements show it as a line of its own, and tells the
platform (`payee.owed_settled`: what the payee owed before and after) in the same
transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from sqlalchemy import Connection, select

from payouts.domain.money import format_money
from payouts.domain.reversals import OWED_SETTLED
from payouts.ledger.accounts import ACCOUNTS, AccountKey, Kind
from payouts.ledger.books import Books
from payouts.store import outbox
from payouts.store.columns import from_epoch_us

UserCurrency = tuple[str, str]


def owed_balances(
    books: Books, conn: Connection, users: list[str], *, lock: bool = False
) -> dict[UserCurrency, int]:
    """What each of `users` owes, per currency (positive amounts; none owed: absent)."""
    if not users:
        return {}
    a = ACCOUNTS.c
    stmt = select(a.owner, a.currency, a.balance).where(a.kind == Kind.OWED, a.balance < 0)
    if lock:
        stmt = books.db.dialect.for_balance_update(stmt)
    rows = books.db.dialect.select_where_in(conn, stmt, a.owner, sorted(set(users)))
    return {(owner, cur): -int(bal) for owner, cur, bal in rows}


def settle(
    books: Books,
    conn: Connection,
    released: Mapping[UserCurrency, int],
    *,
    after_tx: int,
    now_us: int,
) -> dict[UserCurrency, int]:
    """Settle debts from money just made available (`released`, per payee and currency,
    already in `available`); returns what was settled. Nothing owed: one read, no write."""
    wanted = [user for (user, _cur), amount in released.items() if amount > 0]
    owed = owed_balances(books, conn, wanted, lock=True)
    settled = {k: min(owed[k], released[k]) for k in owed if released.get(k, 0) > 0}
    if not settled:
        return {}
    users = {user for user, _ in settled}
    tx_id = books.open(
        conn,
        key=f"settle:{after_tx}",
        kind="settle",
        user_id=next(iter(users)) if len(users) == 1 else None,
        now_us=now_us,
    )
    deltas: dict[AccountKey, int] = defaultdict(int)
    for (user, cur), amount in settled.items():
        deltas[(user, Kind.AVAILABLE, cur)] -= amount
        deltas[(user, Kind.OWED, cur)] += amount
    books.post(conn, tx_id, deltas, {})
    for (user, cur), amount in settled.items():
        before = owed[(user, cur)]
        outbox.record_in(
            conn,
            event_id=f"settled:{tx_id}:{cur}:{user}",
            request_id=f"settle-{tx_id}",
            user_id=user,
            stage=OWED_SETTLED,
            payload={
                "stage": OWED_SETTLED,
                "user_id": user,
                "currency": cur,
                "owed_before": before,
                "owed_after": before - amount,
                "settled": amount,
                "owed_after_shown": format_money(before - amount, cur),
            },
            at=from_epoch_us(now_us),
        )
    return settled
