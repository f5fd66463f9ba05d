"""Disbursement rails: the protocol and a sandbox that behaves like a real provider.

Every payout carries an idempotency key derived from the workflow: the same key and body
returns the first result; the same key with a different body is refused (`RailConflict`).
The sandbox also injects what real rails do, deterministically under a seed:

- latency (a base with jitter),
- transient refusals (`RailTransientError`: nothing applied, try again),
- ambiguous timeouts (`RailTimeout`: the payout WAS applied, the answer was lost),

and answers by method: bank transfers are accepted and settle after a delay; wallets and
gift cards pay at once. Sandbox failures by destination: an IBAN ending in 0404 is a closed
account (AC04), one ending in 0101 an incorrect account number (AC01); a wallet id
starting with `blocked` is a suspended wallet.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from payouts.models import (
    BankAccount,
    DisburseInput,
    RailResult,
    RailStatus,
    WalletAccount,
)
from payouts.policy import Method
from payouts.providers.errors import RailConflict, RailTimeout, RailTransientError
from payouts.providers.sandbox_db import SandboxDB
from payouts.tables import from_epoch_us, to_epoch_us


class Rail(Protocol):
    def send(self, request: DisburseInput) -> RailResult:
        """Pay out; idempotent by `request.key`. May raise RailTransientError/RailTimeout."""
        ...

    def lookup(self, key: str) -> RailResult | None:
        """What the rail knows of a key: resolves an ambiguous timeout."""
        ...

    def status(self, key: str, as_of: datetime) -> RailResult:
        """The current state of an accepted payout (settled, failed, returned)."""
        ...


@dataclass(frozen=True)
class Faults:
    seed: int = 0
    transient_rate: float = 0.0
    timeout_rate: float = 0.0
    latency_ms: int = 0


def body_hash(request: DisburseInput) -> str:
    body = request.model_dump_json(exclude={"key", "sent_at"})
    return hashlib.sha256(body.encode()).hexdigest()


def destination_fingerprint(request: DisburseInput) -> str:
    return hashlib.sha256(request.destination.model_dump_json().encode()).hexdigest()[:32]


class SandboxRails:
    """One sandbox provider for all three methods, with its books in `SandboxDB`."""

    def __init__(
        self, db: SandboxDB, *, faults: Faults | None = None, bank_settle_seconds: int = 3600
    ) -> None:
        self.db = db
        self.faults = faults or Faults()
        self.bank_settle = timedelta(seconds=bank_settle_seconds)

    # ------------------------------------------------------------------ protocol

    def send(self, request: DisburseInput) -> RailResult:
        f = self.faults
        calls = self._count_call(request.key)
        # Latency is spent half before and half after the payout is applied, so a caller
        # that dies mid-call may leave a payout done but unacknowledged, as on a real rail.
        pause = f.latency_ms * (0.5 + self._chance(request.key, calls, "latency")) / 2000
        time.sleep(pause)
        if self._chance(request.key, calls, "transient") < f.transient_rate:
            raise RailTransientError(f"rail answered 503 Service Unavailable (call {calls})")
        result = self._apply(request)
        time.sleep(pause)
        if self._chance(request.key, calls, "timeout") < f.timeout_rate:
            raise RailTimeout(f"no answer from the rail within the deadline (call {calls})")
        return result

    def lookup(self, key: str) -> RailResult | None:
        row = (
            self.db.read()
            .execute(
                "SELECT key, reference, status, reason_code, reason, settles_at_us "
                "FROM sandbox_payouts WHERE key = ?",
                (key,),
            )
            .fetchone()
        )
        return None if row is None else _result(row)

    def status(self, key: str, as_of: datetime) -> RailResult:
        with self.db.tx() as conn:
            row = conn.execute(
                "SELECT key, reference, status, reason_code, reason, settles_at_us "
                "FROM sandbox_payouts WHERE key = ?",
                (key,),
            ).fetchone()
            if row is None:
                raise RailConflict(f"the rail has no payout with key {key!r}")
            if (
                row[2] == RailStatus.ACCEPTED
                and row[5] is not None
                and row[5] <= to_epoch_us(as_of)
            ):
                conn.execute(
                    "UPDATE sandbox_payouts SET status = ? WHERE key = ?",
                    (RailStatus.PAID.value, key),
                )
                row = (*row[:2], RailStatus.PAID.value, *row[3:])
        return _result(row)

    # ------------------------------------------------------------------ sandbox books

    def payouts_for(self, request_id: str) -> int:
        """How many payouts the rail holds for one cash-out request (tests: exactly once)."""
        row = (
            self.db.read()
            .execute("SELECT COUNT(*) FROM sandbox_payouts WHERE request_id = ?", (request_id,))
            .fetchone()
        )
        return int(row[0])

    def calls_for(self, key: str) -> int:
        row = (
            self.db.read()
            .execute("SELECT calls FROM sandbox_calls WHERE key = ?", (key,))
            .fetchone()
        )
        return 0 if row is None else int(row[0])

    def _count_call(self, key: str) -> int:
        with self.db.tx() as conn:
            conn.execute(
                "INSERT INTO sandbox_calls (key, calls) VALUES (?, 1) "
                "ON CONFLICT(key) DO UPDATE SET calls = calls + 1",
                (key,),
            )
            row = conn.execute("SELECT calls FROM sandbox_calls WHERE key = ?", (key,)).fetchone()
        return int(row[0])

    def _chance(self, key: str, call: int, salt: str) -> float:
        digest = hashlib.sha256(f"{self.faults.seed}:{key}:{call}:{salt}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def _apply(self, request: DisburseInput) -> RailResult:
        digest = body_hash(request)
        with self.db.tx() as conn:
            row = conn.execute(
                "SELECT key, reference, status, reason_code, reason, settles_at_us, body_hash "
                "FROM sandbox_payouts WHERE key = ?",
                (request.key,),
            ).fetchone()
            if row is not None:
                if row[6] != digest:
                    raise RailConflict(
                        f"idempotency key {request.key!r} was used for a different payout (422)"
                    )
                return _result(row[:6])
            status, code, reason, settles = self._outcome(request)
            reference = "po_" + hashlib.sha256(request.key.encode()).hexdigest()[:16]
            conn.execute(
                "INSERT INTO sandbox_payouts (key, request_id, user_id, method, currency, amount, "
                "destination_fp, body_hash, reference, status, reason_code, reason, "
                "created_at_us, settles_at_us) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    request.key,
                    request.request_id,
                    request.user_id,
                    request.method.value,
                    request.currency,
                    request.amount,
                    destination_fingerprint(request),
                    digest,
                    reference,
                    status.value,
                    code,
                    reason,
                    to_epoch_us(request.sent_at),
                    None if settles is None else to_epoch_us(settles),
                ),
            )
        return RailResult(
            key=request.key,
            reference=reference,
            status=status,
            reason_code=code,
            reason=reason,
            settles_at=settles,
        )

    def _outcome(self, request: DisburseInput) -> tuple[RailStatus, str, str, datetime | None]:
        dest = request.destination
        if request.method is Method.BANK_TRANSFER and isinstance(dest, BankAccount):
            if dest.iban.endswith("0404"):
                return RailStatus.FAILED, "AC04", "account closed (sandbox)", None
            if dest.iban.endswith("0101"):
                return RailStatus.FAILED, "AC01", "incorrect account number (sandbox)", None
            return RailStatus.ACCEPTED, "", "", request.sent_at + self.bank_settle
        if isinstance(dest, WalletAccount) and dest.wallet_id.startswith("blocked"):
            return RailStatus.FAILED, "WALLET_SUSPENDED", "wallet suspended (sandbox)", None
        return RailStatus.PAID, "", "", request.sent_at


def _result(row: tuple[object, ...]) -> RailResult:
    key, reference, status, code, reason, settles = row
    return RailResult(
        key=str(key),
        reference=str(reference),
        status=RailStatus(str(status)),
        reason_code=str(code),
        reason=str(reason),
        settles_at=None if settles is None else from_epoch_us(int(str(settles))),
    )
