"""The ledger on SQLite and PostgreSQL: idempotency, atomicity, two-phase cash-outs, races."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import sqlalchemy as sa

from payouts.errors import (
    IdempotencyConflict,
    InsufficientFunds,
    InvalidAmount,
    InvalidInput,
    InvalidState,
    LimitExceeded,
    NotFound,
)
from payouts.ledger import EarningRow, HoldStatus, Ledger
from payouts.store.tables import to_epoch_us
from tests.support.databases import FakeClock

USD = "USD"


def old(clock: FakeClock, days: int = 10) -> int:
    return to_epoch_us(clock.now - timedelta(days=days))


def fund(ledger: Ledger, clock: FakeClock, user: str, amount: int, prefix: str = "f") -> None:
    ledger.credit_earnings([EarningRow(f"{prefix}-{user}-{amount}", user, USD, amount, old(clock))])


def test_earnings_credit_pending_or_available_by_maturity(ledger: Ledger, clock: FakeClock) -> None:
    """Matured earnings land in available, fresh ones in pending until the hold passes."""
    rows = [
        EarningRow("e1", "u1", USD, 125, old(clock)),
        EarningRow("e2", "u1", USD, 300, to_epoch_us(clock.now)),
        EarningRow("e3", "u2", "KRW", 1_000_000, None),
    ]
    summary = ledger.credit_earnings(rows)
    assert summary.credited == 3
    assert summary.credited_amount == {USD: 425, "KRW": 1_000_000}
    bal = ledger.balance("u1", USD)
    assert (bal.available, bal.pending, bal.held) == (125, 300, 0)
    assert ledger.balance("u2", "KRW").pending == 1_000_000
    clock.advance(hours=72)
    result = ledger.mature_due()
    assert result.earnings == 2 and result.amount == {USD: 300, "KRW": 1_000_000}
    assert ledger.balance("u1", USD).available == 425
    assert ledger.balance("u1", USD).pending == 0
    assert ledger.audit() == []


def test_mature_due_is_idempotent_by_key(ledger: Ledger, clock: FakeClock) -> None:
    """Replaying a maturation key returns the first result and moves nothing twice."""
    ledger.credit_earnings([EarningRow("e1", "u1", USD, 500, to_epoch_us(clock.now))])
    clock.advance(hours=73)
    first = ledger.mature_due(key="m1")
    again = ledger.mature_due(key="m1")
    assert again.replayed and again.transaction_id == first.transaction_id
    assert ledger.balance("u1", USD).available == 500
    assert ledger.mature_due().earnings == 0  # nothing left due


def test_mature_due_for_one_user_leaves_others(ledger: Ledger, clock: FakeClock) -> None:
    """Maturing one user's earnings (as a cash-out does) touches nobody else."""
    now = to_epoch_us(clock.now)
    ledger.credit_earnings([EarningRow("a", "u1", USD, 1, now), EarningRow("b", "u2", USD, 2, now)])
    clock.advance(hours=80)
    assert ledger.mature_due(user_id="u1").earnings == 1
    assert ledger.balance("u2", USD).pending == 2


def test_duplicate_events_are_skipped(ledger: Ledger, clock: FakeClock) -> None:
    """The same event id with the same content is credited once, however often it is sent."""
    rows = [EarningRow(f"e{i}", "u1", USD, 10, old(clock)) for i in range(5)]
    ledger.credit_earnings(rows)
    again = ledger.credit_earnings([*rows, EarningRow("e9", "u1", USD, 7, old(clock))])
    assert (again.credited, again.duplicates) == (1, 5)
    assert ledger.balance("u1", USD).available == 57
    in_batch = ledger.credit_earnings([EarningRow("x", "u1", USD, 1, None)] * 3)
    assert (in_batch.credited, in_batch.duplicates) == (1, 2)


def test_conflicting_event_refuses_the_whole_batch(ledger: Ledger, clock: FakeClock) -> None:
    """An event id reused with different content raises and leaves nothing written."""
    ledger.credit_earnings([EarningRow("e1", "u1", USD, 10, old(clock))])
    batch = [EarningRow(f"n{i}", "u2", USD, 5, old(clock)) for i in range(50)]
    batch.insert(25, EarningRow("e1", "u1", USD, 11, old(clock)))
    with pytest.raises(IdempotencyConflict, match="'e1': event_id was already credited as u1"):
        ledger.credit_earnings(batch, chunk_size=10)
    assert ledger.balance("u2", USD).available == 0
    assert ledger.totals(USD).earned == 10
    assert ledger.audit() == []


