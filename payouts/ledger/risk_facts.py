"""Facts the fraud rules need, read from the ledger database, and the destination registry.

Destinations are recorded as a keyed hash (HMAC-SHA256 with the deployment's secret): the
registry can tell "same destination" without ever storing an account number or address.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta

from sqlalchemy import Connection, func, select

from payouts.domain.cashout import BankAccount, Destination, SavedRef, WalletAccount
from payouts.domain.risk import RiskFacts
from payouts.errors import InvalidState
from payouts.ledger.results import HoldStatus
from payouts.store.database import Database
from payouts.store.dialect import Dialect
from payouts.store.tables import Earning, EarningReversal, Hold, PayoutDestination, to_epoch_us

_EARN = Earning.__table__  # type: ignore[attr-defined]
_HOLD = Hold.__table__  # type: ignore[attr-defined]
_DEST = PayoutDestination.__table__  # type: ignore[attr-defined]
_REVERSAL = EarningReversal.__table__  # type: ignore[attr-defined]


def destination_fingerprint(destination: Destination, key: bytes) -> str:
    if isinstance(destination, SavedRef):
        raise InvalidState("a saved destination is resolved before it is fingerprinted")
    if isinstance(destination, BankAccount):
        canonical = "iban:" + destination.iban.replace(" ", "").upper()
    elif isinstance(destination, WalletAccount):
        canonical = "wallet:" + destination.wallet_id.strip().lower()
    else:
        canonical = "email:" + destination.email.strip().lower()
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


def gather(
    db: Database,
    *,
    user_id: str,
    currency: str,
    amount: int,
    fingerprint: str,
    hold_id: str,
    as_of: datetime,
) -> RiskFacts:
    """Read the facts and record this destination's use, in one write transaction."""
    with db.write_connection() as conn:
        facts = _read(conn, user_id, currency, amount, fingerprint, hold_id, as_of)
        _record_destination(conn, db.dialect, user_id, fingerprint, as_of)
    return facts


def _read(
    conn: Connection,
    user_id: str,
    currency: str,
    amount: int,
    fingerprint: str,
    hold_id: str,
    as_of: datetime,
) -> RiskFacts:
    first = conn.execute(
        select(func.min(_EARN.c.earned_at)).where(_EARN.c.user_id == user_id)
    ).scalar_one()
    not_this = (_HOLD.c.user_id == user_id, _HOLD.c.id != hold_id)

    def holds_since(delta: timedelta) -> int:
        return int(
            conn.execute(
                select(func.count())
                .select_from(_HOLD)
                .where(
                    *not_this,
                    _HOLD.c.created_at > as_of - delta,
                    _HOLD.c.status != HoldStatus.VOIDED,
                )
            ).scalar_one()
        )

    paid = int(
        conn.execute(
            select(func.count())
            .select_from(_HOLD)
            .where(*not_this, _HOLD.c.status.in_([HoldStatus.POSTED, HoldStatus.REVERSED]))
        ).scalar_one()
    )

    def earned(start: timedelta, end: timedelta) -> int:
        return int(
            conn.execute(
                select(func.coalesce(func.sum(_EARN.c.amount), 0)).where(
                    _EARN.c.user_id == user_id,
                    _EARN.c.currency == currency,
                    _EARN.c.earned_at > as_of - start,
                    _EARN.c.earned_at <= as_of - end,
                )
            ).scalar_one()
        )

    others = int(
        conn.execute(
            select(func.count())
            .select_from(_DEST)
            .where(_DEST.c.fingerprint == fingerprint, _DEST.c.user_id != user_id)
        ).scalar_one()
    )
    mine = conn.execute(
        select(_DEST.c.fingerprint, _DEST.c.first_used_at).where(_DEST.c.user_id == user_id)
    ).all()
    this_first = next((when for fp, when in mine if fp == fingerprint), None)
    return RiskFacts(
        as_of=as_of,
        currency=currency,
        amount=amount,
        first_earning_at=first,
        cashouts_24h=holds_since(timedelta(days=1)),
        cashouts_7d=holds_since(timedelta(days=7)),
        previous_paid=paid,
        earned_24h=earned(timedelta(days=1), timedelta(0)),
        earned_prior_30d=earned(timedelta(days=31), timedelta(days=1)),
        destination_other_users=others,
        destination_first_used_at=this_first,
        other_destinations=sum(1 for fp, _ in mine if fp != fingerprint),
    )


def _record_destination(
    conn: Connection, dialect: Dialect, user_id: str, fingerprint: str, as_of: datetime
) -> None:
    when = to_epoch_us(as_of)
    row = {"user_id": user_id, "fingerprint": fingerprint, "first_used_at": when}
    conn.execute(
        dialect.upsert(
            _DEST,
            {**row, "last_used_at": when},
            ["user_id", "fingerprint"],
            {"last_used_at": when},
        )
    )


def owed_peaks(db: Database, user_id: str, since: datetime) -> dict[str, tuple[int, datetime]]:
    """Per currency, the most this payee owed after a reversal since `since`, and when."""
    r = _REVERSAL.c
    with db.read_connection() as conn:
        rows = conn.execute(
            select(r.currency, r.owed_after, r.created_at)
            .where(r.user_id == user_id, r.created_at > since, r.owed_after > 0)
            .order_by(r.owed_after.desc())
        ).all()
    peaks: dict[str, tuple[int, datetime]] = {}
    for cur, owed, at in rows:
        peaks.setdefault(cur, (int(owed), at))
    return peaks
