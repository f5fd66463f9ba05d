"""The batch book: bank-transfer cash-outs from queue to batch file to the bank's verdict.

An item's status only moves forward: queued -> sent -> accepted -> booked -> returned, or
to rejected from sent/accepted. Reports are applied once per file name; an answer that
would move an item backwards (a late acceptance after its booking) is ignored. Each
cash-out workflow is told of every new status once (`signalled` remembers the last one).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, select, update

from payouts.domain.policy import BatchCost
from payouts.errors import InvalidState
from payouts.rails.bank.reports import Report
from payouts.store.database import Database
from payouts.store.tables import BankBatch, BankItem, BankReportFile, to_epoch_us

_ITEM = BankItem.__table__  # type: ignore[attr-defined]
_BATCH = BankBatch.__table__  # type: ignore[attr-defined]
_FILE = BankReportFile.__table__  # type: ignore[attr-defined]

RANK = {"queued": 0, "sent": 1, "accepted": 2, "rejected": 3, "booked": 3, "returned": 4}
LEFT = ("sent", "accepted", "booked", "returned")  # the transfer is with the bank
SIGNALLED = ("sent", "accepted", "rejected", "booked", "returned")


def end_to_end_id(workflow_id: str) -> str:
    """A stable 32-character id (ISO Max35Text) that names a cash-out in bank files."""
    return "PO" + hashlib.sha256(workflow_id.encode()).hexdigest()[:30].upper()


@dataclass(frozen=True)
class ItemRow:
    end_to_end_id: str
    workflow_id: str
    request_id: str
    currency: str
    amount: int
    iban: str
    bic: str | None
    holder_name: str
    status: str
    batch_id: str | None
    reason_code: str | None
    reason: str | None


@dataclass(frozen=True)
class BatchRow:
    id: str
    currency: str
    created_at: datetime
    file_name: str
    status: str
    items: tuple[ItemRow, ...]
    unbatched_cost: int
    batch_cost: int
    fee_saved: int
    reason: str | None = None


def _item(row: Any) -> ItemRow:
    return ItemRow(
        end_to_end_id=row.end_to_end_id,
        workflow_id=row.workflow_id,
        request_id=row.request_id,
        currency=row.currency,
        amount=row.amount,
        iban=row.iban,
        bic=row.bic,
        holder_name=row.holder_name,
        status=row.status,
        batch_id=row.batch_id,
        reason_code=row.reason_code,
        reason=row.reason,
    )


def enqueue(
    db: Database,
    *,
    workflow_id: str,
    request_id: str,
    user_id: str,
    currency: str,
    amount: int,
    iban: str,
    bic: str | None,
    holder_name: str,
    at: datetime,
    instant: bool = False,
) -> str:
    """Queue a transfer for the next batch; idempotent by workflow id. `instant`: in a
    batch of its own at once (SEPA Instant style; its file is sent by the caller)."""
    e2e = end_to_end_id(workflow_id)
    with db.write_connection() as conn:
        if conn.execute(select(_ITEM.c.end_to_end_id).where(_ITEM.c.end_to_end_id == e2e)).first():
            return e2e
        batch_id = None
        if instant:
            batch_id = f"I{at:%Y%m%d%H%M%S}{e2e[-12:]}"
            conn.execute(
                insert(_BATCH).values(
                    id=batch_id, currency=currency, created_at=to_epoch_us(at), items=1,
                    total=amount, file_name=f"{batch_id}.pain.001.xml", status="created",
                    unbatched_cost=0, batch_cost=0, fee_saved=0,
                )
            )  # fmt: skip
        conn.execute(
            insert(_ITEM).values(
                end_to_end_id=e2e,
                workflow_id=workflow_id,
                request_id=request_id,
                user_id=user_id,
                currency=currency,
                amount=amount,
                iban=iban,
                bic=bic,
                holder_name=holder_name,
                status="sent" if instant else "queued",
                batch_id=batch_id,
                queued_at=to_epoch_us(at),
                updated_at=to_epoch_us(at),
                signalled="",
            )
        )
    return e2e


def cut_batches(
    db: Database, *, as_of: datetime, max_items: int, costs: dict[str, BatchCost]
) -> list[str]:
    """Group every item queued up to `as_of` into batches: per currency, oldest first, at
    most `max_items` each. Returns the new batch ids (the files are written afterwards)."""
    made: list[str] = []
    stamp = as_of.strftime("%Y%m%d%H%M%S")
    with db.write_connection() as conn:
        rows = conn.execute(
            select(_ITEM.c.end_to_end_id, _ITEM.c.currency, _ITEM.c.amount)
            .where(_ITEM.c.status == "queued", _ITEM.c.queued_at <= as_of)
            .order_by(_ITEM.c.currency, _ITEM.c.queued_at, _ITEM.c.end_to_end_id)
        ).all()
        by_currency: dict[str, list[Any]] = {}
        for r in rows:
            by_currency.setdefault(r.currency, []).append(r)
        for cur, items in by_currency.items():
            cost = costs.get(cur, BatchCost(item_cost=0, batch_cost=0))
            # numbered on from any batch cut at the same second (a re-cut after a quarantine)
            taken = conn.execute(
                select(func.count()).where(_BATCH.c.id.like(f"B{stamp}{cur}%"))
            ).scalar_one()
            for n, start in enumerate(range(0, len(items), max_items), start=taken + 1):
                chunk = items[start : start + max_items]
                batch_id = f"B{stamp}{cur}{n:03d}"
                unbatched = cost.item_cost * len(chunk)
                conn.execute(
                    insert(_BATCH).values(
                        id=batch_id,
                        currency=cur,
                        created_at=to_epoch_us(as_of),
                        items=len(chunk),
                        total=sum(r.amount for r in chunk),
                        file_name=f"{batch_id}.pain.001.xml",
                        status="created",
                        unbatched_cost=unbatched,
                        batch_cost=cost.batch_cost,
                        fee_saved=unbatched - cost.batch_cost,
                    )
                )
                conn.execute(
                    update(_ITEM)
                    .where(_ITEM.c.end_to_end_id.in_([r.end_to_end_id for r in chunk]))
                    .values(status="sent", batch_id=batch_id, updated_at=to_epoch_us(as_of))
                )
                made.append(batch_id)
    return made


def batches(
    db: Database, *, status: str | None = None, day: datetime | None = None
) -> list[BatchRow]:
    """Batches with their items (all, by status, or created on the day of `day`)."""
    with db.read_connection() as conn:
        stmt = select(_BATCH).order_by(_BATCH.c.created_at, _BATCH.c.id)
        if status is not None:
            stmt = stmt.where(_BATCH.c.status == status)
        if day is not None:
            start = day.replace(hour=0, minute=0, second=0, microsecond=0)
            stmt = stmt.where(
                _BATCH.c.created_at >= start,
                _BATCH.c.created_at < to_epoch_us(start) + 86_400_000_000,
            )
        found = conn.execute(stmt).all()
        out = []
        for b in found:
            items = conn.execute(
                select(_ITEM).where(_ITEM.c.batch_id == b.id).order_by(_ITEM.c.end_to_end_id)
            ).all()
            out.append(
                BatchRow(
                    id=b.id,
                    currency=b.currency,
                    created_at=b.created_at,
                    file_name=b.file_name,
                    status=b.status,
                    items=tuple(_item(i) for i in items),
                    unbatched_cost=b.unbatched_cost,
                    batch_cost=b.batch_cost,
                    fee_saved=b.fee_saved,
                    reason=b.reason,
                )
            )
    return out


def mark_submitted(db: Database, batch_id: str) -> None:
    with db.write_connection() as conn:
        conn.execute(update(_BATCH).where(_BATCH.c.id == batch_id).values(status="submitted"))


def apply_report(db: Database, *, name: str, report: Report, at: datetime) -> int:
    """Apply one bank file (once per name); returns how many items moved forward."""
    moved = 0
    now = to_epoch_us(at)
    with db.write_connection() as conn:
        # Claim the file name first: a second run applying the same file at the same time
        # waits here for the first to commit, then skips it.
        claimed = conn.execute(
            db.dialect.insert_new(_FILE).values(
                name=name,
                kind=report.kind,
                message_id=report.message_id[:35],
                items=len(report.items),
                received_at=now,
            )
        ).rowcount
        if not claimed:
            return 0
        if report.kind == "pain.002" and report.file_status == "RJCT" and not report.items:
            # The whole file was refused: every item of the batch is rejected.
            conn.execute(
                update(_ITEM)
                .where(
                    _ITEM.c.batch_id == report.original_message_id,
                    _ITEM.c.status.in_(["sent", "accepted"]),
                )
                .values(
                    status="rejected", reason_code="FF01", reason="file rejected", updated_at=now
                )
            )
        for item in report.items:
            row = conn.execute(
                select(_ITEM.c.status).where(_ITEM.c.end_to_end_id == item.end_to_end_id)
            ).first()
            if row is None or not _forward(row.status, item.kind):
                continue
            conn.execute(
                update(_ITEM)
                .where(_ITEM.c.end_to_end_id == item.end_to_end_id)
                .values(
                    status=item.kind,
                    reason_code=item.code or None,
                    reason=item.reason or None,
                    updated_at=now,
                )
            )
            moved += 1
    return moved


def withdraw(db: Database, workflow_id: str, at: datetime) -> str | None:
    """Take a queued transfer out of the book before its cash-out's hold is released, so it
    never leaves for money that is no longer held. Returns the item's status (None: there
    is none); raises `InvalidState` if the transfer already left with a batch."""
    with db.write_connection() as conn:
        row = conn.execute(
            db.dialect.for_update(
                select(_ITEM.c.status, _ITEM.c.batch_id).where(_ITEM.c.workflow_id == workflow_id)
            )
        ).first()
        if row is None:
            return None
        if row.status in LEFT:
            raise InvalidState(
                f"the transfer of {workflow_id} left in batch {row.batch_id} ({row.status}): "
                "its hold stays until the bank answers"
            )
        if row.status == "queued":
            conn.execute(
                update(_ITEM)
                .where(_ITEM.c.workflow_id == workflow_id, _ITEM.c.status == "queued")
                .values(status="withdrawn", updated_at=to_epoch_us(at))
            )
            return "withdrawn"
        return str(row.status)


def _forward(current: str, new: str) -> bool:
    if current in ("rejected", "returned", "withdrawn") or new == current:
        return False
    if new == "rejected":
        return current in ("sent", "accepted")
    if new == "returned":
        return current in ("booked", "accepted", "sent")
    return RANK[new] > RANK[current]


def unsignalled(db: Database, limit: int = 1000) -> list[ItemRow]:
    """Items whose status the cash-out workflow has not been told about yet (not while
    their batch is still being written: it may yet be quarantined and the item requeued)."""
    unsent = select(_BATCH.c.id).where(_BATCH.c.status == "created")
    with db.read_connection() as conn:
        rows = conn.execute(
            select(_ITEM)
            .where(
                _ITEM.c.status != _ITEM.c.signalled,
                _ITEM.c.status.in_(SIGNALLED),
                _ITEM.c.batch_id.not_in(unsent),
            )
            .order_by(_ITEM.c.updated_at)
            .limit(limit)
        ).all()
    return [_item(r) for r in rows]


def mark_signalled(db: Database, told: list[tuple[str, str]]) -> int:
    """Remember what each workflow was told (unless the item moved on meanwhile)."""
    changed = 0
    with db.write_connection() as conn:
        # in key order, so that two runs marking overlapping items cannot deadlock
        for e2e, status in sorted(told):
            changed += conn.execute(
                update(_ITEM)
                .where(and_(_ITEM.c.end_to_end_id == e2e, _ITEM.c.status == status))
                .values(signalled=status)
            ).rowcount
    return changed


def item_for(db: Database, workflow_id: str) -> ItemRow | None:
    with db.read_connection() as conn:
        row = conn.execute(select(_ITEM).where(_ITEM.c.workflow_id == workflow_id)).first()
    return None if row is None else _item(row)


def savings(db: Database, currency: str) -> tuple[int, int]:
    """(batches, fee saved) per currency, for reports."""
    with db.read_connection() as conn:
        count, saved = conn.execute(
            select(func.count(), func.coalesce(func.sum(_BATCH.c.fee_saved), 0)).where(
                _BATCH.c.currency == currency
            )
        ).one()
    return int(count), int(saved)
