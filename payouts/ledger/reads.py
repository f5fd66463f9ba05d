"""Reading the books: balances (O(1)), per-currency totals, and the audit of invariants."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import and_, func, or_, select

from payouts.ledger.accounts import ACCOUNTS, PLATFORM, Kind
from payouts.ledger.books import LEGS
from payouts.ledger.results import Balance, Totals
from payouts.store.database import Database
from payouts.store.tables import Earning, Hold

EARNINGS = Earning.__table__  # type: ignore[attr-defined]


class Reads:
    def __init__(self, db: Database) -> None:
        self.db = db

    def balance(self, user_id: str, currency: str) -> Balance:
        """O(1): the three balance rows of one user and currency."""
        with self.db.read_connection() as conn:
            rows = conn.execute(
                select(ACCOUNTS.c.kind, ACCOUNTS.c.balance).where(
                    ACCOUNTS.c.owner == user_id, ACCOUNTS.c.currency == currency
                )
            )
            found = _payee_view({kind: bal for kind, bal in rows})
        return Balance(user_id=user_id, currency=currency, **found)

    def balances(self, user_id: str) -> list[Balance]:
        with self.db.read_connection() as conn:
            rows = conn.execute(
                select(ACCOUNTS.c.currency, ACCOUNTS.c.kind, ACCOUNTS.c.balance)
                .where(ACCOUNTS.c.owner == user_id)
                .order_by(ACCOUNTS.c.currency)
            )
            by_cur: dict[str, dict[str, int]] = defaultdict(dict)
            for cur, kind, bal in rows:
                by_cur[cur][kind] = bal
        return [Balance(user_id=user_id, currency=c, **_payee_view(v)) for c, v in by_cur.items()]

    def totals(self, currency: str) -> Totals:
        """Per-currency position: earned - reversed == paid out + fees + held + available +
        pending - owed."""
        with self.db.read_connection() as conn:
            rows = conn.execute(
                select(ACCOUNTS.c.kind, func.coalesce(func.sum(ACCOUNTS.c.balance), 0))
                .where(ACCOUNTS.c.currency == currency)
                .group_by(ACCOUNTS.c.kind)
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
            reversed=by_kind.get(Kind.REVERSED, 0),
            owed=-by_kind.get(Kind.OWED, 0),
        )

    def currencies(self) -> list[str]:
        with self.db.read_connection() as conn:
            rows = conn.execute(select(ACCOUNTS.c.currency).distinct())
            return sorted(r[0] for r in rows)

    def audit(self) -> list[str]:
        """Every broken invariant, as text: unbalanced transactions, balances that differ
        from the sum of their legs, negative user balances (an `owed` one above zero), an
        earning reversed beyond its amount, a currency whose totals do not conserve. Empty
        when the books are sound."""
        problems: list[str] = []
        acc, leg = ACCOUNTS.c, LEGS.c
        with self.db.read_connection() as conn:
            unbalanced = conn.execute(
                select(leg.transaction_id, acc.currency, func.sum(leg.amount))
                .join(ACCOUNTS, acc.id == leg.account_id)
                .group_by(leg.transaction_id, acc.currency)
                .having(func.sum(leg.amount) != 0)
            )
            for tx, cur, total in unbalanced:
                problems.append(f"transaction {tx} legs sum to {total} {cur}, not zero")
            leg_sums = (
                select(leg.account_id, func.sum(leg.amount).label("total"))
                .group_by(leg.account_id)
                .subquery()
            )
            drift = conn.execute(
                select(acc.id, acc.owner, acc.kind, acc.balance, leg_sums.c.total)
                .outerjoin(leg_sums, leg_sums.c.account_id == acc.id)
                .where(acc.balance != func.coalesce(leg_sums.c.total, 0))
            )
            for acc_id, owner, kind, bal, total in drift:
                problems.append(f"account {acc_id} ({owner}/{kind}) is {bal}, legs sum to {total}")
            negative = conn.execute(
                select(acc.owner, acc.kind, acc.currency, acc.balance).where(
                    acc.owner != PLATFORM,
                    or_(
                        and_(acc.kind != Kind.OWED, acc.balance < 0),
                        and_(acc.kind == Kind.OWED, acc.balance > 0),
                    ),
                )
            )
            for owner, kind, cur, bal in negative:
                sign = "above zero" if kind == Kind.OWED else "negative"
                problems.append(f"{owner}/{kind} is {sign}: {bal} {cur}")
            e = EARNINGS.c
            out_of_bounds = conn.execute(
                select(e.event_id, e.reversed, e.amount)
                .where(or_(e.reversed < 0, e.reversed > e.amount))
                .limit(20)
            )
            for event_id, reversed_, amount in out_of_bounds:
                problems.append(f"earning {event_id!r} has {reversed_} reversed of {amount}")
        for cur in self.currencies():
            t = self.totals(cur)
            if not t.conserved:
                problems.append(
                    f"{cur} does not conserve: earned {t.earned} - reversed {t.reversed} != "
                    f"paid out {t.paid_out} + fees {t.fees} + held {t.held} + available "
                    f"{t.available} + pending {t.pending} - owed {t.owed}"
                )
        return problems

    def hold(self, hold_id: str) -> Hold | None:
        with self.db.read() as s:
            return s.get(Hold, hold_id)


def _payee_view(by_kind: dict[str, int]) -> dict[str, int]:
    """A payee's balances as they read them: the `owed` account (at or below zero in the
    books) as the positive amount owed."""
    view = dict(by_kind)
    if Kind.OWED in view:
        view["owed"] = -view.pop(Kind.OWED)
    return view
