"""Reversing earnings on SQLite and PostgreSQL: where the money is taken from, what the payee
then owes and how it is paid back, idempotency by reversal id, refusals, the reserve gate,
the platform's notification, the database's own refusals, and a race with a cash-out."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from payouts.errors import (
    IdempotencyConflict,
    InsufficientFunds,
    InvalidState,
    OwedBalance,
    ReversalRefused,
)
from payouts.ledger import EarningRow, HoldStatus, Ledger
from payouts.ledger.reversals import ReversalRow
from payouts.store.database import Database
from payouts.store.tables import to_epoch_us
from tests.support.databases import FakeClock

USD, KRW = "USD", "KRW"
M = 1_000_000  # one USD in micro-units


def old(clock: FakeClock) -> int:
    return to_epoch_us(clock.now - timedelta(days=10))


def earn(
    ledger: Ledger,
    clock: FakeClock,
    event_id: str,
    amount: int,
    *,
    user: str = "ana",
    cur: str = USD,
    mature: bool = True,
) -> int:
    """Credit one earning (matured already, or pending); returns its ledger transaction."""
    when = old(clock) if mature else to_epoch_us(clock.now)
    summary = ledger.credit_earnings([EarningRow(event_id, user, cur, amount, when)])
    return summary.transaction_ids[0]


def reverse(ledger: Ledger, *rows: ReversalRow, on_conflict: str = "raise") -> Any:
    return ledger.reverse_earnings(list(rows), on_conflict=on_conflict)


def position(ledger: Ledger, user: str = "ana", cur: str = USD) -> tuple[int, int, int, int]:
    """(pending, available, held, owed)."""
    b = ledger.balance(user, cur)
    return b.pending, b.available, b.held, b.owed


def sound(ledger: Ledger) -> None:
    """The audit finds nothing, and every currency conserves."""
    assert ledger.audit() == []
    for cur in ledger.currencies():
        assert ledger.totals(cur).conserved


def query(db: Database, sql: str, **params: Any) -> list[Any]:
    with db.engine.connect() as conn:
        return list(conn.execute(sa.text(sql), params).all())


def settlements(db: Database) -> list[tuple[str, str | None, dict[tuple[str, str], int]]]:
    """Every `settle` transaction: (key, user, {(owner, kind): leg amount})."""
    found = []
    for tx_id, key, user in query(
        db, "SELECT id, idempotency_key, user_id FROM ledger_transactions "
        "WHERE kind = 'settle' ORDER BY id"
    ):  # fmt: skip
        legs = query(
            db,
            "SELECT a.owner, a.kind, l.amount FROM ledger_legs l "
            "JOIN accounts a ON a.id = l.account_id WHERE l.transaction_id = :t",
            t=tx_id,
        )
        found.append((key, user, {(owner, kind): amount for owner, kind, amount in legs}))
    return found


def owed_notes(db: Database) -> list[tuple[str, str, dict[str, Any]]]:
    """The outbox's OWED_CHANGED rows: (event id, user, payload)."""
    rows = query(
        db,
        "SELECT event_id, user_id, payload_json FROM notifications "
        "WHERE stage = 'OWED_CHANGED' ORDER BY created_at, event_id",
    )
    return [(ev, user, json.loads(payload)) for ev, user, payload in rows]


