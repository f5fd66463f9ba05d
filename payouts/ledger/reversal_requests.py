"""The outcome of each signed reversal the worker decided, by reversal id.

A refused reversal moves nothing, so the ledger alone would not remember it: the same
signed request run again later (under its own workflow id, by anyone with Temporal access,
within its 15 minutes) could then apply, after the platform had already sent the
reversal again under a new id. So every decided request is recorded, applied or refused,
with a digest of what it asked; the same id answers its first outcome, and another
request under that id is refused.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from payouts.store.database import Database
from payouts.store.tables import ReversalRequestRecord, to_epoch_us

REQUESTS = ReversalRequestRecord.__table__  # type: ignore[attr-defined]


def first_outcome(db: Database, reversal_id: str) -> ReversalRequestRecord | None:
    with db.read_connection() as conn:
        row = conn.execute(select(REQUESTS).where(REQUESTS.c.id == reversal_id)).first()
    return None if row is None else ReversalRequestRecord.model_validate(dict(row._mapping))


def record_outcome(
    db: Database, reversal_id: str, digest: str, *, applied: bool, refusal: str, at: datetime
) -> None:
    """Kept once: a second writer of the same id changes nothing."""
    with db.write_connection() as conn:
        conn.execute(
            db.dialect.insert_new(REQUESTS).values(
                id=reversal_id,
                digest=digest,
                applied=applied,
                refusal=refusal[:500],
                decided_at=to_epoch_us(at),
            )
        )
