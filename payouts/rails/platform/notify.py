"""Telling the platform: every terminal stage (and RETURNED) is POSTed to its webhook URL.

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

import aiohttp
from sqlalchemy import or_, select, update

from payouts.security.signing import sign
from payouts.store.database import Database
from payouts.store.tables import Notification, to_epoch_us

_NOTE = Notification.__table__  # type: ignore[attr-defined]
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
            "type": f"cashout.{n.stage.lower()}",
            "created": n.created_at.isoformat(),
            "data": json.loads(n.payload_json),
        },
        sort_keys=True,
    ).encode()


async def deliver_due(
    db: Database,
    *,
    url: str,
    secret: str,
    as_of: datetime,
    limit: int = 200,
    http_timeout: float = 5.0,
) -> Delivery:
    """POST every notification that is due; record success or the next attempt."""
    pending = await asyncio.to_thread(due, db, as_of, limit)
    delivered = failed = 0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=http_timeout)) as http:
        for n in pending:
            body = body_of(n)
            headers = {
                "Content-Type": "application/json",
                "Payouts-Event-Id": n.event_id,
                "Payouts-Signature": sign(secret, body),
            }
            error: str | None = None
            try:
                async with http.post(url, data=body, headers=headers) as resp:
                    if not 200 <= resp.status < 300:
                        error = f"HTTP {resp.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = f"{type(exc).__name__}: {exc}"[:500]
            await asyncio.to_thread(_after, db, n, as_of, error)
            if error is None:
                delivered += 1
            else:
                failed += 1
    return Delivery(delivered, failed)


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