def test_conflicts_can_be_skipped_and_listed(ledger: Ledger, clock: FakeClock) -> None:
    """on_conflict='skip' credits the good rows and lists each conflict."""
    ledger.credit_earnings([EarningRow("e1", "u1", USD, 10, old(clock))])
    summary = ledger.credit_earnings(
        [
            EarningRow("e1", "u9", USD, 10, old(clock)),
            EarningRow("e2", "u1", USD, 3, old(clock)),
            EarningRow("e2", "u1", USD, 4, old(clock)),
        ],
        on_conflict="skip",
    )
    assert summary.credited == 1
    assert [c.event_id for c in summary.conflicts] == ["e2", "e1"]
    assert ledger.balance("u1", USD).available == 13


def test_failure_mid_batch_leaves_nothing(ledger: Ledger, clock: FakeClock) -> None:
    """A failure after some chunks were written rolls the whole batch back."""

    def rows() -> Iterator[EarningRow]:
        for i in range(35):
            yield EarningRow(f"e{i}", f"u{i % 3}", USD, 100, old(clock))
        raise RuntimeError("the source broke")

    with pytest.raises(RuntimeError, match="the source broke"):
        ledger.credit_earnings(rows(), chunk_size=10)
    assert ledger.totals(USD).earned == 0
    assert ledger.balance("u0", USD).available == 0
    with ledger.db.read() as s:
        assert s.connection().execute(sa.text("SELECT COUNT(*) FROM earnings")).scalar() == 0


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (EarningRow("", "u1", USD, 1, None), "event_id: must be 1 to 200"),
        (EarningRow("e", "@platform", USD, 1, None), "user_id: '@platform' must be"),
        (EarningRow("e", "u1", "XXX", 1, None), "currency: 'XXX'"),
        (EarningRow("e", "u1", USD, 0, None), "amount: 0 must be a positive"),
        (EarningRow("e", "u1", USD, -5, None), "amount: -5 must be a positive"),
        (EarningRow("e", "u1", USD, 2**63, None), "must be a positive integer"),
    ],
)
def test_invalid_earnings_are_refused(ledger: Ledger, row: EarningRow, message: str) -> None:
    """Bad earnings name the field and write nothing."""
    with pytest.raises(InvalidInput, match=message):
        ledger.credit_earnings([EarningRow("ok", "u1", USD, 1, None), row])
    assert ledger.totals(USD).earned == 0


def test_reserve_post_with_fee_releases_the_rest(ledger: Ledger, clock: FakeClock) -> None:
    """post books net to clearing and the fee to fees; gross below the hold goes back."""
    fund(ledger, clock, "u1", 20_000_000)
    r = ledger.reserve(
        key="c1:reserve", hold_id="c1", user_id="u1", currency=USD, amount=12_000_000
    )
    assert r.available_after == 8_000_000
    assert ledger.balance("u1", USD).held == 12_000_000
    p = ledger.post(key="c1:post", hold_id="c1", gross=10_000_000, fee=300_000)
    assert (p.released, p.status) == (2_000_000, HoldStatus.POSTED)
    bal = ledger.balance("u1", USD)
    assert (bal.available, bal.held) == (10_000_000, 0)
    totals = ledger.totals(USD)
    assert (totals.paid_out, totals.fees) == (9_700_000, 300_000)
    assert totals.conserved and ledger.audit() == []


def test_void_returns_the_hold(ledger: Ledger, clock: FakeClock) -> None:
    """void moves the whole hold back to available; a voided hold cannot be posted."""
    fund(ledger, clock, "u1", 5_000_000)
    ledger.reserve(key="c1:r", hold_id="c1", user_id="u1", currency=USD, amount=5_000_000)
    v = ledger.void(key="c1:v", hold_id="c1", reason="rejected by reviewer")
    assert v.available_after == 5_000_000
    with pytest.raises(InvalidState, match="cannot post hold 'c1': it is voided"):
        ledger.post(key="c1:p", hold_id="c1", gross=5_000_000, fee=0)
    assert ledger.hold("c1").reason == "rejected by reviewer"  # type: ignore[union-attr]


