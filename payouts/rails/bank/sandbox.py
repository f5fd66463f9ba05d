"""A sandbox bank: takes pain.001 files, answers with pain.002 and camt.054 files.

Like a real bank's host-to-host channel, files go in and reports come out later, pulled by
the customer (`fetch`). Each answer becomes due at a time after the file arrived:

- a status report per file after `ack_seconds` (accepted, or rejected items with an ISO
  reason code),
- a booking notification (camt.054 debit) per accepted item after `book_seconds`,
- for some items, a return (camt.054 credit with return reason) `return_seconds` later.

Outcomes are deterministic: by the creditor IBAN's last four digits (0101 -> AC01
incorrect account number, 0404 -> AC04 closed account, 0494 -> AM04 insufficient funds at
the bank, 0606 -> booked then returned AC06 blocked account), plus seeded random
rejections and returns at the configured rates. Time is the caller's (`as_of`), so
time-skipping tests can watch a return arrive days later.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from payouts.errors import BankFileInvalid
from payouts.rails.bank.iso20022 import Party, read_pain001, validate_pain001
from payouts.rails.bank.port import BankLine
from payouts.rails.bank.reports import Entry, build_camt054, build_pain002
from payouts.rails.sandbox_db import SandboxDB
from payouts.store.tables import from_epoch_us, to_epoch_us

SCHEMA = """
CREATE TABLE IF NOT EXISTS bank_in_files (
    message_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    received_at_us INTEGER NOT NULL,
    ack_due_us INTEGER NOT NULL,
    acked INTEGER NOT NULL DEFAULT 0,
    valid INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS bank_txs (
    end_to_end_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    currency TEXT NOT NULL,
    amount INTEGER NOT NULL,
    iban TEXT NOT NULL,
    reject_code TEXT,
    return_code TEXT,
    book_due_us INTEGER NOT NULL,
    return_due_us INTEGER,
    booked INTEGER NOT NULL DEFAULT 0,
    returned INTEGER NOT NULL DEFAULT 0,
    booked_on TEXT,
    returned_on TEXT,
    PRIMARY KEY (end_to_end_id, message_id)
);
CREATE TABLE IF NOT EXISTS bank_out_seq (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT);
CREATE TABLE IF NOT EXISTS bank_out_files (
    name TEXT PRIMARY KEY,
    body BLOB NOT NULL,
    created_at_us INTEGER NOT NULL,
    acked INTEGER NOT NULL DEFAULT 0
);
"""

MAGIC = {
    "0101": ("reject", "AC01"),
    "0404": ("reject", "AC04"),
    "0494": ("reject", "AM04"),
    "0606": ("return", "AC06"),
}


@dataclass(frozen=True)
class BankTiming:
    ack_seconds: int = 5
    book_seconds: int = 60
    return_seconds: int = 3 * 86_400


class SandboxBank:
    def __init__(
        self,
        db: SandboxDB,
        *,
        account: Party,
        timing: BankTiming | None = None,
        seed: int = 0,
        reject_rate: float = 0.0,
        return_rate: float = 0.0,
    ) -> None:
        self.db = db
        self.account = account
        self.timing = timing or BankTiming()
        self.seed = seed
        self.reject_rate = reject_rate
        self.return_rate = return_rate
        db.read().executescript(SCHEMA)

    def instant_reachable(self, iban: str) -> bool:
        """Every account's bank takes instant transfers but those ending 0505."""
        return not "".join(iban.split()).endswith("0505")

    def submit(self, name: str, xml: bytes, at: datetime) -> None:
        """Take a pain.001 file (idempotent by its message id)."""
        t = self.timing
        now = to_epoch_us(at)
        try:
            validate_pain001(xml)
            message_id, currency, transfers = read_pain001(xml)
            valid = True
        except BankFileInvalid:
            message_id, currency, transfers, valid = f"INVALID-{_digest(xml)[:20]}", "", [], False
        with self.db.tx() as conn:
            if conn.execute(
                "SELECT 1 FROM bank_in_files WHERE message_id = ?", (message_id,)
            ).fetchone():
                return
            conn.execute(
                "INSERT INTO bank_in_files (message_id, name, received_at_us, ack_due_us, valid)"
                " VALUES (?, ?, ?, ?, ?)",
                (message_id, name, now, now + t.ack_seconds * 1_000_000, int(valid)),
            )
            for tr in transfers:
                reject, ret = self._outcome(tr.end_to_end_id, tr.creditor.iban)
                book_due = now + t.book_seconds * 1_000_000
                conn.execute(
                    "INSERT INTO bank_txs (end_to_end_id, message_id, currency, amount, iban, "
                    "reject_code, return_code, book_due_us, return_due_us) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        tr.end_to_end_id,
                        message_id,
                        currency,
                        tr.amount,
                        tr.creditor.iban,
                        reject,
                        ret,
                        book_due,
                        None if ret is None else book_due + t.return_seconds * 1_000_000,
                    ),
                )

    def fetch(self, as_of: datetime) -> list[tuple[str, bytes]]:
        """Every report due by `as_of` that the customer has not acknowledged yet, as
        (file name, bytes), oldest first. Like files in an SFTP folder, a report stays
        available until `acknowledge` removes it: a customer that crashes mid-download
        gets it again."""
        with self.db.tx() as conn:
            for name, body in self._produce(conn, as_of):
                conn.execute(
                    "INSERT INTO bank_out_files (name, body, created_at_us) VALUES (?, ?, ?)",
                    (name, body, to_epoch_us(as_of)),
                )
            rows = conn.execute(
                "SELECT name, body FROM bank_out_files WHERE acked = 0 ORDER BY name"
            ).fetchall()
        return [(str(n), bytes(b)) for n, b in rows]

    def deliver_raw(self, name: str, body: bytes, at: datetime) -> None:
        """Offer a file exactly as given, as a bank's broken export would be (tests and
        drills: a report with `<Amt>NaN</Amt>`, a truncated file)."""
        with self.db.tx() as conn:
            conn.execute(
                "INSERT INTO bank_out_files (name, body, created_at_us) VALUES (?, ?, ?)",
                (name, body, to_epoch_us(at)),
            )

    def acknowledge(self, names: list[str]) -> None:
        """The customer has stored these reports: they are no longer offered."""
        with self.db.tx() as conn:
            conn.executemany(
                "UPDATE bank_out_files SET acked = 1 WHERE name = ?", [(n,) for n in names]
            )

    def _produce(self, conn: sqlite3.Connection, as_of: datetime) -> list[tuple[str, bytes]]:
        """Build every report that has become due by `as_of`."""
        now = to_epoch_us(as_of)
        out: list[tuple[str, bytes]] = []
        for message_id, valid in conn.execute(
            "SELECT message_id, valid FROM bank_in_files WHERE acked = 0 AND ack_due_us <= ?"
            " ORDER BY received_at_us",
            (now,),
        ).fetchall():
            txs = conn.execute(
                "SELECT end_to_end_id, reject_code FROM bank_txs WHERE message_id = ? "
                "ORDER BY end_to_end_id",
                (message_id,),
            ).fetchall()
            name = self._name(conn, "pain002")
            out.append(
                (
                    name,
                    build_pain002(
                        message_id=name.removesuffix(".xml")[-35:],
                        created_at=as_of,
                        original_message_id=message_id,
                        rejected={e: c for e, c in txs if c},
                        accepted=[e for e, c in txs if not c],
                        file_rejected=not valid,
                    ),
                )
            )
            conn.execute("UPDATE bank_in_files SET acked = 1 WHERE message_id = ?", (message_id,))
        booked = conn.execute(
            "SELECT end_to_end_id, message_id, currency, amount FROM bank_txs WHERE "
            "reject_code IS NULL AND booked = 0 AND book_due_us <= ? ORDER BY book_due_us, "
            "end_to_end_id",
            (now,),
        ).fetchall()
        out += self._notifications(conn, booked, as_of, returned=False)
        returned = conn.execute(
            "SELECT end_to_end_id, message_id, currency, amount, return_code FROM bank_txs "
            "WHERE booked = 1 AND returned = 0 AND return_due_us IS NOT NULL AND "
            "return_due_us <= ? ORDER BY return_due_us, end_to_end_id",
            (now,),
        ).fetchall()
        out += self._notifications(conn, returned, as_of, returned=True)
        return out

    def statement(self) -> list[BankLine]:
        """Everything the bank holds, as it sees it."""
        rows = (
            self.db.read()
            .execute(
                "SELECT end_to_end_id, message_id, currency, amount, reject_code, return_code, "
                "booked, returned FROM bank_txs ORDER BY message_id, end_to_end_id"
            )
            .fetchall()
        )
        lines = []
        for e2e, msg, cur, amount, reject, ret, booked, returned in rows:
            status = (
                "rejected"
                if reject
                else "returned"
                if returned
                else "booked"
                if booked
                else "accepted"
            )
            lines.append(
                BankLine(e2e, msg, cur, amount, status, reject or (ret if returned else None))
            )
        return lines

    # ------------------------------------------------------------------ internals

    def _notifications(
        self, conn: sqlite3.Connection, rows: list[Any], as_of: datetime, *, returned: bool
    ) -> list[tuple[str, bytes]]:
        by_currency: dict[str, list[Any]] = {}
        for row in rows:
            by_currency.setdefault(str(row[2]), []).append(row)
        out = []
        day = as_of.date().isoformat()
        for cur, items in by_currency.items():
            name = self._name(conn, "camt054")
            entries = [
                Entry(str(r[0]), int(str(r[3])), str(r[4]) if returned else None) for r in items
            ]
            out.append(
                (
                    name,
                    build_camt054(
                        message_id=name.removesuffix(".xml")[-35:],
                        created_at=as_of,
                        account=self.account,
                        currency=cur,
                        booked_on=as_of.date(),
                        entries=entries,
                    ),
                )
            )
            column = "returned" if returned else "booked"
            for r in items:
                conn.execute(
                    f"UPDATE bank_txs SET {column} = 1, {column}_on = ? "
                    "WHERE end_to_end_id = ? AND message_id = ?",
                    (day, r[0], r[1]),
                )
        return out

    def _name(self, conn: sqlite3.Connection, kind: str) -> str:
        cur = conn.execute("INSERT INTO bank_out_seq (name) VALUES (?)", (kind,))
        return f"{kind}-{int(cur.lastrowid or 0):06d}.xml"

    def _outcome(self, e2e: str, iban: str) -> tuple[str | None, str | None]:
        """(reject code, return code) of one transfer."""
        magic = MAGIC.get(iban[-4:])
        if magic is not None:
            kind, code = magic
            return (code, None) if kind == "reject" else (None, code)
        roll = int(_digest(f"{self.seed}:{e2e}".encode())[:12], 16) / 16**12
        if roll < self.reject_rate:
            return "AC01", None
        if roll < self.reject_rate + self.return_rate:
            return None, "MD07"
        return None, None

    def due_at(self, end_to_end_id: str) -> datetime | None:
        row = (
            self.db.read()
            .execute("SELECT book_due_us FROM bank_txs WHERE end_to_end_id = ?", (end_to_end_id,))
            .fetchone()
        )
        return None if row is None else from_epoch_us(int(row[0]))


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