def owing(ledger: Ledger, clock: FakeClock, *, posted: bool = True) -> str:
    """ana earned 10.00, cashed all of it out (paid, or in flight: `posted=False`), then the
    earning was reversed: she owes 10.00. Returns the cash-out's hold id."""
    earn(ledger, clock, "task-1", 10 * M)
    ledger.reserve(key="c1:r", hold_id="c1", user_id="ana", currency=USD, amount=10 * M)
    if posted:
        ledger.post(key="c1:p", hold_id="c1", gross=10 * M, fee=M // 2)
    reverse(ledger, ReversalRow("rv-1", "task-1", None, "chargeback"))
    assert position(ledger) == (0, 0, 0 if posted else 10 * M, 10 * M)
    return "c1"


# ---------------------------------------------------------------- where the money comes from


def test_a_pending_earning_is_reversed_from_pending(ledger: Ledger, clock: FakeClock) -> None:
    """An earning not matured yet gives back from pending; maturing moves only what is left."""
    earn(ledger, clock, "task-1", 10 * M, mature=False)
    done = reverse(ledger, ReversalRow("rv-1", "task-1", 4 * M, "price adjusted"))
    assert (done.reversed, done.from_pending[USD], done.from_available[USD]) == (1, 4 * M, 0)
    assert position(ledger) == (6 * M, 0, 0, 0)
    clock.advance(hours=73)
    assert ledger.mature_due().amount == {USD: 6 * M}
    assert position(ledger) == (0, 6 * M, 0, 0)
    assert ledger.totals(USD).reversed == 4 * M
    sound(ledger)


def test_a_matured_earning_is_reversed_from_available(ledger: Ledger, clock: FakeClock) -> None:
    """A matured earning gives back from available; nothing is owed while available covers it."""
    earn(ledger, clock, "task-1", 10 * M)
    earn(ledger, clock, "task-2", 5 * M)
    done = reverse(ledger, ReversalRow("rv-1", "task-1", None, "fraud"))
    assert (done.from_available[USD], done.owed[USD]) == (10 * M, 0)
    assert done.owed_changes == []
    assert position(ledger) == (0, 5 * M, 0, 0)
    sound(ledger)


def test_a_cash_out_in_flight_keeps_its_hold_and_the_shortfall_is_owed(
    ledger: Ledger, clock: FakeClock
) -> None:
    """A cash-out in flight keeps its hold, the shortfall is owed, and the cash-out still posts."""
    earn(ledger, clock, "task-1", 10 * M)
    ledger.reserve(key="c1:r", hold_id="c1", user_id="ana", currency=USD, amount=8 * M)
    done = reverse(ledger, ReversalRow("rv-1", "task-1", None, "fraud"))
    assert (done.from_available[USD], done.owed[USD]) == (2 * M, 8 * M)
    assert position(ledger) == (0, 0, 8 * M, 8 * M)
    receipt = ledger.post(key="c1:p", hold_id="c1", gross=8 * M, fee=M // 10)
    assert receipt.status == HoldStatus.POSTED and receipt.released == 0
    assert position(ledger) == (0, 0, 0, 8 * M)
    t = ledger.totals(USD)
    assert (t.earned, t.reversed, t.paid_out + t.fees, t.owed) == (10 * M, 10 * M, 8 * M, 8 * M)
    sound(ledger)


def test_a_reversal_of_money_already_paid_out_is_owed(ledger: Ledger, clock: FakeClock) -> None:
    """Reversing an earning whose money was paid out leaves all of it owed."""
    owing(ledger, clock)
    assert ledger.totals(USD).owed == 10 * M
    sound(ledger)


# ---------------------------------------------------------------- amounts and refusals


def test_partial_reversals_add_up_to_the_credited_amount(ledger: Ledger, clock: FakeClock) -> None:
    """Parts add up to what was credited; more is refused naming the event, and moves nothing."""
    earn(ledger, clock, "task-1", 10 * M)
    reverse(ledger, ReversalRow("rv-1", "task-1", 3 * M, "price adjusted"))
    reverse(ledger, ReversalRow("rv-2", "task-1", 3 * M, "price adjusted again"))
    with pytest.raises(ReversalRefused, match=r"event_id 'task-1'.*more than the 4\.00 USD left"):
        reverse(ledger, ReversalRow("rv-3", "task-1", 4 * M + 1, "too much"))
    assert position(ledger) == (0, 4 * M, 0, 0)
    last = reverse(ledger, ReversalRow("rv-3", "task-1", None, "the rest"))
    assert last.amount[USD] == 4 * M
    with pytest.raises(ReversalRefused, match=r"event_id 'task-1'.*already reversed in full"):
        reverse(ledger, ReversalRow("rv-4", "task-1", 1, "once more"))
    with pytest.raises(ReversalRefused, match="task-1"):
        reverse(ledger, ReversalRow("rv-5", "task-1", None, "all of nothing"))
    assert position(ledger) == (0, 0, 0, 0)
    assert ledger.totals(USD).reversed == 10 * M
    assert query(ledger.db, "SELECT reversed FROM earnings WHERE event_id = 'task-1'") == [
        (10 * M,)
    ]
    sound(ledger)


def test_a_reversal_is_idempotent_by_its_id(ledger: Ledger, clock: FakeClock) -> None:
    """Same reversal id and content: a duplicate; other amount (or none), reason or event: a
    conflict."""
    earn(ledger, clock, "task-1", 10 * M)
    earn(ledger, clock, "task-2", 10 * M)
    first = reverse(ledger, ReversalRow("rv-1", "task-1", 3 * M, "price adjusted"))
    again = reverse(ledger, ReversalRow("rv-1", "task-1", 3 * M, "price adjusted"))
    assert (again.reversed, again.duplicates, again.transaction_id) == (0, 1, None)
    for other in (
        ReversalRow("rv-1", "task-1", None, "price adjusted"),  # "all that is left" is not 3.00
        ReversalRow("rv-1", "task-1", 2 * M, "price adjusted"),
        ReversalRow("rv-1", "task-1", 3 * M, "another reason"),
        ReversalRow("rv-1", "task-2", 3 * M, "price adjusted"),
    ):
        with pytest.raises(IdempotencyConflict, match="rv-1"):
            reverse(ledger, other)
        listed = reverse(ledger, other, on_conflict="skip")
        assert [r.reversal_id for r in listed.refused] == ["rv-1"]
        assert "other content" in listed.refused[0].reason
    assert position(ledger) == (0, 17 * M, 0, 0)
    found = ledger.reversal("rv-1")
    assert found is not None
    assert (found["event_id"], found["amount"], found["transaction_id"]) == (
        "task-1",
        3 * M,
        first.transaction_id,
    )
    sound(ledger)


def test_a_batch_with_one_reversal_twice(ledger: Ledger, clock: FakeClock) -> None:
    """A reversal id twice in one batch: applied once if the same, a conflict if not."""
    earn(ledger, clock, "task-1", 10 * M)
    row = ReversalRow("rv-1", "task-1", M, "price adjusted")
    done = reverse(ledger, row, row)
    assert (done.reversed, done.duplicates) == (1, 1)
    twice = [ReversalRow("rv-2", "task-1", M, "a"), ReversalRow("rv-2", "task-1", M, "b")]
    with pytest.raises(IdempotencyConflict, match="appears twice in this batch"):
        reverse(ledger, *twice)
    listed = reverse(ledger, *twice, on_conflict="skip")
    assert (listed.reversed, [r.reversal_id for r in listed.refused]) == (1, ["rv-2"])
    assert position(ledger) == (0, 8 * M, 0, 0)
    sound(ledger)


def test_a_reversal_of_an_unknown_event_is_refused(ledger: Ledger, clock: FakeClock) -> None:
    """An event id no earning was credited with is refused by name; nothing is written."""
    earn(ledger, clock, "task-1", 10 * M)
    with pytest.raises(ReversalRefused, match=r"event_id 'task-9'.*no earning was credited"):
        reverse(ledger, ReversalRow("rv-1", "task-9", None, "fraud"))
    assert ledger.reversal("rv-1") is None
    assert query(ledger.db, "SELECT COUNT(*) FROM ledger_transactions WHERE kind = 'reversal'") == [
        (0,)
    ]


@pytest.mark.parametrize(
    ("user", "cur"), [("bob", None), (None, KRW), ("bob", KRW)], ids=["user", "currency", "both"]
)
def test_a_row_naming_another_payee_or_currency_is_refused(
    ledger: Ledger, clock: FakeClock, user: str | None, cur: str | None
) -> None:
    """A row (a file's) that names the payee or currency must name the earning's own."""
    earn(ledger, clock, "task-1", 10 * M)
    with pytest.raises(ReversalRefused, match=r"'task-1'.*was credited to ana in USD"):
        reverse(ledger, ReversalRow("rv-1", "task-1", M, "fraud", user, cur))
    assert reverse(ledger, ReversalRow("rv-1", "task-1", M, "fraud", "ana", USD)).reversed == 1
    assert position(ledger) == (0, 9 * M, 0, 0)


def test_skip_mode_lists_refusals_and_applies_the_good_rows(
    ledger: Ledger, clock: FakeClock
) -> None:
    """With on_conflict="skip" the refused rows are listed with why, the others applied."""
    earn(ledger, clock, "task-1", 10 * M)
    earn(ledger, clock, "task-2", 5 * M, user="bob")
    reverse(ledger, ReversalRow("rv-0", "task-2", M, "earlier"))
    done = reverse(
        ledger,
        ReversalRow("rv-1", "task-1", 2 * M, "good"),
        ReversalRow("rv-2", "task-9", None, "unknown event"),
        ReversalRow("rv-3", "task-2", 5 * M, "more than is left"),
        ReversalRow("rv-0", "task-2", 2 * M, "reused id"),
        ReversalRow("rv-4", "task-1", 2 * M, "wrong payee", "bob"),
        ReversalRow("rv-5", "task-2", None, "good too"),
        on_conflict="skip",
    )
    refused = {r.reversal_id: (r.event_id, r.reason) for r in done.refused}
    assert sorted(refused) == ["rv-0", "rv-2", "rv-3", "rv-4"]
    assert "no earning was credited" in refused["rv-2"][1]
    assert "is more than the 4.00 USD left" in refused["rv-3"][1]
    assert "other content" in refused["rv-0"][1]
    assert "this row says bob" in refused["rv-4"][1]
    assert (done.reversed, dict(done.amount)) == (2, {USD: 6 * M})
    assert position(ledger) == (0, 8 * M, 0, 0)
    assert position(ledger, "bob") == (0, 0, 0, 0)
    sound(ledger)


def test_raise_mode_writes_nothing_when_one_row_is_refused(
    ledger: Ledger, clock: FakeClock
) -> None:
    """By default one refused row refuses the batch: no reversal, leg or earning changes."""
    earn(ledger, clock, "task-1", 10 * M)
    with pytest.raises(ReversalRefused, match="task-9"):
        reverse(
            ledger,
            ReversalRow("rv-1", "task-1", 2 * M, "good"),
            ReversalRow("rv-2", "task-9", None, "unknown"),
        )
    assert position(ledger) == (0, 10 * M, 0, 0)
    assert ledger.reversal("rv-1") is None
    assert query(ledger.db, "SELECT reversed FROM earnings") == [(0,)]
    assert ledger.totals(USD).reversed == 0


def test_a_credit_batch_may_reverse_its_own_earnings(ledger: Ledger, clock: FakeClock) -> None:
    """Reversals sent with earnings apply after them, in one transaction: all of it or none."""
    earn(ledger, clock, "task-0", 3 * M)
    rows = [
        EarningRow("task-1", "ana", USD, 10 * M, old(clock)),
        EarningRow("task-2", "ana", USD, 4 * M, to_epoch_us(clock.now)),
    ]
    bad = [ReversalRow("rv-1", "task-1", M, "good"), ReversalRow("rv-2", "task-1", 99 * M, "no")]
    with pytest.raises(ReversalRefused, match="task-1"):
        ledger.credit_earnings(rows, reversals=bad)
    assert position(ledger) == (0, 3 * M, 0, 0)
    assert query(ledger.db, "SELECT COUNT(*) FROM earnings") == [(1,)]
    summary = ledger.credit_earnings(
        rows,
        reversals=[
            ReversalRow("rv-1", "task-1", M, "good"),
            ReversalRow("rv-2", "task-2", None, "all of the pending one"),
            ReversalRow("rv-3", "task-0", 3 * M, "an older one"),
        ],
    )
    assert summary.credited == 2
    assert (summary.reversals.reversed, summary.reversals.amount[USD]) == (3, 8 * M)
    assert position(ledger) == (0, 9 * M, 0, 0)
    sound(ledger)


# ---------------------------------------------------------------- settlement


def test_maturing_earnings_settle_what_is_owed(ledger: Ledger, clock: FakeClock) -> None:
    """Maturing earnings pay back what is owed first, in a `settle` transaction of their own."""
    owing(ledger, clock)
    earn(ledger, clock, "task-2", 3 * M, mature=False)
    clock.advance(hours=73)
    matured = ledger.mature_due()
    assert position(ledger) == (0, 0, 0, 7 * M)
    assert settlements(ledger.db) == [
        (
            f"settle:{matured.transaction_id}",
            "ana",
            {("ana", "available"): -3 * M, ("ana", "owed"): 3 * M},
        )
    ]
    sound(ledger)


def test_earnings_credited_mature_settle_what_is_owed(ledger: Ledger, clock: FakeClock) -> None:
    """An earning credited already mature pays back what is owed first; the rest is available."""
    owing(ledger, clock)
    tx = earn(ledger, clock, "task-2", 12 * M)
    assert position(ledger) == (0, 2 * M, 0, 0)
    assert settlements(ledger.db) == [
        (f"settle:{tx}", "ana", {("ana", "available"): -10 * M, ("ana", "owed"): 10 * M})
    ]
    sound(ledger)


def test_a_void_settles_what_is_owed(ledger: Ledger, clock: FakeClock) -> None:
    """A cash-out voided after its earning was reversed gives its hold back to the debt."""
    hold = owing(ledger, clock, posted=False)
    receipt = ledger.void(key="c1:v", hold_id=hold, reason="rejected")
    assert receipt.released == 10 * M
    assert position(ledger) == (0, 0, 0, 0)
    assert settlements(ledger.db) == [
        (
            f"settle:{receipt.transaction_id}",
            "ana",
            {("ana", "available"): -10 * M, ("ana", "owed"): 10 * M},
        )
    ]
    sound(ledger)


def test_a_return_settles_what_is_owed(ledger: Ledger, clock: FakeClock) -> None:
    """A payout the rail returned (gross and fee back) pays back what is owed first."""
    hold = owing(ledger, clock)
    earn(ledger, clock, "task-2", 4 * M)  # pays back 4.00 of the 10.00
    receipt = ledger.reverse(key="c1:x", hold_id=hold, reason="returned")
    assert receipt.released == 10 * M
    assert position(ledger) == (0, 4 * M, 0, 0)
    keys = [key for key, _, _ in settlements(ledger.db)]
    assert keys[-1] == f"settle:{receipt.transaction_id}"
    assert settlements(ledger.db)[-1][2] == {("ana", "available"): -6 * M, ("ana", "owed"): 6 * M}
    sound(ledger)


def test_the_unpaid_rest_of_a_partial_post_settles_what_is_owed(
    ledger: Ledger, clock: FakeClock
) -> None:
    """What a partial post releases pays back what is owed first."""
    hold = owing(ledger, clock, posted=False)
    receipt = ledger.post(key="c1:p", hold_id=hold, gross=7 * M, fee=0)
    assert receipt.released == 3 * M
    assert position(ledger) == (0, 0, 0, 7 * M)
    assert settlements(ledger.db)[-1][0] == f"settle:{receipt.transaction_id}"
    sound(ledger)


def test_nothing_owed_means_no_settlement(ledger: Ledger, clock: FakeClock) -> None:
    """Without a debt, releases write no `settle` transaction."""
    earn(ledger, clock, "task-1", 10 * M)
    ledger.reserve(key="c1:r", hold_id="c1", user_id="ana", currency=USD, amount=5 * M)
    ledger.void(key="c1:v", hold_id="c1", reason="cancelled")
    earn(ledger, clock, "task-2", 2 * M, mature=False)
    clock.advance(hours=73)
    ledger.mature_due()
    assert settlements(ledger.db) == []
    assert position(ledger) == (0, 12 * M, 0, 0)


# ---------------------------------------------------------------- the reserve gate


def test_a_payee_owing_cannot_reserve_beyond_the_allowance(
    ledger: Ledger, clock: FakeClock
) -> None:
    """Owing more than the allowance, in any currency, refuses a cash-out with OwedBalance."""
    owing(ledger, clock)
    earn(ledger, clock, "won-1", 50_000 * M, cur=KRW)

    def reserve(hold: str, cur: str, amount: int, allowances: dict[str, int] | None) -> None:
        ledger.reserve(
            key=f"{hold}:r",
            hold_id=hold,
            user_id="ana",
            currency=cur,
            amount=amount,
            owed_allowances=allowances,
        )

    with pytest.raises(OwedBalance, match=r"owes 10\.00 USD"):
        reserve("k1", USD, 1, None)
    with pytest.raises(OwedBalance, match=r"owes 10\.00 USD"):
        reserve("k2", KRW, 1_000 * M, None)  # a debt in USD stops KRW cash-outs too
    with pytest.raises(OwedBalance):
        reserve("k3", KRW, 1_000 * M, {USD: 10 * M - 1})
    with pytest.raises(InsufficientFunds):
        reserve("k4", USD, 1, {USD: 10 * M})  # past the gate: nothing is available in USD
    reserve("k5", KRW, 1_000 * M, {USD: 10 * M})
    assert position(ledger, cur=KRW) == (0, 49_000 * M, 1_000 * M, 0)
    earn(ledger, clock, "task-2", 10 * M)  # pays the debt back
    reserve("k6", KRW, 1_000 * M, None)
    assert position(ledger, cur=KRW)[2] == 2_000 * M
    sound(ledger)


# ---------------------------------------------------------------- the platform's notification


def test_the_outbox_hears_of_a_change_in_what_is_owed(ledger: Ledger, clock: FakeClock) -> None:
    """A reversal that changes what is owed writes one OWED_CHANGED row; others write none."""
    earn(ledger, clock, "task-1", 10 * M)
    earn(ledger, clock, "task-2", 6 * M)
    earn(ledger, clock, "task-3", 8 * M, mature=False)
    reverse(ledger, ReversalRow("rv-1", "task-3", M, "pending"))
    ledger.reserve(key="c1:r", hold_id="c1", user_id="ana", currency=USD, amount=14 * M)
    reverse(ledger, ReversalRow("rv-2", "task-1", M, "from available"))
    assert owed_notes(ledger.db) == []
    with pytest.raises(ReversalRefused):
        reverse(
            ledger,
            ReversalRow("rv-3", "task-1", 5 * M, "owed"),
            ReversalRow("rv-x", "task-9", None, "refused"),
        )
    assert owed_notes(ledger.db) == []
    first = reverse(
        ledger,
        ReversalRow("rv-3", "task-1", 5 * M, "owed"),
        ReversalRow("rv-4", "task-2", 2 * M, "owed more"),
    )
    second = reverse(ledger, ReversalRow("rv-5", "task-2", None, "owed the rest"))
    assert position(ledger) == (7 * M, 0, 14 * M, 10 * M)
    notes = owed_notes(ledger.db)
    assert [(ev, user) for ev, user, _ in notes] == [
        (f"owed:{first.transaction_id}:USD:ana", "ana"),
        (f"owed:{second.transaction_id}:USD:ana", "ana"),
    ]
    payloads = [p for _, _, p in notes]
    assert payloads[0]["stage"] == "OWED_CHANGED"
    assert payloads[0]["currency"] == USD
    assert (payloads[0]["owed_before"], payloads[0]["owed_after"]) == (0, 6 * M)
    assert payloads[0]["reversal_ids"] == ["rv-3", "rv-4"]
    assert (payloads[1]["owed_before"], payloads[1]["owed_after"]) == (6 * M, 10 * M)
    assert payloads[1]["reversal_ids"] == ["rv-5"]
    assert [c.after for c in second.owed_changes] == [10 * M]
    reverse(ledger, ReversalRow("rv-5", "task-2", None, "owed the rest"))  # a duplicate
    assert len(owed_notes(ledger.db)) == 2
    sound(ledger)


# ---------------------------------------------------------------- the database's own refusals


def refused(db: Database, statement: str) -> str:
    """Run a raw statement as a bug or a hand-typed fix would; the database must refuse."""
    db.ensure_schema()
    with pytest.raises(DBAPIError) as exc, db.engine.begin() as conn:
        conn.execute(sa.text(statement))
    return str(exc.value.orig)


def test_the_database_refuses_an_owed_balance_above_zero(ledger: Ledger, clock: FakeClock) -> None:
    """Raw SQL cannot make an owed balance positive (the migration's CHECK or trigger)."""
    owing(ledger, clock)
    why = refused(ledger.db, "UPDATE accounts SET balance = 1 WHERE kind = 'owed'")
    assert "owed balance above zero" in why or "ck_accounts_owed_not_positive" in why
    assert position(ledger) == (0, 0, 0, 10 * M)


def test_the_database_refuses_reversed_beyond_the_earning(ledger: Ledger, clock: FakeClock) -> None:
    """Raw SQL cannot set an earning's reversed amount above its amount or below zero."""
    earn(ledger, clock, "task-1", 10 * M)
    for value in ("amount + 1", "-1"):
        why = refused(ledger.db, f"UPDATE earnings SET reversed = {value}")
        assert "reversed beyond the earning" in why or "ck_earnings_reversed_bounds" in why
    assert query(ledger.db, "SELECT reversed FROM earnings") == [(0,)]


def test_the_database_refuses_a_new_owed_account_above_zero(ledger: Ledger) -> None:
    """An owed account cannot be created above zero either."""
    why = refused(
        ledger.db,
        "INSERT INTO accounts (owner, kind, currency, balance) VALUES ('ana', 'owed', 'USD', 5)",
    )
    assert "owed" in why


def test_an_earning_inserted_reversed_beyond_its_amount_is_caught(
    ledger: Ledger, clock: FakeClock, db_url: str
) -> None:
    """An earning written with more reversed than its amount: PostgreSQL refuses it; SQLite
    (no insert trigger: it slowed bulk ingest many times over) takes it, and the audit
    names it."""
    tx = earn(ledger, clock, "task-1", 10 * M)
    sql = (
        "INSERT INTO earnings (event_id, user_id, currency, amount, earned_at, matures_at, "
        f"credit_tx_id, mature_tx_id, reversed) VALUES ('task-2', 'ana', 'USD', 10, 0, 0, {tx}, "
        f"{tx}, 11)"
    )
    if not db_url.startswith("sqlite"):
        assert "reversed" in refused(ledger.db, sql)
        return
    with ledger.db.engine.begin() as conn:
        conn.exec_driver_sql(sql)
    assert "earning 'task-2' has 11 reversed of 10" in ledger.audit()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE accounts SET balance = 1 WHERE kind = 'owed'",
        "UPDATE earnings SET reversed = amount + 1",
    ],
    ids=["owed", "reversed"],
)
def test_a_write_refused_for_a_reversal_invariant_is_invalid_state(
    ledger: Ledger, clock: FakeClock, statement: str
) -> None:
    """Through the ledger's write path, that refusal is an InvalidState naming the rule."""
    owing(ledger, clock)

    def write() -> None:
        with ledger.db.write_connection() as conn:
            conn.execute(sa.text(statement))

    with pytest.raises(InvalidState, match="the ledger database refused the write"):
        write()
    assert position(ledger) == (0, 0, 0, 10 * M)


