"""A cash-out's hold, and every way it moves: each transition once, as data.

    reserve   (none)   -> reserved   available -amount, held +amount
    post      reserved -> posted     held -amount, clearing +net, fees +fee, available +unpaid
    void      reserved -> voided     held -amount, available +amount
    reverse   posted   -> reversed   clearing -net, fees -fee, available +gross

where net = gross - fee and unpaid = amount - gross (a partial post releases the rest).
A return refunds the fee too: the payee received nothing, so they pay nothing. What a
transition releases to `available` settles what the payee owes first (`ledger.owed`); a
hold is refused while the payee owes more than the allowance the caller passes.
Every transition goes through `Books.idempotent` and `Books.post`, like every ledger write.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from payouts.domain.money import format_money
from payouts.errors import (
    InsufficientFunds,
    InvalidAmount,
    InvalidState,
    LimitExceeded,
    NotFound,
    OwedBalance,
)
from payouts.ledger.accounts import AccountKey, Kind, owner_of
from payouts.ledger.books import Books, Result
from payouts.ledger.owed import owed_balances, settle
from payouts.ledger.results import HoldReceipt, HoldStatus, check_positive
from payouts.store.tables import Hold, to_epoch_us

HOLDS = Hold.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Figures:
    """The amounts of one hold: what was reserved, what was paid out of it, the fee."""

    amount: int
    gross: int = 0
    fee: int = 0

    def __getitem__(self, name: str) -> int:
        derived = {"net": self.gross - self.fee, "unpaid": self.amount - self.gross}
        return derived[name] if name in derived else int(getattr(self, name))


@dataclass(frozen=True)
class Transition:
    op: str
    before: HoldStatus | None  # None: the transition creates the hold
    after: HoldStatus
    legs: tuple[tuple[Kind, int, str], ...]  # (account, sign, figure)
    released: str | None = None  # the figure that goes back to available

    def deltas(self, user_id: str, currency: str, f: Figures) -> dict[AccountKey, int]:
        out: dict[AccountKey, int] = {}
        for kind, sign, figure in self.legs:
            key = (owner_of(kind, user_id), str(kind), currency)
            out[key] = out.get(key, 0) + sign * f[figure]
        return out


RESERVE = Transition(
    "reserve",
    None,
    HoldStatus.RESERVED,
    ((Kind.AVAILABLE, -1, "amount"), (Kind.HELD, +1, "amount")),
)
POST = Transition(
    "post",
    HoldStatus.RESERVED,
    HoldStatus.POSTED,
    (
        (Kind.HELD, -1, "amount"),
        (Kind.CLEARING, +1, "net"),
        (Kind.FEES, +1, "fee"),
        (Kind.AVAILABLE, +1, "unpaid"),
    ),
    released="unpaid",
)
VOID = Transition(
    "void",
    HoldStatus.RESERVED,
    HoldStatus.VOIDED,
    ((Kind.HELD, -1, "amount"), (Kind.AVAILABLE, +1, "amount")),
    released="amount",
)
REVERSE = Transition(
    "reverse",
    HoldStatus.POSTED,
    HoldStatus.REVERSED,
    ((Kind.CLEARING, -1, "net"), (Kind.FEES, -1, "fee"), (Kind.AVAILABLE, +1, "gross")),
    released="gross",
)


class Holds:
    def __init__(self, books: Books) -> None:
        self.books = books

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
        owed_allowances: Mapping[str, int] | None = None,
    ) -> HoldReceipt:
        """available -> held, if the available balance covers `amount`, limits allow, and
        the payee owes, in every currency, no more than its allowance (`owed_allowances`,
        per currency; none given: nothing may be owed). What is owed in one currency stops
        cash-outs in all: a debt is not left behind while other balances are paid out."""
        check_positive(amount, "amount")
        content = {"hold_id": hold_id, "user_id": user_id, "currency": currency, "amount": amount}

        def run(conn: Connection, chash: str) -> tuple[Result, int | None]:
            now = self.books.clock()
            if conn.execute(select(HOLDS.c.id).where(HOLDS.c.id == hold_id)).first():
                raise InvalidState(f"hold {hold_id!r} exists already under another key")
            fresh: dict[AccountKey, int] = {}
            available_key = (user_id, str(Kind.AVAILABLE), currency)
            ids = self.books.accounts.ensure(conn, [available_key], fresh)
            available = self.books.balance(conn, ids[available_key], lock=True)
            allowances = owed_allowances or {}
            for (_, cur), owed in sorted(owed_balances(self.books, conn, [user_id]).items()):
                allowed = allowances.get(cur, 0)
                if owed > allowed:
                    raise OwedBalance(
                        f"owed: {user_id} owes {format_money(owed, cur)} from reversed "
                        f"earnings; cash-outs start again once it is at most "
                        f"{format_money(allowed, cur)} (new earnings pay it back first)",
                        field="owed",
                    )
            if daily_amount_limit is not None or daily_count_limit is not None:
                _check_limits(
                    conn, user_id, currency, amount, now, daily_amount_limit, daily_count_limit
                )
            if available < amount:
                raise InsufficientFunds(
                    f"amount: {format_money(amount, currency)} is more than the available "
                    f"balance of {format_money(available, currency)}"
                )
            now_us = to_epoch_us(now)
            hold = {"user_id": user_id, "currency": currency, "amount": amount}
            # the transaction first: a racing writer of the same key fails on its key
            done = self._move(conn, RESERVE, key, chash, hold_id, hold, Figures(amount), now_us)
            conn.execute(
                insert(HOLDS).values(
                    id=hold_id,
                    user_id=user_id,
                    currency=currency,
                    amount=amount,
                    status=RESERVE.after,
                    gross=0,
                    fee=0,
                    created_at=now_us,
                    updated_at=now_us,
                )
            )
            return done

        return self._receipt(self.books.idempotent(key, RESERVE.op, content, run))

    def post(self, *, key: str, hold_id: str, gross: int, fee: int) -> HoldReceipt:
        """Book a paid cash-out: held -> clearing (net) and fees; the unpaid rest -> available."""
        check_positive(gross, "gross")
        if isinstance(fee, bool) or not isinstance(fee, int) or fee < 0 or fee > gross:
            raise InvalidAmount("fee: must be an integer between 0 and gross", field="fee")

        def figures(hold: dict[str, Any]) -> Figures:
            amount, cur = hold["amount"], hold["currency"]
            if gross > amount:
                raise InvalidAmount(
                    f"gross: {format_money(gross, cur)} is more than the hold of "
                    f"{format_money(amount, cur)}",
                    field="gross",
                )
            return Figures(amount, gross, fee)

        return self._transit(POST, key, hold_id, {"gross": gross, "fee": fee}, figures)

    def void(self, *, key: str, hold_id: str, reason: str) -> HoldReceipt:
        """Release a hold that will not be paid: held -> available."""
        return self._transit(VOID, key, hold_id, {}, _as_held, reason=reason)

    def reverse(self, *, key: str, hold_id: str, reason: str) -> HoldReceipt:
        """Undo a posted cash-out the rail returned: clearing and fee -> available."""
        return self._transit(REVERSE, key, hold_id, {}, _as_held, reason=reason)

    # ------------------------------------------------------------------ internals

    def _transit(
        self,
        t: Transition,
        key: str,
        hold_id: str,
        content: dict[str, Any],
        figures: Any,
        *,
        reason: str | None = None,
    ) -> HoldReceipt:
        def run(conn: Connection, chash: str) -> tuple[Result, int | None]:
            hold = self._locked(conn, hold_id, t)
            f = figures(hold)
            now_us = self.books.now_us()
            values: dict[str, Any] = {"status": t.after, "updated_at": now_us}
            if t is POST:
                values.update(gross=f.gross, fee=f.fee)
            if reason is not None:
                values["reason"] = reason
            conn.execute(update(HOLDS).where(HOLDS.c.id == hold_id).values(**values))
            return self._move(conn, t, key, chash, hold_id, hold, f, now_us)

        return self._receipt(self.books.idempotent(key, t.op, {"hold_id": hold_id, **content}, run))

    def _move(
        self,
        conn: Connection,
        t: Transition,
        key: str,
        chash: str,
        hold_id: str,
        hold: dict[str, Any],
        f: Figures,
        now_us: int,
    ) -> tuple[Result, int]:
        user, cur = hold["user_id"], hold["currency"]
        tx_id = self.books.open(
            conn, key=key, kind=t.op, chash=chash, user_id=user, hold_id=hold_id, now_us=now_us
        )
        fresh: dict[AccountKey, int] = {}
        ids = self.books.post(conn, tx_id, t.deltas(user, cur, f), fresh)
        released = f[t.released] if t.released else 0
        if released:
            settle(self.books, conn, {(user, cur): released}, after_tx=tx_id, now_us=now_us)
        available = self.books.balance(conn, ids[(user, str(Kind.AVAILABLE), cur)])
        receipt = dict(
            op=t.op,
            hold_id=hold_id,
            transaction_id=tx_id,
            user_id=user,
            currency=cur,
            amount=f.amount,
            gross=f.gross,
            fee=f.fee,
            released=released,
            status=t.after,
            available_after=available,
        )
        return receipt, tx_id

    def _locked(self, conn: Connection, hold_id: str, t: Transition) -> dict[str, Any]:
        stmt = self.books.db.dialect.for_update(select(HOLDS).where(HOLDS.c.id == hold_id))
        row = conn.execute(stmt).mappings().first()
        if row is None:
            raise NotFound(f"hold {hold_id!r} does not exist")
        if row["status"] != t.before:
            raise InvalidState(f"cannot {t.op} hold {hold_id!r}: it is {row['status']}")
        return dict(row)

    @staticmethod
    def _receipt(done: tuple[Result, bool]) -> HoldReceipt:
        result, replayed = done
        return HoldReceipt(**result, replayed=replayed)


def _as_held(hold: dict[str, Any]) -> Figures:
    return Figures(hold["amount"], hold["gross"], hold["fee"])


def _check_limits(
    conn: Connection,
    user_id: str,
    currency: str,
    amount: int,
    now: datetime,
    amount_limit: int | None,
    count_limit: int | None,
) -> None:
    """Rolling 24 hours: holds that are live (reserved, posted or reversed) count; a voided
    one does not use up the payee's allowance."""
    live = (
        HOLDS.c.user_id == user_id,
        HOLDS.c.created_at > now - timedelta(days=1),
        HOLDS.c.status != HoldStatus.VOIDED,
    )
    if count_limit is not None:
        count = conn.execute(select(func.count()).select_from(HOLDS).where(*live)).scalar_one()
        if count >= count_limit:
            raise LimitExceeded(
                f"limits.daily_count: {count} cash-outs in the last 24 hours; "
                f"the limit is {count_limit}"
            )
    if amount_limit is not None:
        total = int(
            conn.execute(
                select(func.coalesce(func.sum(HOLDS.c.amount), 0)).where(
                    *live, HOLDS.c.currency == currency
                )
            ).scalar_one()
        )
        if total + amount > amount_limit:
            raise LimitExceeded(
                f"amount: {format_money(amount, currency)} would bring the last 24 hours' "
                f"cash-outs to {format_money(total + amount, currency)}; the daily limit is "
                f"{format_money(amount_limit, currency)}"
            )
