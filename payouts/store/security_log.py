"""The security log: every refusal at a trust boundary (and what it claimed), kept in the
ledger database. Written by admission, the webhook ingress and the CLI's key checks;
`payouts security log` shows it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select

from payouts.store.database import Database
from payouts.store.tables import SecurityEvent, to_epoch_us

EVENTS = SecurityEvent.__table__  # type: ignore[attr-defined]


def record(
    db: Database,
    *,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    reason: str,
    outcome: str = "refused",
) -> None:
    with db.write_connection() as conn:
        conn.execute(
            insert(EVENTS).values(
                at=to_epoch_us(at),
                actor=actor[:128],
                action=action[:64],
                subject=subject[:200],
                outcome=outcome[:16],
                reason=reason[:500],
            )
        )


def entries(db: Database, limit: int = 200) -> list[SecurityEvent]:
    """The newest entries first."""
    with db.read_connection() as conn:
        rows = conn.execute(select(EVENTS).order_by(EVENTS.c.id.desc()).limit(limit))
        return [SecurityEvent.model_validate(dict(r._mapping)) for r in rows]