# ---------------------------------------------------------------- races


def test_a_reversal_racing_a_cash_out_keeps_the_books(ledger: Ledger, clock: FakeClock) -> None:
    """A reversal racing a cash-out of one payee: none negative, the hold intact, books clean."""
    payees = [f"p{i}" for i in range(8)]
    for user in payees:
        earn(ledger, clock, f"{user}-big", 10 * M, user=user)
        earn(ledger, clock, f"{user}-small", 4 * M, user=user)
        ledger.reserve(key=f"{user}-0:r", hold_id=f"{user}-0", user_id=user, currency=USD,
                       amount=6 * M)  # fmt: skip
    start = threading.Barrier(2 * len(payees))

    def reversal(user: str) -> None:
        start.wait()
        reverse(ledger, ReversalRow(f"{user}-rv", f"{user}-big", None, "chargeback"))

    def cash_out(user: str) -> bool:
        start.wait()
        try:
            ledger.reserve(key=f"{user}-1:r", hold_id=f"{user}-1", user_id=user, currency=USD,
                           amount=5 * M)  # fmt: skip
        except OwedBalance:
            return False
        return True

    with ThreadPoolExecutor(2 * len(payees)) as pool:
        reversed_ = [pool.submit(reversal, user) for user in payees]
        reserved = {user: pool.submit(cash_out, user) for user in payees}
        for f in reversed_:
            f.result()
    for user in payees:
        if reserved[user].result():  # the cash-out first: 3.00 left to give, 7.00 owed
            assert position(ledger, user) == (0, 0, 11 * M, 7 * M)
            ledger.post(key=f"{user}-1:p", hold_id=f"{user}-1", gross=5 * M, fee=0)
        else:  # the reversal first: 8.00 available gives it all but 2.00, which is owed
            assert position(ledger, user) == (0, 0, 6 * M, 2 * M)
        ledger.post(key=f"{user}-0:p", hold_id=f"{user}-0", gross=6 * M, fee=0)
    sound(ledger)
    t = ledger.totals(USD)
    assert (t.earned, t.reversed, t.available, t.held) == (112 * M, 80 * M, 0, 0)
    assert t.owed == sum(ledger.balance(user, USD).owed for user in payees)


