"""Reconciliation: the ledger, the rails' own records and our batch files, three ways.

For one day (UTC) it looks at every cash-out the ledger booked or released that day, every
payout a rail reports for that day, and every bank file written that day, and matches them
by cash-out (workflow id; for bank files, the EndToEndId derived from it). Each mismatch is
reported with its cause:

- `missing_at_rail`: the ledger paid it, no rail has it;
- `not_booked`: a rail paid it, the ledger did not (still held, or released);
- `amount_differs`: ledger net, rail amount and file amount disagree;
- `paid_twice`: a rail (or the bank files) holds it more than once;
- `returned_not_reversed`: the rail returned it, the ledger still counts it paid;
- `held_too_long`: a hold still reserved after `held_too_long_hours` (any day);
- `owed_too_long`: a payee who has owed money (reversed earnings no balance covered)
  without a break for longer than the policy's `owed.flag_after_days` (any day; the
  mismatch's `cashout` is then the payee's id).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select

from payouts.domain.money import format_money
from payouts.rails.bank import book
from payouts.rails.bank.iso20022 import read_pain001
from payouts.rails.bank.port import BankLine
from payouts.rails.giftcards.port import CardLine
from payouts.rails.wallet.port import WalletPayoutRecord
from payouts.store.database import Database
from payouts.store.tables import Account, Hold, LedgerTransaction, Leg

_HOLD = Hold.__table__  # type: ignore[attr-defined]
ACCOUNTS = Account.__table__  # type: ignore[attr-defined]
LEGS = Leg.__table__  # type: ignore[attr-defined]
TRANSACTIONS = LedgerTransaction.__table__  # type: ignore[attr-defined]

KINDS = (
    "missing_at_rail",
    "not_booked",
    "amount_differs",
    "paid_twice",
    "returned_not_reversed",
    "held_too_long",
    "owed_too_long",
)


@dataclass(frozen=True)
class Mismatch:
    kind: str
    cashout: str  # workflow id
    detail: str


@dataclass
class Report:
    day: date
    checked: int = 0
    by_rail: dict[str, int] = field(default_factory=dict)
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.mismatches

    def as_dict(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "checked": self.checked,
            "by_rail": self.by_rail,
            "clean": self.clean,
            "mismatches": [m.__dict__ for m in self.mismatches],
        }


@dataclass(frozen=True)
class RailView:
    """What the rails say, gathered by the caller (HTTP for the wallet, files for the bank)."""

    wallet: list[WalletPayoutRecord]
    gift_cards: list[CardLine]
    bank: list[BankLine]
    files: dict[str, list[tuple[str, int]]]  # EndToEndId -> [(file name, amount)]


def bank_files(outbound: Path, names: list[str]) -> dict[str, list[tuple[str, int]]]:
    """EndToEndId -> every (file, amount) it appears in, over the given pain.001 files."""
    seen: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for name in names:
        path = outbound / name
        if not path.exists():
            continue
        _, _, transfers = read_pain001(path.read_bytes())
        for t in transfers:
            seen[t.end_to_end_id].append((name, t.amount))
    return dict(seen)


def reconcile(
    db: Database,
    rails: RailView,
    *,
    day: date,
    as_of: datetime,
    held_too_long_hours: int,
    owed_flag_days: int | None = None,
) -> Report:
    report = Report(day=day)
    start = datetime.combine(day, time.min, tzinfo=as_of.tzinfo)
    end = start + timedelta(days=1)
    items = {i.workflow_id: i for i in _bank_items(db)}
    wallet: dict[str, list[WalletPayoutRecord]] = defaultdict(list)
    for w in rails.wallet:
        wallet[w.reference].append(w)
    cards: dict[str, list[CardLine]] = defaultdict(list)
    for c in rails.gift_cards:
        cards[c.reference].append(c)
    bank_lines: dict[str, list[BankLine]] = defaultdict(list)
    for b in rails.bank:
        bank_lines[b.end_to_end_id].append(b)
    with db.read_connection() as conn:
        of_day = {
            r.id
            for r in conn.execute(
                select(_HOLD.c.id).where(_HOLD.c.updated_at >= start, _HOLD.c.updated_at < end)
            )
        }
        keys = of_day | set(wallet) | set(cards)
        keys |= {wid for wid, it in items.items() if it.end_to_end_id in rails.files}
        holds = {
            r.id: r
            for r in conn.execute(
                select(_HOLD).where(or_(_HOLD.c.id.in_(sorted(keys)), _HOLD.c.status == "reserved"))
            )
        }
    if owed_flag_days is not None:
        report.mismatches += owed_too_long(db, as_of, timedelta(days=owed_flag_days))
    too_long = timedelta(hours=held_too_long_hours)
    for hold in holds.values():
        if hold.status == "reserved" and as_of - hold.created_at > too_long:
            since = f"{hold.created_at:%Y-%m-%d %H:%M} UTC"
            money = format_money(hold.amount, hold.currency)
            report.mismatches.append(
                Mismatch("held_too_long", hold.id, f"{money} reserved since {since}")
            )
    for key in sorted(keys):
        report.checked += 1
        rail, found = _rail_records(key, items, wallet, cards, bank_lines, rails.files)
        if rail:
            report.by_rail[rail] = report.by_rail.get(rail, 0) + 1
        _check(report, key, holds.get(key), rail, found)
    report.mismatches.sort(key=lambda m: (KINDS.index(m.kind), m.cashout))
    return report


def _bank_items(db: Database) -> list[book.ItemRow]:
    rows: list[book.ItemRow] = []
    for b in book.batches(db):
        rows.extend(b.items)
    return rows


def _rail_records(
    key: str,
    items: dict[str, book.ItemRow],
    wallet: dict[str, list[WalletPayoutRecord]],
    cards: dict[str, list[CardLine]],
    bank_lines: dict[str, list[BankLine]],
    files: dict[str, list[tuple[str, int]]],
) -> tuple[str | None, dict[str, Any]]:
    """Which rail has this cash-out, and what it says: paid count, amount, returned."""
    if key in wallet:
        recs = wallet[key]
        paid = [r for r in recs if r.status in ("completed", "pending")]
        return "wallet", {
            "count": len(paid),
            "amount": paid[0].amount if paid else 0,
            "paid": any(r.status == "completed" for r in recs),
            "returned": False,
        }
    if key in cards:
        issued = cards[key]
        return "gift_card", {
            "count": 1,
            "amount": sum(c.face_value for c in issued),
            "paid": True,
            "returned": False,
        }
    item = items.get(key)
    if item is not None and item.status != "queued":
        lines = bank_lines.get(item.end_to_end_id, [])
        in_files = files.get(item.end_to_end_id, [])
        booked = [b for b in lines if b.status in ("booked", "returned")]
        return "bank_transfer", {
            "count": max(len(booked), len(in_files)),
            "amount": item.amount,
            "file_amounts": [a for _, a in in_files],
            "paid": item.status in ("booked", "returned") or bool(booked),
            "returned": item.status == "returned" or any(b.status == "returned" for b in lines),
            "rejected": item.status == "rejected",
        }
    return None, {}


def _check(report: Report, key: str, hold: Any, rail: str | None, found: dict[str, Any]) -> None:
    add = report.mismatches.append
    status = hold.status if hold is not None else None
    if status in ("posted", "reversed") and rail is None:
        add(Mismatch("missing_at_rail", key, f"the ledger paid {_net(hold)}; no rail has it"))
        return
    if rail is None:
        return
    paid_at_rail = found.get("paid", False)
    if paid_at_rail and status not in ("posted", "reversed"):
        add(Mismatch("not_booked", key, f"{rail} paid it; the ledger hold is {status or 'absent'}"))
    if found.get("count", 0) > 1:
        add(Mismatch("paid_twice", key, f"{rail} holds {found['count']} payouts for it"))
    if hold is not None and status in ("posted", "reversed"):
        net = hold.gross - hold.fee
        amounts: set[int] = {
            int(a) for a in [found.get("amount"), *found.get("file_amounts", [])] if a is not None
        }
        if amounts and amounts != {net}:
            shown = ", ".join(format_money(a, hold.currency) for a in sorted(amounts))
            add(Mismatch("amount_differs", key, f"ledger net {_net(hold)}; {rail}: {shown}"))
    if found.get("returned") and status == "posted":
        add(
            Mismatch(
                "returned_not_reversed", key, f"{rail} returned it; the ledger still counts it paid"
            )
        )


def _net(hold: Any) -> str:
    return format_money(hold.gross - hold.fee, hold.currency)


def owed_too_long(db: Database, as_of: datetime, limit: timedelta) -> list[Mismatch]:
    """Payees who have owed something without a break for longer than `limit`: walking
    each owed account's legs back from its balance to the last time it was zero."""
    a, leg, tx = ACCOUNTS.c, LEGS.c, TRANSACTIONS.c
    found = []
    with db.read_connection() as conn:
        owing = conn.execute(
            select(a.id, a.owner, a.currency, a.balance).where(a.kind == "owed", a.balance < 0)
        ).all()
        for acc_id, user, cur, balance in owing:
            before, since = int(balance), None
            legs = conn.execute(
                select(leg.amount, tx.created_at)
                .join(TRANSACTIONS, tx.id == leg.transaction_id)
                .where(leg.account_id == acc_id)
                .order_by(leg.transaction_id.desc())
            )
            for amount, created in legs:
                before -= int(amount)
                since = created
                if before >= 0:
                    break
            if since is not None and as_of - since > limit:
                found.append(
                    Mismatch(
                        "owed_too_long",
                        user,
                        f"owes {format_money(-int(balance), cur)} since "
                        f"{since:%Y-%m-%d %H:%M} UTC ({(as_of - since).days} days)",
                    )
                )
    return found
