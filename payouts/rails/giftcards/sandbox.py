"""A sandbox gift card provider: issues cards for face values, idempotent by key.

Cards are issued all at once for one key; asking again with the same key returns the same
cards (and the same codes). A seeded share of calls fails with a transient error before
anything is issued, as a provider under load would.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from payouts.errors import RailConflict, RailTransientError
from payouts.rails.giftcards.port import CardLine, IssuedCard
from payouts.rails.sandbox_db import SandboxDB
from payouts.store.tables import to_epoch_us

SCHEMA = """
CREATE TABLE IF NOT EXISTS giftcard_issues (
    key TEXT NOT NULL,
    seq INTEGER NOT NULL,
    reference TEXT NOT NULL,
    provider_ref TEXT NOT NULL,
    currency TEXT NOT NULL,
    face_value INTEGER NOT NULL,
    code TEXT NOT NULL,
    issued_at_us INTEGER NOT NULL,
    day TEXT NOT NULL,
    PRIMARY KEY (key, seq)
);
CREATE TABLE IF NOT EXISTS giftcard_calls (key TEXT PRIMARY KEY, calls INTEGER NOT NULL);
"""


class SandboxGiftCards:
    def __init__(self, db: SandboxDB, *, seed: int = 0, transient_rate: float = 0.0) -> None:
        self.db = db
        self.seed = seed
        self.transient_rate = transient_rate
        db.read().executescript(SCHEMA)

    def issue(
        self, *, key: str, reference: str, currency: str, faces: tuple[int, ...], at: datetime
    ) -> list[IssuedCard]:
        with self.db.tx() as conn:
            conn.execute(
                "INSERT INTO giftcard_calls (key, calls) VALUES (?, 1) "
                "ON CONFLICT(key) DO UPDATE SET calls = calls + 1",
                (key,),
            )
            calls = conn.execute(
                "SELECT calls FROM giftcard_calls WHERE key = ?", (key,)
            ).fetchone()[0]
        roll = int(hashlib.sha256(f"{self.seed}:{key}:{calls}".encode()).hexdigest()[:12], 16)
        if roll / 16**12 < self.transient_rate:
            raise RailTransientError(f"gift card provider busy (call {calls})")
        with self.db.tx() as conn:
            rows = conn.execute(
                "SELECT seq, provider_ref, currency, face_value, code, reference FROM "
                "giftcard_issues WHERE key = ? ORDER BY seq",
                (key,),
            ).fetchall()
            if rows:
                if tuple(r[3] for r in rows) != faces or rows[0][5] != reference:
                    raise RailConflict(f"idempotency key {key!r} was used for other cards")
                return [IssuedCard(r[0], r[1], r[2], r[3], r[4]) for r in rows]
            cards = []
            for seq, face in enumerate(faces, start=1):
                code = "-".join(secrets.token_hex(2).upper() for _ in range(4))
                ref = "gc_" + secrets.token_hex(6)
                conn.execute(
                    "INSERT INTO giftcard_issues (key, seq, reference, provider_ref, currency, "
                    "face_value, code, issued_at_us, day) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        key,
                        seq,
                        reference,
                        ref,
                        currency,
                        face,
                        code,
                        to_epoch_us(at),
                        at.date().isoformat(),
                    ),
                )
                cards.append(IssuedCard(seq, ref, currency, face, code))
        return cards

    def statement(self, day: str | None = None) -> list[CardLine]:
        sql = "SELECT reference, provider_ref, currency, face_value, day FROM giftcard_issues"
        rows = (
            self.db.read().execute(sql + " WHERE day = ?", (day,))
            if day
            else self.db.read().execute(sql)
        ).fetchall()
        return [CardLine(r[0], r[1], r[2], int(r[3]), r[4]) for r in rows]

    def cards_for(self, reference: str) -> int:
        row = (
            self.db.read()
            .execute("SELECT COUNT(*) FROM giftcard_issues WHERE reference = ?", (reference,))
            .fetchone()
        )
        return int(row[0])
