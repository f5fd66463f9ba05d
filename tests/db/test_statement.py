"""The payee's statement (`payouts.ledger.statement`): every movement in time order, with
running balances that reconcile with the ledger, on SQLite and PostgreSQL."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from payouts.domain.statements import Balances, LineKind, StatementLine
from payouts.errors import InvalidInput
from payouts.ledger import EarningRow, Ledger
from payouts.ledger.reversals import ReversalRow
from payouts.ledger.statement import statement
from payouts.store.database import Database
from payouts.store.tables import to_epoch_us
from tests.support.databases import FakeClock

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def at(when: datetime) -> int:
    return to_epoch_us(when)


def history(ledger: Ledger, clock: FakeClock) -> None:
    """Alice's two currencies: earnings credited already mature and pending, a partly paid
    cash-out, a voided one, a returned one, one still in progress; reversals from pending,
    from available and beyond (owed), settled by a void, a return, a late credit and a
    maturation; EUR ends owing. Bob's movements must never show."""
    clock.now = T0
    early, today = datetime(2026, 11, 15, 6, tzinfo=UTC), datetime(2026, 11, 20, 8, tzinfo=UTC)
    rows = [EarningRow(f"a-{i}", "alice", "USD", 250_000, at(early) + i) for i in range(40)]
    rows += [EarningRow(f"a-p{i}", "alice", "USD", 100_000, at(today) + i) for i in range(10)]
    rows += [EarningRow(f"e-{i}", "alice", "EUR", 500_000, at(early) + i) for i in range(20)]
    rows += [EarningRow(f"b-{i}", "bob", "USD", 700_000, at(early) + i) for i in range(5)]
    ledger.credit_earnings(rows)
    clock.now = T0 + timedelta(hours=1)
    ledger.reserve(key="ra", hold_id="cashout-a", user_id="alice", currency="USD",
                   amount=6_000_000)  # fmt: skip
    ledger.post(key="pa", hold_id="cashout-a", gross=5_990_000, fee=350_000)
    ledger.reserve(key="rb", hold_id="cashout-b", user_id="alice", currency="USD",
                   amount=2_000_000)  # fmt: skip
    ledger.reserve(key="rc", hold_id="cashout-c", user_id="alice", currency="EUR",
                   amount=8_000_000)  # fmt: skip
    ledger.post(key="pc", hold_id="cashout-c", gross=8_000_000, fee=500_000)
    ledger.reserve(key="rbob", hold_id="cashout-bob", user_id="bob", currency="USD",
                   amount=1_000_000)  # fmt: skip
    clock.now = T0 + timedelta(hours=2)
    reversals = [ReversalRow("rv-1", "a-0", None, "duplicate task"),
                 ReversalRow("rv-2", "a-p0", 50_000, "price adjusted")]  # fmt: skip
    reversals += [ReversalRow(f"rv-u{i}", f"a-{i}", None, "fraud") for i in range(1, 20)]
    reversals += [ReversalRow(f"rv-e{i}", f"e-{i}", None, "fraud") for i in range(6)]
    reversals.append(ReversalRow("rv-p9", "a-p9", 10_000, "price adjusted"))  # after the owed
    ledger.reverse_earnings(reversals)  # USD: 1.76 from available, 2.99 owed; EUR: 1 owed
    ledger.void(key="vb", hold_id="cashout-b", reason="rejected by review")  # settles 2.00
    clock.now = T0 + timedelta(hours=3)
    ledger.reverse(key="xc", hold_id="cashout-c", reason="account closed")  # settles 1 EUR
    clock.now = T0 + DAY
    late = datetime(2026, 11, 16, 12, tzinfo=UTC)  # sent late: already mature, settles 0.50
    ledger.credit_earnings([EarningRow("a-late", "alice", "USD", 500_000, at(late))])
    clock.now = T0 + 4 * DAY
    ledger.mature_due()  # 0.95 USD matures and settles the last 0.49 owed
    ledger.reserve(key="rd", hold_id="cashout-d", user_id="alice", currency="USD",
                   amount=400_000)  # fmt: skip
    ledger.reserve(key="rg", hold_id="cashout-g", user_id="alice", currency="EUR",
                   amount=7_000_000)  # fmt: skip
    ledger.reverse_earnings([ReversalRow(f"rv-g{i}", f"e-{i}", None, "fraud")
                             for i in range(6, 10)])  # fmt: skip  # EUR owes 2.00


def check_running(lines: list[StatementLine]) -> dict[str, Balances]:
    """Each line's balances are the previous ones plus its change; returns the closing."""
    running: dict[str, Balances] = {}
    closing: dict[str, Balances] = {}
    for line in lines:
        cur = line.currency
        if line.kind == LineKind.OPENING:
            running[cur] = line.balance
        elif line.kind == LineKind.CLOSING:
            closing[cur] = line.balance
        else:
            running[cur] = running[cur] + line.change
        assert line.balance == running[cur] and line.net == running[cur].net, line
    assert closing == running
    return closing


def edges(lines: list[StatementLine], kind: LineKind) -> dict[str, Balances]:
    return {line.currency: line.balance for line in lines if line.kind == kind}


