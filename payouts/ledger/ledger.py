"""The double-entry ledger: earn, mature, reverse earnings, reserve, post, void, reverse
cash-outs, and read.

Every write is one database transaction whose legs sum to zero per currency, and updates
the balance rows it touches in the same transaction, so balances are read in O(1). Every
write carries an idempotency key: the same key and content returns the first result
(marked `replayed`), the same key with other content raises `IdempotencyConflict`.
Earnings are keyed by the platform's event id.

`Ledger` is the front door; the parts behind it each hold one concern:
`accounts` (which accounts exist), `books` (the one posting path and the one idempotency
path), `holds` (a cash-out's hold and its transitions, as data), `earnings` (bulk credit
and maturation), `reversals` (taking earnings back), `owed` (what a payee owes, settled
from what becomes available), `reads` (balances, totals, the audit).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from payouts.ledger.books import Books
from payouts.ledger.earnings import Earnings
from payouts.ledger.holds import Holds
from payouts.ledger.reads import Reads
from payouts.ledger.results import CreditSummary, EarningRow
from payouts.ledger.reversals import Reversals
from payouts.store.database import Database
from payouts.store.tables import to_epoch_us


def utcnow() -> datetime:
    return datetime.now(UTC)


class Ledger:
    """The ledger's operations, each served by the part that holds its concern."""

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
        reversals = Reversals(books)
        reads, holds, earnings = Reads(db), Holds(books), Earnings(books, hold_hours, reversals)
        # reads
        self.balance = reads.balance
        self.balances = reads.balances
        self.totals = reads.totals
        self.currencies = reads.currencies
        self.audit = reads.audit
        self.hold = reads.hold
        # earnings
        self.credit_earnings = earnings.credit
        self.mature_due = earnings.mature_due
        self.reverse_earnings = reversals.reverse
        self.reversal = reversals.find
        # cash-outs
        self.reserve = holds.reserve
        self.post = holds.post
        self.void = holds.void
        self.reverse = holds.reverse

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
