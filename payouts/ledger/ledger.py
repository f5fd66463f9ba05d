"""The double-entry ledger: earn, mature, reserve, post, void, reverse, and read.

Every write is one database transaction whose legs sum to zero per currency, and updates
the balance rows it touches in the same transaction, so balances are read in O(1). Every
write carries an idempotency key: the same key and content returns the first result
(marked `replayed`), the same key with other content raises `IdempotencyConflict`.
Earnings are keyed by the platform's event id.

`Ledger` is the front door; the parts behind it each hold one concern:
`accounts` (which accounts exist), `books` (the one posting path and the one idempotency
path), `holds` (a cash-out's hold and its transitions, as data), `earnings` (bulk credit
and maturation), `reads` (balances, totals, the audit).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from payouts.ledger.books import Books
from payouts.ledger.earnings import Earnings
from payouts.ledger.holds import Holds
from payouts.ledger.reads import Reads
from payouts.ledger.results import (
    Balance,
    CreditSummary,
    EarningRow,
    HoldReceipt,
    MaturationResult,
    Totals,
)
from payouts.store.database import Database
from payouts.store.tables import Hold, to_epoch_us


def utcnow() -> datetime:
    return datetime.now(UTC)


class Ledger:
    def __init__(
        self,
        db: Database,
        *,
        hold_hours: int = 72,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.clock = clock
        books = Books(db, lambda: self.clock())
        self._reads = Reads(db)
        self._holds = Holds(books)
        self._earnings = Earnings(books, hold_hours)

    # ------------------------------------------------------------------ reads

    def balance(self, user_id: str, currency: str) -> Balance:
        return self._reads.balance(user_id, currency)

    def balances(self, user_id: str) -> list[Balance]:
        return self._reads.balances(user_id)

    def totals(self, currency: str) -> Totals:
        return self._reads.totals(currency)

    def currencies(self) -> list[str]:
        return self._reads.currencies()

    def audit(self) -> list[str]:
        return self._reads.audit()

    def hold(self, hold_id: str) -> Hold | None:
        return self._reads.hold(hold_id)

    # ------------------------------------------------------------------ earnings

    def credit_earning(
        self,
        *,
        event_id: str,
        user_id: str,
        currency: str,
        amount: int,
        earned_at: datetime | None = None,
    ) -> CreditSummary:
        """Credit one earning; idempotent by `event_id`. No `earned_at` means now."""
        when = None if earned_at is None else to_epoch_us(earned_at)
        return self.credit_earnings([EarningRow(event_id, user_id, currency, amount, when)])

    def credit_earnings(
        self,
        rows: Iterable[EarningRow],
        *,
        on_conflict: str = "raise",
        chunk_size: int = 100_000,
        progress: Callable[[int], None] | None = None,
    ) -> CreditSummary:
        return self._earnings.credit(
            rows, on_conflict=on_conflict, chunk_size=chunk_size, progress=progress
        )

    def mature_due(
        self, *, user_id: str | None = None, now: datetime | None = None, key: str | None = None
    ) -> MaturationResult:
        return self._earnings.mature_due(user_id=user_id, now=now, key=key)

    # ------------------------------------------------------------------ cash-outs

    def reserve(
        self,
        *,
        key: str,
        hold_id: str,
        user_id: str,
        currency: str,
        amount: int,
        daily_amount_limit: int | None = None,
        daily_count_limit: int | None = None,
    ) -> HoldReceipt:
        return self._holds.reserve(
            key=key,
            hold_id=hold_id,
            user_id=user_id,
            currency=currency,
            amount=amount,
            daily_amount_limit=daily_amount_limit,
            daily_count_limit=daily_count_limit,
        )

    def post(self, *, key: str, hold_id: str, gross: int, fee: int) -> HoldReceipt:
        return self._holds.post(key=key, hold_id=hold_id, gross=gross, fee=fee)

    def void(self, *, key: str, hold_id: str, reason: str) -> HoldReceipt:
        return self._holds.void(key=key, hold_id=hold_id, reason=reason)

    def reverse(self, *, key: str, hold_id: str, reason: str) -> HoldReceipt:
        return self._holds.reverse(key=key, hold_id=hold_id, reason=reason)
