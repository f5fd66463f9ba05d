"""Reconciliation flags a payee who has owed money without a break for too long."""

from __future__ import annotations

from datetime import timedelta

from payouts.ledger import EarningRow, Ledger
from payouts.ledger.reversals import ReversalRow
from payouts.ops.reconcile import owed_too_long
from payouts.store.tables import to_epoch_us
from tests.support.databases import FakeClock

M = 1_000_000


def test_a_debt_older_than_the_limit_is_flagged_and_a_renewed_one_is_not(
    ledger: Ledger, clock: FakeClock
) -> None:
    """Owing for 31 days (limit 30) is flagged with the amount and since when; a debt
    paid back and owed again since is counted from the new one; none owed, nothing."""
    old = to_epoch_us(clock.now - timedelta(days=5))
    ledger.credit_earnings([EarningRow(f"e-{u}", u, "USD", 10 * M, old) for u in ("al", "bo")])
    for u in ("al", "bo"):
        ledger.reserve(key=f"{u}:r", hold_id=f"h-{u}", user_id=u, currency="USD", amount=10 * M)
        ledger.post(key=f"{u}:p", hold_id=f"h-{u}", gross=10 * M, fee=0)
        ledger.reverse_earnings([ReversalRow(f"rv-{u}", f"e-{u}", 4 * M, "fraud")])
    start = clock.now
    clock.advance(days=20)
    # bo pays back (an earning credited already mature), then owes again 20 days in
    ledger.credit_earnings([EarningRow("e-bo-2", "bo", "USD", 4 * M, old)])
    assert ledger.balance("bo", "USD").owed == 0
    ledger.reverse_earnings([ReversalRow("rv-bo-2", "e-bo-2", 3 * M, "chargeback")])
    assert ledger.balance("bo", "USD").owed == 3 * M
    clock.advance(days=11)
    [flag] = owed_too_long(ledger.db, clock.now, timedelta(days=30))
    assert (flag.kind, flag.cashout) == ("owed_too_long", "al")
    assert flag.detail == f"owes 4.00 USD since {start:%Y-%m-%d %H:%M} UTC (31 days)"
    assert owed_too_long(ledger.db, clock.now, timedelta(days=40)) == []
