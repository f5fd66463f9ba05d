"""What the bank pipeline set aside: batch files that failed the schema and report files
it could not read. Each is kept with its reason (`payouts batches` lists them); neither
blocks the batches and reports after it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from payouts.errors import InvalidState
from payouts.store.database import Database
from payouts.store.tables import BankBatch, BankItem, BankReportFile, to_epoch_us

_ITEM = BankItem.__table__  # type: ignore[attr-defined]
_BATCH = BankBatch.__table__  # type: ignore[attr-defined]
_FILE = BankReportFile.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ReportFileRow:
    name: str
    kind: str
    received_at: datetime
    status: str
    reason: str | None


def quarantine_batch(
    db: Database, batch_id: str, *, reason: str, rejected: dict[str, str], at: datetime
) -> int:
    """A batch whose file cannot go (it fails the schema): the batch is kept, quarantined
    with its reason; the items in `rejected` (end-to-end id -> why) are rejected, and the
    rest go back to the queue for the next cut. Only a batch that never left can be
    quarantined, so its items were never with the bank. Returns how many were requeued."""
    now = to_epoch_us(at)
    with db.write_connection() as conn:
        quarantined = conn.execute(
            update(_BATCH)
            .where(_BATCH.c.id == batch_id, _BATCH.c.status == "created")
            .values(status="quarantined", reason=reason[:500])
        ).rowcount
        if not quarantined:
            raise InvalidState(f"batch {batch_id}: only a batch not yet submitted is quarantined")
        for e2e, why in sorted(rejected.items()):
            conn.execute(
                update(_ITEM)
                .where(_ITEM.c.end_to_end_id == e2e, _ITEM.c.batch_id == batch_id)
                .values(status="rejected", reason_code="FF01", reason=why[:200], updated_at=now)
            )
        return int(
            conn.execute(
                update(_ITEM)
                .where(_ITEM.c.batch_id == batch_id, _ITEM.c.status == "sent")
                .values(status="queued", batch_id=None, updated_at=now)
            ).rowcount
        )


def quarantine_report(db: Database, *, name: str, reason: str, at: datetime) -> bool:
    """A report file we cannot read: recorded (so it is not read again) as quarantined."""
    with db.write_connection() as conn:
        return bool(
            conn.execute(
                db.dialect.insert_new(_FILE).values(
                    name=name, kind="unreadable", message_id="", items=0,
                    received_at=to_epoch_us(at), status="quarantined", reason=reason[:500],
                )
            ).rowcount
        )  # fmt: skip


def report_files(db: Database, *, status: str | None = None) -> list[ReportFileRow]:
    with db.read_connection() as conn:
        stmt = select(_FILE).order_by(_FILE.c.received_at, _FILE.c.name)
        if status is not None:
            stmt = stmt.where(_FILE.c.status == status)
        return [
            ReportFileRow(r.name, r.kind, r.received_at, r.status, r.reason)
            for r in conn.execute(stmt).all()
        ]
