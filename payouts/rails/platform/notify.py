"""Telling the platform: every terminal stage (and RETURNED) of a cash-out, and what happens
to a payee (payout details changed, an amount owed after reversed earnings, paid back), is
POSTed to its webhook URL.

The outbox rows are written in the same local activity as the ledger change they report,
so none is lost if a worker dies; a scheduled workflow delivers what is due. Each request
carries `Payouts-Event-Id` (the platform de-duplicates by it) and `Payouts-Signature`
(HMAC over timestamp and body). A failed delivery is retried with exponential backoff
(10 s, 20 s, 40 s ... at most an hour) and its last error is kept.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update

from payouts.domain.profiles import CHANGED
from payouts.domain.reversals import OWED_CHANGED, OWED_SETTLED
from payouts.rails.platform.port import Event, PlatformEndpoint
from payouts.store.database import Database
from payouts.store.tables import Notification, to_epoch_us

_NOTE = Notification.__table__  # type: ignore[attr-defined]
PAYEE_STAGES = (CHANGED, OWED_CHANGED, OWED_SETTLED)  # about a payee, not one cash-out
FIRST_RETRY = timedelta(seconds=10)
MAX_RETRY = timedelta(hours=1)


@dataclass(frozen=True)
class Delivery:
    delivered: int
    failed: int


def backoff(attempts: int) -> timedelta:
    """10 s after the first failure, doubling, at most an hour."""
    wait: timedelta = FIRST_RETRY * (2 ** max(attempts - 1, 0))
    return min(wait, MAX_RETRY)


def due(db: Database, as_of: datetime, limit: int) -> list[Notification]:
    with db.read_connection() as conn:
        rows = conn.execute(
            select(_NOTE)
            .where(
                _NOTE.c.delivered_at.is_(None),
                or_(_NOTE.c.next_attempt_at.is_(None), _NOTE.c.next_attempt_at <= as_of),
            )
            .order_by(_NOTE.c.created_at)
            .limit(limit)
        ).all()
    return [Notification.model_validate(dict(r._mapping)) for r in rows]


def body_of(n: Notification) -> bytes:
    return json.dumps(
        {
            "event_id": n.event_id,
            "type": f"{'payee' if n.stage in PAYEE_STAGES else 'cashout'}.{n.stage.lower()}",
            "created": n.created_at.isoformat(),
            "data": json.loads(n.payload_json),
        },
        sort_keys=True,
    ).encode()


async def deliver_due(
    db: Database, platform: PlatformEndpoint, *, as_of: datetime, limit: int = 200
) -> Delivery:
    """Send every notification that is due; record success or the next attempt."""
    pending = await asyncio.to_thread(due, db, as_of, limit)
    errors = await platform.send([Event(n.event_id, body_of(n)) for n in pending])
    for n, error in zip(pending, errors, strict=True):
        await asyncio.to_thread(_after, db, n, as_of, error)
    failed = sum(1 for e in errors if e is not None)
    return Delivery(len(pending) - failed, failed)


def _after(db: Database, n: Notification, as_of: datetime, error: str | None) -> None:
    with db.write_connection() as conn:
        values: dict[str, object] = {"attempts": n.attempts + 1, "last_error": error}
        if error is None:
            values["delivered_at"] = to_epoch_us(as_of)
        else:
            values["next_attempt_at"] = to_epoch_us(as_of + backoff(n.attempts + 1))
        conn.execute(update(_NOTE).where(_NOTE.c.event_id == n.event_id).values(**values))


def outbox(db: Database) -> list[Notification]:
    with db.read_connection() as conn:
        rows = conn.execute(select(_NOTE).order_by(_NOTE.c.created_at)).all()
    return [Notification.model_validate(dict(r._mapping)) for r in rows]
