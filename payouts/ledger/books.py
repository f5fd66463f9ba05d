"""The one posting path and the one idempotency path that every ledger write goes through.

`Books.idempotent(key, op, content, run)` runs `run` in one write transaction unless `key`
was used before: with the same operation and content it returns the first result (stored
with the transaction), with anything else it raises `IdempotencyConflict`. Concurrent
writers of one key both end with the first one's result.

`Books.post(conn, ...)` records one ledger transaction: a row in `ledger_transactions` and
one leg per account, which sum to zero per currency; it updates each account's balance
in the same database transaction (so reads are O(1)), locking the accounts first, in id
order, so that writers never deadlock.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from payouts.errors import IdempotencyConflict, InvalidInput, InvalidState
from payouts.ledger.accounts import ACCOUNTS, AccountIds, AccountKey
from payouts.store.database import Database
from payouts.store.tables import LedgerTransaction, Leg, to_epoch_us

TRANSACTIONS = LedgerTransaction.__table__  # type: ignore[attr-defined]
LEGS = Leg.__table__  # type: ignore[attr-defined]

Result = dict[str, Any]
Run = Callable[[Connection, str], tuple[Result, int | None]]  # (connection, content hash)


def content_hash(op: str, content: dict[str, Any]) -> str:
    """What makes two writes under one key the same write."""
    canonical = json.dumps({"op": op, **content}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class Books:
    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.clock = clock
        self.accounts = AccountIds(db.dialect)

    def now_us(self) -> int:
        return to_epoch_us(self.clock())

    # ------------------------------------------------------------------ idempotency

    def idempotent(
        self, key: str, op: str, content: dict[str, Any], run: Run, *, empty_ok: bool = False
    ) -> tuple[Result, bool]:
        """(result, replayed): run `run` once per key; see the module docstring."""
        if not isinstance(key, str) or not key or len(key) > 200:
            raise InvalidInput("key: the idempotency key must be 1 to 200 characters", field="key")
        chash = content_hash(op, content)
        for _ in range(5):
            try:
                with self.db.write_connection() as conn:
                    found = conn.execute(
                        select(
                            TRANSACTIONS.c.kind,
                            TRANSACTIONS.c.content_hash,
                            TRANSACTIONS.c.result_json,
                        ).where(TRANSACTIONS.c.idempotency_key == key)
                    ).first()
                    if found is not None:
                        kind, first_hash, result_json = found
                        if kind != op or first_hash != chash:
                            raise IdempotencyConflict(
                                f"key: {key!r} was first used for a different {kind} "
                                f"(this request is a {op} with other content)",
                                field="key",
                            )
                        return json.loads(result_json), True
                    result, tx_id = run(conn, chash)
                    if tx_id is not None:
                        conn.execute(
                            update(TRANSACTIONS)
                            .where(TRANSACTIONS.c.id == tx_id)
                            .values(result_json=json.dumps(result))
                        )
                    elif not empty_ok:
                        raise InvalidState(f"key: {key!r}: the {op} wrote no transaction")
                    return result, False
            except IntegrityError as exc:
                # A concurrent writer took this key (or hold id) first: read its result.
                if "idempotency_key" not in str(exc) and "ledger_transactions" not in str(exc):
                    raise
        raise IdempotencyConflict(f"key: {key!r} is being written concurrently; retry")

    # ------------------------------------------------------------------ postings

    def open(
        self,
        conn: Connection,
        *,
        key: str,
        kind: str,
        chash: str = "",
        user_id: str | None = None,
        hold_id: str | None = None,
        now_us: int,
    ) -> int:
        """The transaction row; its legs follow (`post`)."""
        return int(
            conn.execute(
                insert(TRANSACTIONS)
                .values(
                    idempotency_key=key,
                    kind=kind,
                    content_hash=chash,
                    user_id=user_id,
                    hold_id=hold_id,
                    created_at=now_us,
                    result_json="",
                )
                .returning(TRANSACTIONS.c.id)
            ).scalar_one()
        )

    def drop(self, conn: Connection, tx_id: int) -> None:
        """Forget a transaction that moved nothing (its key stays free)."""
        conn.execute(delete(TRANSACTIONS).where(TRANSACTIONS.c.id == tx_id))

    def post(
        self,
        conn: Connection,
        tx_id: int,
        deltas: Mapping[AccountKey, int],
        fresh: dict[AccountKey, int],
    ) -> dict[AccountKey, int]:
        """Write the legs of `tx_id` (amount per account) and move the balances; returns
        the account ids it used. Zero legs are left out."""
        ids = self.accounts.ensure(conn, deltas.keys(), fresh)
        legs = sorted((ids[k], amt) for k, amt in deltas.items() if amt != 0)
        if not legs:
            return ids
        dialect = self.db.dialect
        dialect.lock_accounts(conn, ACCOUNTS, [acc for acc, _ in legs])
        dialect.insert_legs(conn, LEGS, tx_id, legs)
        conn.execute(update(TRANSACTIONS).where(TRANSACTIONS.c.id == tx_id).values(legs=len(legs)))
        dialect.add_to_balances(conn, ACCOUNTS, legs)
        return ids

    def balance(self, conn: Connection, account_id: int, *, lock: bool = False) -> int:
        stmt = select(ACCOUNTS.c.balance).where(ACCOUNTS.c.id == account_id)
        if lock:
            stmt = self.db.dialect.for_balance_update(stmt)
        return int(conn.execute(stmt).scalar_one())