def test_reverse_gives_money_and_fee_back(ledger: Ledger, clock: FakeClock) -> None:
    """A return after posting puts gross (net and fee) back into available."""
    fund(ledger, clock, "u1", 10_000_000)
    ledger.reserve(key="c1:r", hold_id="c1", user_id="u1", currency=USD, amount=10_000_000)
    with pytest.raises(InvalidState, match="cannot reverse hold 'c1': it is reserved"):
        ledger.reverse(key="c1:x", hold_id="c1", reason="AC04")
    ledger.post(key="c1:p", hold_id="c1", gross=10_000_000, fee=250_000)
    rev = ledger.reverse(key="c1:x", hold_id="c1", reason="AC04 closed account")
    assert rev.available_after == 10_000_000
    totals = ledger.totals(USD)
    assert (totals.paid_out, totals.fees, totals.available) == (0, 0, 10_000_000)
    with pytest.raises(InvalidState):
        ledger.void(key="c1:v", hold_id="c1", reason="late")
    assert ledger.audit() == []


def test_insufficient_funds_changes_nothing(ledger: Ledger, clock: FakeClock) -> None:
    """A reserve beyond the available balance is refused and leaves no trace."""
    fund(ledger, clock, "u1", 4_999_999)
    with pytest.raises(
        InsufficientFunds, match="5.00 USD is more than the available balance of 4.999999"
    ):
        ledger.reserve(key="c1:r", hold_id="c1", user_id="u1", currency=USD, amount=5_000_000)
    assert ledger.hold("c1") is None
    assert ledger.balance("u1", USD).available == 4_999_999
    # the key stays free for a retry once the money is there
    fund(ledger, clock, "u1", 1, prefix="g")
    assert (
        ledger.reserve(
            key="c1:r", hold_id="c1", user_id="u1", currency=USD, amount=5_000_000
        ).available_after
        == 0
    )


def test_same_key_same_content_returns_first_result(ledger: Ledger, clock: FakeClock) -> None:
    """Replays return the first receipt, even after the hold moved on."""
    fund(ledger, clock, "u1", 9_000_000)
    first = ledger.reserve(key="k", hold_id="c1", user_id="u1", currency=USD, amount=1_000_000)
    ledger.post(key="k:post", hold_id="c1", gross=1_000_000, fee=0)
    again = ledger.reserve(key="k", hold_id="c1", user_id="u1", currency=USD, amount=1_000_000)
    assert again.replayed and not first.replayed
    assert again.model_dump(exclude={"replayed"}) == first.model_dump(exclude={"replayed"})
    assert ledger.balance("u1", USD).available == 8_000_000


def test_same_key_different_content_is_a_conflict(ledger: Ledger, clock: FakeClock) -> None:
    """A key reused for other content is refused with a clear error."""
    fund(ledger, clock, "u1", 9_000_000)
    ledger.reserve(key="k", hold_id="c1", user_id="u1", currency=USD, amount=1_000_000)
    with pytest.raises(
        IdempotencyConflict, match="key: 'k' was first used for a different reserve"
    ):
        ledger.reserve(key="k", hold_id="c1", user_id="u1", currency=USD, amount=2_000_000)
    with pytest.raises(IdempotencyConflict):
        ledger.void(key="k", hold_id="c1", reason="x")
    with pytest.raises(InvalidState, match="exists already under another key"):
        ledger.reserve(key="k2", hold_id="c1", user_id="u1", currency=USD, amount=1_000_000)


def test_post_validates_amounts(ledger: Ledger, clock: FakeClock) -> None:
    """gross above the hold, a fee above gross, or an unknown hold are refused."""
    fund(ledger, clock, "u1", 9_000_000)
    ledger.reserve(key="r", hold_id="c1", user_id="u1", currency=USD, amount=1_000_000)
    with pytest.raises(InvalidAmount, match="gross: 1.01 USD is more than the hold of 1.00 USD"):
        ledger.post(key="p", hold_id="c1", gross=1_010_000, fee=0)
    with pytest.raises(InvalidAmount, match="fee: must be an integer between 0 and gross"):
        ledger.post(key="p", hold_id="c1", gross=1_000_000, fee=1_000_001)
    with pytest.raises(NotFound):
        ledger.post(key="p2", hold_id="nope", gross=1, fee=0)


