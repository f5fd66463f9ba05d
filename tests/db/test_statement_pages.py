"""A statement a page at a time: pages chain into the whole statement, never split one
instant, and take an instant whole when it holds more than a page."""

from __future__ import annotations

from datetime import timedelta

import pytest

from payouts.domain.statements import LineKind, StatementLine
from payouts.errors import InvalidState
from payouts.ledger import EarningRow, Ledger
from payouts.ledger import statement_pages as pages
from payouts.ledger.reversals import ReversalRow
from payouts.ledger.statement import statement
from payouts.ledger.statement_pages import statement_page
from payouts.store.tables import to_epoch_us
from tests.support.databases import FakeClock

M = 1_000_000


def paged(ledger: Ledger, limit: int) -> tuple[list[StatementLine], int]:
    """All pages, chained as the client chains them (edges only at the ends)."""
    out: list[StatementLine] = []
    at, pages = None, 0
    while True:
        lines, until = statement_page(
            ledger.db, "pat", start=at, end=None, currency=None, limit=limit
        )
        pages += 1
        moves = [line for line in lines if line.kind not in (LineKind.OPENING, LineKind.CLOSING)]
        assert len(moves) <= limit or len({m.at for m in moves}) == 1
        if at is None:
            out += [line for line in lines if line.kind == LineKind.OPENING]
        out += moves
        if until is None:
            return out + [line for line in lines if line.kind == LineKind.CLOSING], pages
        assert all(m.at is not None and m.at < until for m in moves)
        at = until


def test_pages_chain_into_the_whole_statement(ledger: Ledger, clock: FakeClock) -> None:
    """Days of earnings, cash-outs and reversals read 4 movements a page give the same
    movements and closing balances as the statement read whole."""
    for day in range(6):
        when = to_epoch_us(clock.now - timedelta(days=10 - day))
        ledger.credit_earnings([EarningRow(f"e{day}", "pat", "USD", (day + 5) * M, when)])
        clock.advance(hours=1)
        hold = f"h{day}"
        ledger.reserve(key=f"{hold}:r", hold_id=hold, user_id="pat", currency="USD", amount=M)
        clock.advance(minutes=5)
        ledger.post(key=f"{hold}:p", hold_id=hold, gross=M, fee=10_000)
    ledger.reverse_earnings([ReversalRow("rv1", "e3", 2 * M, "price adjusted")])
    whole = list(statement(ledger.db, "pat"))
    chained, pages = paged(ledger, 4)
    assert pages > 3
    assert [(w.kind, w.at, w.change, w.balance) for w in whole] == [
        (c.kind, c.at, c.change, c.balance) for c in chained
    ]


def test_one_instant_larger_than_a_page_is_taken_whole(ledger: Ledger, clock: FakeClock) -> None:
    """Fifteen reversals applied at one instant, pages of 5: one page holds all fifteen,
    and the statement still ends at the ledger's balances."""
    when = to_epoch_us(clock.now - timedelta(days=5))
    ledger.credit_earnings([EarningRow(f"e{i}", "pat", "USD", 2 * M, when) for i in range(15)])
    clock.advance(hours=1)
    ledger.reverse_earnings([ReversalRow(f"rv{i}", f"e{i}", M, "fraud") for i in range(15)])
    chained, _ = paged(ledger, 5)
    reversals = [line for line in chained if line.kind == LineKind.REVERSAL]
    assert len(reversals) == 15 and len({r.at for r in reversals}) == 1
    closing = chained[-1].balance
    assert closing.available == ledger.balance("pat", "USD").available == 15 * M


def test_a_page_stays_within_its_bytes(
    ledger: Ledger, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages are cut by size as well as by lines (a Temporal payload has a limit): with long
    reasons each page stays within the budget and a line; one instant larger than the hard
    limit is refused, naming the CLI that streams it."""
    monkeypatch.setattr(pages, "BUDGET", 20_000)
    monkeypatch.setattr(pages, "HARD_LIMIT", 40_000)
    when = to_epoch_us(clock.now - timedelta(days=5))
    ledger.credit_earnings([EarningRow(f"e{i}", "pat", "USD", 2 * M, when) for i in range(90)])
    why = "the requester rejected the work: " + "x" * 400
    for i in range(30):  # thirty instants, a reversal each
        clock.advance(minutes=1)
        ledger.reverse_earnings([ReversalRow(f"rv{i}", f"e{i}", M, why)])
    at, sizes = None, []
    while True:
        lines, until = statement_page(
            ledger.db, "pat", start=at, end=None, currency=None, limit=1000
        )
        moves = [line for line in lines if line.kind not in (LineKind.OPENING, LineKind.CLOSING)]
        sizes.append(sum(len(m.model_dump_json()) for m in moves))
        if until is None:
            break
        at = until
    assert len(sizes) > 1 and max(sizes) <= 20_000 + 2_000
    clock.advance(minutes=1)
    ledger.reverse_earnings([ReversalRow(f"rw{i}", f"e{30 + i}", M, why) for i in range(60)])
    with pytest.raises(InvalidState, match="payouts statement"):
        statement_page(ledger.db, "pat", start=clock.now, end=None, currency=None, limit=1000)
