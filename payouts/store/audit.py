"""The reviewer audit trail, written by the cash-out workflow through a local activity."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from payouts.domain.cashout import AuditEntry
from payouts.store.database import Database
from payouts.store.tables import ReviewAudit

_AUDIT = ReviewAudit.__table__  # type: ignore[attr-defined]


def record(db: Database, entries: list[AuditEntry]) -> int:
    """Insert each entry once (idempotent by workflow id and sequence number)."""
    written = 0
    for e in entries:
        r = e.record
        try:
            with db.write_connection() as conn:
                conn.execute(
                    _AUDIT.insert().values(
                        workflow_id=e.workflow_id,
                        request_id=e.request_id,
                        seq=e.seq,
                        at=r.at,
                        reviewer=r.reviewer,
                        decision=r.decision,
                        reason=r.reason,
                        accepted=r.accepted,
                        refusal=r.refusal[:200],
                        via=r.via,
                        client=r.client,
                    )
                )
            written += 1
        except IntegrityError:  # written by an earlier attempt of the same activity
            pass
    return written


def entries(db: Database, workflow_id: str | None = None) -> list[ReviewAudit]:
    """The trail, oldest first (all cash-outs, or one)."""
    stmt = select(_AUDIT).order_by(_AUDIT.c.at, _AUDIT.c.seq)
    if workflow_id is not None:
        stmt = stmt.where(_AUDIT.c.workflow_id == workflow_id)
    with db.read_connection() as conn:
        return [ReviewAudit.model_validate(dict(r._mapping)) for r in conn.execute(stmt)]
