"""The notification outbox: events for the platform, written in the ledger database."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Connection, select

from payouts.store.database import Database
from payouts.store.tables import Notification, to_epoch_us

_NOTE = Notification.__table__  # type: ignore[attr-defined]


def record(
    db: Database,
    *,
    event_id: str,
    request_id: str,
    user_id: str,
    stage: str,
    payload: dict[str, object],
    at: datetime,
) -> bool:
    """Insert once per event id; returns False when it was already there."""
    with db.write_connection() as conn:
        return record_in(
            conn, event_id=event_id, request_id=request_id, user_id=user_id, stage=stage,
            payload=payload, at=at,
        )  # fmt: skip


def recorded(conn: Connection, event_id: str) -> bool:
    """Is this event in the outbox (the change that writes it was applied)?"""
    found = conn.execute(select(_NOTE.c.event_id).where(_NOTE.c.event_id == event_id)).first()
    return found is not None


def record_in(
    conn: Connection,
    *,
    event_id: str,
    request_id: str,
    user_id: str,
    stage: str,
    payload: dict[str, object],
    at: datetime,
) -> bool:
    """`record`, inside a transaction the caller holds (written with its other changes)."""
    if conn.execute(select(_NOTE.c.event_id).where(_NOTE.c.event_id == event_id)).first():
        return False
    conn.execute(
        _NOTE.insert().values(
            event_id=event_id,
            request_id=request_id,
            user_id=user_id,
            stage=stage,
            payload_json=json.dumps(payload, sort_keys=True),
            created_at=to_epoch_us(at),
            attempts=0,
        )
    )
    return True
