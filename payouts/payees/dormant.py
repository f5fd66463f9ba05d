"""Dormant balances: a payee with no standing instruction in a currency, whose balance in it
has not moved (no earning, no cash-out, no reversal) for the policy's `automatic.dormant_days`,
is paid
to their default saved destination: bank first, then wallet, then gift card.

One query per page: the candidates (a default destination, a balance, no standing
instruction) with the time of their last earning, last cash-out and last reversal in that
currency (each indexed by user and time).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, func, literal, select, tuple_

from payouts.domain.policy import Method
from payouts.payees.tables import ACCOUNTS as _ACCOUNTS
from payouts.payees.tables import AUTO as _AUTO
from payouts.payees.tables import EARNINGS as _EARNINGS
from payouts.payees.tables import HOLDS as _HOLDS
from payouts.payees.tables import PROFILES as _PROFILE
from payouts.payees.tables import REVERSALS as _REVERSALS
from payouts.store.database import Database
from payouts.store.tables import to_epoch_us

PREFERENCE = (Method.BANK_TRANSFER, Method.WALLET, Method.GIFT_CARD)


@dataclass(frozen=True)
class Dormant:
    """A candidate: their default destination (the preferred method) and balance, and
    whether it is dormant (untouched since before the cutoff)."""

    user_id: str
    currency: str
    destination_id: str
    method: Method
    available: int
    dormant: bool

    @property
    def cursor(self) -> str:
        return f"{self.user_id}|{self.currency}"


def dormant_page(
    db: Database, after: str, limit: int, cutoff: datetime
) -> tuple[list[Dormant], str]:
    """The candidates among the next `limit` rows after the cursor `user|currency` (a payee
    with several defaults has a row per method: the preferred one comes first, the rest
    are dropped), and the next cursor ("" after the last page)."""
    user, _, currency = after.partition("|")
    available = _ACCOUNTS.alias("available")
    cur = available.c.currency
    last_earning = (
        select(func.max(_EARNINGS.c.earned_at))
        .where(_EARNINGS.c.user_id == _PROFILE.c.user_id, _EARNINGS.c.currency == cur)
        .scalar_subquery()
    )
    last_cashout = (
        select(func.max(_HOLDS.c.created_at))
        .where(_HOLDS.c.user_id == _PROFILE.c.user_id, _HOLDS.c.currency == cur)
        .scalar_subquery()
    )
    last_reversal = (
        select(func.max(_REVERSALS.c.created_at))
        .where(_REVERSALS.c.user_id == _PROFILE.c.user_id, _REVERSALS.c.currency == cur)
        .scalar_subquery()
    )
    rank = case({m.value: i for i, m in enumerate(PREFERENCE)}, value=_PROFILE.c.method, else_=9)
    stmt = (
        select(
            _PROFILE.c.user_id,
            _PROFILE.c.id,
            _PROFILE.c.method,
            cur,
            available.c.balance,
            last_earning.label("last_earning"),
            last_cashout.label("last_cashout"),
            last_reversal.label("last_reversal"),
        )
        .join(
            available,
            and_(
                available.c.owner == _PROFILE.c.user_id,
                available.c.kind == "available",
                available.c.balance > 0,
            ),
        )
        .outerjoin(_AUTO, and_(_AUTO.c.user_id == _PROFILE.c.user_id, _AUTO.c.currency == cur))
        .where(
            _PROFILE.c.is_default.is_(True),
            _PROFILE.c.status == "active",
            _AUTO.c.user_id.is_(None),
            tuple_(_PROFILE.c.user_id, cur) > tuple_(literal(user), literal(currency)),
        )
        .order_by(_PROFILE.c.user_id, cur, rank)
        .limit(limit)
    )
    with db.read_connection() as conn:
        rows = conn.execute(stmt).all()
    found: dict[tuple[str, str], Dormant] = {}
    cutoff_us = to_epoch_us(cutoff)
    for r in rows:
        if (r.user_id, r.currency) in found:
            continue
        touched = [t for t in (r.last_earning, r.last_cashout, r.last_reversal) if t is not None]
        found[(r.user_id, r.currency)] = Dormant(
            r.user_id, r.currency, r.id, Method(r.method), int(r.balance),
            dormant=all(_us(t) < cutoff_us for t in touched),
        )  # fmt: skip
    last = f"{rows[-1].user_id}|{rows[-1].currency}" if len(rows) == limit else ""
    return list(found.values()), last


def _us(value: object) -> int:
    """A MAX over a time column: a datetime, or the raw epoch microseconds."""
    return to_epoch_us(value) if isinstance(value, datetime) else int(str(value))