def test_daily_limits_use_a_rolling_window(ledger: Ledger, clock: FakeClock) -> None:
    """Count and amount limits look back 24 hours; voided cash-outs do not count."""
    fund(ledger, clock, "u1", 100_000_000)
    limits = {"daily_amount_limit": 10_000_000, "daily_count_limit": 2}

    def reserve(hold: str, amount: int) -> None:
        ledger.reserve(
            key=f"{hold}:r", hold_id=hold, user_id="u1", currency=USD, amount=amount, **limits
        )

    reserve("a", 6_000_000)
    with pytest.raises(LimitExceeded, match="daily limit is 10.00 USD"):
        reserve("b", 5_000_000)
    reserve("b", 4_000_000)
    with pytest.raises(LimitExceeded, match="limits.daily_count: 2 cash-outs"):
        reserve("c", 1_000_000)
    ledger.void(key="b:v", hold_id="b", reason="cancelled")
    reserve("c", 1_000_000)  # the voided one no longer counts
    clock.advance(hours=24, seconds=1)
    reserve("d", 9_000_000)  # a new day


@pytest.mark.parametrize("workers", [8])
def test_racing_reserves_never_overdraw(ledger: Ledger, clock: FakeClock, workers: int) -> None:
    """Many concurrent reserves against a balance covering K: exactly K succeed."""
    amount, k, attempts = 1_000_000, 7, 24
    fund(ledger, clock, "u1", amount * k + 999_999)
    start = threading.Barrier(workers)

    def attempt(i: int) -> bool:
        if i < workers:
            start.wait()
        try:
            ledger.reserve(
                key=f"c{i}:r", hold_id=f"c{i}", user_id="u1", currency=USD, amount=amount
            )
            return True
        except InsufficientFunds:
            return False

    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(attempt, range(attempts)))
    assert sum(results) == k
    bal = ledger.balance("u1", USD)
    assert (bal.available, bal.held) == (999_999, amount * k)
    assert ledger.audit() == []


def test_racing_replays_of_one_key_write_once(ledger: Ledger, clock: FakeClock) -> None:
    """The same reserve sent concurrently by several workers is applied exactly once."""
    fund(ledger, clock, "u1", 5_000_000)
    start = threading.Barrier(6)

    def attempt(_: int) -> int:
        start.wait()
        return ledger.reserve(
            key="c1:r", hold_id="c1", user_id="u1", currency=USD, amount=2_000_000
        ).transaction_id

    with ThreadPoolExecutor(6) as pool:
        tx_ids = set(pool.map(attempt, range(6)))
    assert len(tx_ids) == 1
    assert ledger.balance("u1", USD).held == 2_000_000


def test_concurrent_cash_outs_of_many_users_do_not_deadlock(
    ledger: Ledger, clock: FakeClock
) -> None:
    """Posts and reversals of different users all share the platform's clearing and fee
    accounts; run side by side they all go through (no deadlock) and the books balance."""
    users = [f"u{i}" for i in range(24)]
    for user in users:
        fund(ledger, clock, user, 5_000_000)
        ledger.reserve(key=f"{user}:r", hold_id=user, user_id=user, currency=USD, amount=3_000_000)
    start = threading.Barrier(8)

    def cash_out(i: int) -> str:
        user = users[i]
        if i < 8:
            start.wait()
        ledger.post(key=f"{user}:p", hold_id=user, gross=2_000_000 + i, fee=10_000)
        if i % 3 == 0:
            ledger.reverse(key=f"{user}:x", hold_id=user, reason="returned")
        return user

    with ThreadPoolExecutor(8) as pool:
        done = list(pool.map(cash_out, range(len(users))))
    assert done == users
    assert ledger.audit() == []
    assert ledger.totals(USD).conserved


def test_audit_detects_a_tampered_balance(ledger: Ledger, clock: FakeClock) -> None:
    """The audit is not a rubber stamp: a balance edited behind the ledger's back is found."""
    fund(ledger, clock, "u1", 5_000_000)
    with ledger.db.write_connection() as conn:
        conn.execute(
            sa.text(
                "UPDATE accounts SET balance = balance + 1 WHERE owner = 'u1' "
                "AND kind = 'available'"
            )
        )
    problems = ledger.audit()
    assert any("legs sum to 5000000" in p for p in problems)
    assert not ledger.totals(USD).conserved


def test_idempotency_key_rules(ledger: Ledger) -> None:
    """Empty or oversized keys are refused before anything is written."""
    with pytest.raises(InvalidInput, match="key: the idempotency key must be 1 to 200"):
        ledger.reserve(key="", hold_id="c", user_id="u", currency=USD, amount=1)
    with pytest.raises(InvalidInput):
        ledger.reserve(key="k" * 201, hold_id="c", user_id="u", currency=USD, amount=1)