def moves(lines: list[StatementLine]) -> list[StatementLine]:
    return [line for line in lines if line.kind not in (LineKind.OPENING, LineKind.CLOSING)]


def test_closing_balances_are_the_ledgers(db: Database, ledger: Ledger, clock: FakeClock) -> None:
    """With no end, the closing balances are `Ledger.balance` after every kind of movement."""
    # posted, partly posted, voided, returned and pending cash-outs; reversals from pending,
    # available and beyond (owed); settlements; two currencies; each running balance is the
    # one before plus the line's change
    history(ledger, clock)
    assert ledger.audit() == []
    lines = list(statement(db, "alice"))
    closing = check_running(lines)
    assert set(closing) == {"USD", "EUR"}
    for cur, bal in closing.items():
        ledger_bal = ledger.balance("alice", cur)
        assert (bal.pending, bal.available, bal.held, bal.owed) == (
            ledger_bal.pending, ledger_bal.available, ledger_bal.held, ledger_bal.owed,
        )  # fmt: skip
        assert bal.net == ledger_bal.net
    assert closing["EUR"].owed == 2_000_000 and closing["USD"].held == 400_000
    assert edges(lines, LineKind.OPENING) == {"USD": Balances(), "EUR": Balances()}
    assert all(line.at is None for line in lines if line.kind in ("opening", "closing"))
    when = [line.at for line in moves(lines)]
    assert when == sorted(when)  # type: ignore[type-var]
    assert not any("bob" in line.description for line in lines)


def test_earnings_are_grouped_per_utc_day(db: Database, ledger: Ledger, clock: FakeClock) -> None:
    """Earnings are one line per UTC day and currency, opening the day they were earned."""
    history(ledger, clock)
    lines = moves(list(statement(db, "alice")))
    groups = [(x.at, x.currency, x.tasks, x.change) for x in lines if x.kind == "earnings"]
    assert groups == [
        (datetime(2026, 11, 15, tzinfo=UTC), "EUR", 20, Balances(available=10_000_000)),
        (datetime(2026, 11, 15, tzinfo=UTC), "USD", 40, Balances(available=10_000_000)),
        (datetime(2026, 11, 16, tzinfo=UTC), "USD", 1, Balances(available=500_000)),
        (datetime(2026, 11, 20, tzinfo=UTC), "USD", 10, Balances(pending=1_000_000)),
    ]
    first_of_day = next(x for x in lines if x.at and x.at.date() == T0.date())
    assert first_of_day.kind == "earnings"
    assert "40 tasks earned on 2026-11-15 (all already available)" in lines[1].description
    assert {x.kind for x in lines} <= set(LineKind)


def test_cashout_reversal_and_settlement_lines(
    db: Database, ledger: Ledger, clock: FakeClock
) -> None:
    """Cash-outs, returns, reversals (one line each) and settlements say what happened."""
    history(ledger, clock)
    lines = moves(list(statement(db, "alice", currency="USD")))
    by_hold: dict[str, list[str]] = {}
    for x in lines:
        if x.cashout:
            by_hold.setdefault(x.cashout.hold_id, []).append(x.kind)
    assert by_hold == {
        "cashout-a": ["cashout", "cashout_paid"],
        "cashout-b": ["cashout", "cashout_voided"],
        "cashout-d": ["cashout"],
    }
    texts = [x.description for x in lines]
    assert "cash-out a: 6.00 USD reserved (now paid, fee 0.35 USD)" in texts
    assert (
        "cash-out a paid: 5.99 USD sent, fee 0.35 USD, 5.64 USD to you; "
        "0.01 USD not paid out, back to available" in texts
    )
    assert "cash-out b voided (rejected by review): 2.00 USD back to available" in texts
    reversals = [x for x in lines if x.kind == "reversal"]
    assert len(reversals) == 22
    assert "earning a-p0 reversed (price adjusted): 0.05 USD from pending" in texts
    assert "earning a-1 reversed (fraud): 0.25 USD from available" in texts
    # in the order they were applied: the running owed is what the ledger recorded
    assert all(x.reversal and x.reversal.owed_after == x.balance.owed for x in reversals)
    last = [x.reversal for x in reversals if x.reversal and x.reversal.owed][-1]
    assert (last.from_available, last.owed, last.owed_after) == (0, 250_000, 2_990_000)
    assert reversals[-1].reversal and reversals[-1].reversal.reversal_id == "rv-p9"
    settled = [(x.description, x.change.owed) for x in lines if x.kind == "settlement"]
    assert settled == [
        ("2.00 USD of what you owe paid back from cash-out b, voided", -2_000_000),
        ("0.50 USD of what you owe paid back from earnings credited already available", -500_000),
        ("0.49 USD of what you owe paid back from earnings that matured", -490_000),
    ]
    eur = [x.description for x in statement(db, "alice", currency="eur")]
    assert "cash-out c returned (account closed): 8.00 EUR back to available, fee refunded" in eur
    assert "cash-out c: 8.00 EUR reserved (now returned)" in eur
    assert "1.00 EUR of what you owe paid back from cash-out c, returned" in eur
    assert {x.currency for x in statement(db, "alice", currency="EUR")} == {"EUR"}