def test_racing_reversals_of_one_earning_never_take_more_than_it_credited(
    ledger: Ledger, clock: FakeClock
) -> None:
    """Reversals of one earning at once never take back more than it credited."""
    earn(ledger, clock, "task-1", 10 * M)
    start = threading.Barrier(6)

    def attempt(i: int) -> int:
        start.wait()
        try:
            return int(reverse(ledger, ReversalRow(f"rv-{i}", "task-1", 3 * M, "race")).reversed)
        except ReversalRefused:
            return 0

    with ThreadPoolExecutor(6) as pool:
        applied = sum(pool.map(attempt, range(6)))
    assert applied == 3
    assert position(ledger) == (0, M, 0, 0)
    assert query(ledger.db, "SELECT reversed FROM earnings") == [(9 * M,)]
    sound(ledger)


@contextmanager
def earning_locked(db: Database, event_id: str) -> Iterator[Callable[[int], None]]:
    """PostgreSQL: hold the earning's row lock, so that writers who reach it wait; yields
    `wait(n)`, which returns once n of them are waiting. SQLite (writers queue at BEGIN
    IMMEDIATE, one at a time): nothing to hold, `wait` returns at once."""
    if db.is_sqlite:
        yield lambda n: None
        return
    db.ensure_schema()
    with db.engine.connect() as conn, conn.begin():
        conn.execute(
            sa.text("SELECT id FROM earnings WHERE event_id = :e FOR UPDATE"), {"e": event_id}
        )
        xid = conn.execute(
            sa.text(
                "SELECT transactionid::text FROM pg_locks WHERE pid = pg_backend_pid() "
                "AND locktype = 'transactionid' AND granted"
            )
        ).scalar_one()
        waiting = sa.text(
            "SELECT COUNT(*) FROM pg_locks WHERE NOT granted AND ("
            "(locktype = 'transactionid' AND transactionid::text = :xid) OR "
            "(locktype = 'tuple' AND relation = 'earnings'::regclass))"
        )

        def wait(n: int) -> None:
            deadline = time.monotonic() + 30
            while conn.execute(waiting, {"xid": xid}).scalar_one() < n:
                assert time.monotonic() < deadline, f"{n} writers never waited for {event_id}"
                time.sleep(0.01)

        yield wait


@pytest.mark.parametrize("amount", [None, 3 * M], ids=["whole", "part"])
def test_copies_of_one_reversal_sent_at_once_are_duplicates(
    ledger: Ledger, clock: FakeClock, amount: int | None
) -> None:
    """Copies of one reversal sent at once are applied once; the others are duplicates."""
    earn(ledger, clock, "task-1", 10 * M)
    copies = 3
    row = ReversalRow("rv-1", "task-1", amount, "chargeback")
    with ThreadPoolExecutor(copies) as pool:
        with earning_locked(ledger.db, "task-1") as wait:
            sent = [pool.submit(reverse, ledger, row) for _ in range(copies)]
            wait(copies)
        done = [f.result() for f in sent]
    assert sorted((d.reversed, d.duplicates) for d in done) == [(0, 1)] * (copies - 1) + [(1, 0)]
    assert position(ledger) == (0, 10 * M - (amount or 10 * M), 0, 0)
    sound(ledger)


def test_a_resent_reversal_naming_another_payee_is_a_conflict(
    ledger: Ledger, clock: FakeClock
) -> None:
    """A reversal id applied before, sent again naming another payee or currency than the
    earning's, is not a duplicate: it conflicts, naming the event."""
    earn(ledger, clock, "task-1", 10 * M)
    ledger.reverse_earnings([ReversalRow("rv-1", "task-1", M, "fraud", "ana", "USD")])
    for user, cur in (("bob", "USD"), ("ana", "EUR")):
        with pytest.raises(IdempotencyConflict, match="'task-1'"):
            ledger.reverse_earnings([ReversalRow("rv-1", "task-1", M, "fraud", user, cur)])
    again = ledger.reverse_earnings([ReversalRow("rv-1", "task-1", M, "fraud", "ana", "USD")])
    assert again.duplicates == 1