def test_any_window_reconciles(db: Database, ledger: Ledger, clock: FakeClock) -> None:
    """At any cut, the closing balances up to it are the opening balances from it."""
    # cuts at every line's time, at midnight and inside a day; each window's opening plus
    # its lines is the whole statement's closing
    history(ledger, clock)
    full = list(statement(db, "alice"))
    final = edges(full, LineKind.CLOSING)
    cuts = {x.at for x in moves(full)} | {
        datetime(2026, 11, 15, 3, tzinfo=UTC),
        datetime(2026, 11, 20, tzinfo=UTC),
        datetime(2026, 11, 20, 8, 30, tzinfo=UTC),
        T0 + timedelta(hours=2, microseconds=1),
        datetime(2030, 1, 1, tzinfo=UTC),
    }
    for cut in sorted(c for c in cuts if c is not None):
        before = list(statement(db, "alice", end=cut))
        after = list(statement(db, "alice", start=cut))
        assert check_running(before) == edges(after, LineKind.OPENING), cut
        assert check_running(after) == final, cut
        assert len(moves(before)) + len(moves(after)) >= len(moves(full)), cut
    start, end = datetime(2026, 11, 20, 8, 30, tzinfo=UTC), T0 + 2 * DAY
    window = list(statement(db, "alice", start=start, end=end))
    assert all(x.at and start <= x.at < end for x in moves(window))
    assert [x.at for x in window if x.kind == "closing"] == [end, end]
    # the day's earnings that were earned before the window opened are in its opening
    assert not [x for x in moves(window) if x.kind == "earnings"]


@pytest.mark.parametrize("page", [1, 2, 3, 7])
def test_pages_of_any_size_give_the_same_statement(
    db: Database, ledger: Ledger, clock: FakeClock, page: int
) -> None:
    """The keyset cursors lose and repeat nothing: any page size gives the same lines."""
    history(ledger, clock)
    assert list(statement(db, "alice", page=page)) == list(statement(db, "alice"))
    start = datetime(2026, 11, 16, tzinfo=UTC)
    assert list(statement(db, "alice", start=start, page=page)) == list(
        statement(db, "alice", start=start)
    )


def test_a_statement_is_one_snapshot(db: Database, ledger: Ledger, clock: FakeClock) -> None:
    """Writes during a read do not show in it: a statement is one snapshot and adds up."""
    history(ledger, clock)
    before = {cur: ledger.balance("alice", cur) for cur in ("USD", "EUR")}
    lines = statement(db, "alice", page=1)
    first = [next(lines), next(lines), next(lines)]
    ledger.credit_earnings([EarningRow("during", "alice", "USD", 9_000_000, None)])
    ledger.reverse_earnings([ReversalRow("rv-z", "e-12", None, "late")])
    closing = check_running([*first, *lines])
    for cur, bal in before.items():
        assert (closing[cur].pending, closing[cur].owed) == (bal.pending, bal.owed)
    assert ledger.balance("alice", "EUR").owed == before["EUR"].owed + 500_000


def test_arguments_are_checked_before_reading(db: Database) -> None:
    """Bad arguments are refused at the call, naming the field."""
    when = datetime(2026, 11, 20, tzinfo=UTC)
    for kwargs, field in [
        ({"start": when, "end": when}, "end"),
        ({"currency": "ZZZ"}, "currency"),
        ({"page": 0}, "page"),
    ]:
        with pytest.raises(InvalidInput) as caught:
            statement(db, "alice", **kwargs)  # type: ignore[arg-type]
        assert caught.value.field == field
    with pytest.raises(InvalidInput, match="user_id"):
        statement(db, "@platform")
    assert [x.kind for x in statement(db, "nobody")] == []


def _earnings(n: int, prefix: str, days: int = 40) -> Iterator[EarningRow]:
    base = at(datetime(2026, 9, 1, tzinfo=UTC))
    for i in range(n):
        when = base + (i % days) * 86_400_000_000 + i // days
        yield EarningRow(f"{prefix}{i}", "heavy", "USD", 1 + i % 997, when)


def _peak(db: Database) -> tuple[int, int]:
    """(lines, peak bytes traced) while streaming the payee's whole statement."""
    tracemalloc.start()
    try:
        count = sum(1 for _ in statement(db, "heavy"))
        return count, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_earnings(db: Database, ledger: Ledger) -> None:
    """Streaming 200,000 earnings' statement takes no more memory than 20,000's, < 500 kB."""
    n = 20_000
    ledger.credit_earnings(_earnings(n, "m"))
    _peak(db)  # statements compiled and cached once
    lines_n, peak_n = _peak(db)
    ledger.credit_earnings(_earnings(9 * n, "m2-"))
    lines_10n, peak_10n = _peak(db)
    assert lines_n == lines_10n == 40 + 2
    assert peak_10n < 500_000, peak_10n
    assert peak_10n < peak_n * 1.25 + 50_000, (peak_n, peak_10n)