def test_paying_a_debt_back_tells_the_platform(ledger: Ledger, clock: FakeClock) -> None:
    """Money that settles what a payee owes writes a `payee.owed_settled` event with what
    they owed before and after, in the same transaction as the settlement."""
    earn(ledger, clock, "task-1", 10 * M)
    ledger.reserve(key="h:r", hold_id="h", user_id="ana", currency="USD", amount=10 * M)
    ledger.post(key="h:p", hold_id="h", gross=10 * M, fee=0)
    ledger.reverse_earnings([ReversalRow("rv-1", "task-1", None, "chargeback")])
    earn(ledger, clock, "task-2", 4 * M)
    rows = query(
        ledger.db, "SELECT event_id, payload_json FROM notifications WHERE stage = 'OWED_SETTLED'"
    )
    [(event_id, payload)] = rows
    data = json.loads(payload)
    assert (data["owed_before"], data["owed_after"], data["settled"]) == (10 * M, 6 * M, 4 * M)
    assert event_id.startswith("settled:") and event_id.endswith(":USD:ana")


def test_a_file_with_reversals_takes_the_earnings_before_any_account(
    ledger: Ledger, clock: FakeClock
) -> None:
    """Ingest with a reversal waits for the reversed earning before it locks any account
    (maturation's order: earnings, then accounts), so the two cannot deadlock; it then
    completes."""
    earn(ledger, clock, "task-1", 10 * M)
    rows = [EarningRow("task-2", "ana", USD, 4 * M, old(clock))]
    reversal = [ReversalRow("rv-1", "task-1", 2 * M, "price adjusted")]
    with ThreadPoolExecutor(1) as pool, earning_locked(ledger.db, "task-1") as wait:
        done = pool.submit(ledger.credit_earnings, rows, reversals=reversal)
        wait(1)  # (SQLite: nothing to wait for, the writer holds the database)
        if not ledger.db.is_sqlite:
            with ledger.db.engine.connect() as conn, conn.begin():
                free = conn.execute(  # no account of hers is locked while it waits
                    sa.text("SELECT id FROM accounts WHERE owner = 'ana' FOR UPDATE NOWAIT")
                ).all()
            assert free
    assert done.result().reversals.reversed == 1
    assert position(ledger) == (0, 12 * M, 0, 0)
    sound(ledger)
