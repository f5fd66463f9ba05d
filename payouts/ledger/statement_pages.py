"""A statement a page at a time, for callers that cannot hold a stream open (the client,
through Temporal): the lines of [start, until), where `until` is chosen so the page holds
at most `limit` movements and about a MiB of them (a Temporal payload stays well under
its 2 MiB), and never splits the lines of one instant (an instant larger than a page is
refused, naming the CLI that streams it).

A page is a statement of its own window (opening balances at `start`, closing at
`until`), so pages chain: the next one starts at `until`, and its opening balances are
this one's closing ones unless the ledger changed in between (an earning back-dated into a
window already served): the caller then sees the new opening.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from datetime import datetime

from payouts.domain.statements import LineKind, StatementLine
from payouts.errors import InvalidState
from payouts.ledger.statement import statement
from payouts.store.database import Database

EDGES = (LineKind.OPENING, LineKind.CLOSING)
BUDGET = 1 << 20  # bytes of lines (JSON) a page aims at: well inside a 2 MiB payload
HARD_LIMIT = 7 << 18  # 1.75 MiB: one instant larger than this cannot be served in a page


def statement_page(
    db: Database,
    user_id: str,
    *,
    start: datetime | None,
    end: datetime | None,
    currency: str | None,
    limit: int,
) -> tuple[list[StatementLine], datetime | None]:
    """(the page's lines, where the next page starts: None when this is the last)."""

    def read(until: datetime | None) -> Generator[StatementLine]:
        return statement(db, user_id, start=start, end=until, currency=currency)

    lines = read(end)
    try:  # first where to cut: the instant of the first movement past the page
        until = _first_beyond((line for line in lines if line.kind not in EDGES), limit)
    finally:
        lines.close()  # (its read transaction ends here, not when it is collected)
    return list(read(until or end)), until


def _first_beyond(moves: Iterator[StatementLine], limit: int) -> datetime | None:
    """The instant of the first movement past `limit` lines or `BUDGET` bytes (None: they
    all fit). When the movements up to there are all of one instant, the page takes that
    instant whole (up to `HARD_LIMIT` bytes) and stops at the next one."""
    first: datetime | None = None
    size = 0
    for count, line in enumerate(moves, start=1):
        at = line.at
        assert at is not None  # (only opening and closing lines may have no time)
        size += len(line.model_dump_json())
        if first is None:
            first = at
        if count > limit or size > BUDGET:
            if at != first:
                return at
            break
    else:
        return None
    for line in moves:  # one instant holds more than a page: take it whole
        if line.at != first:
            return line.at
        size += len(line.model_dump_json())
        if size > HARD_LIMIT:
            raise InvalidState(
                f"statement: the movements at {first.isoformat()} alone exceed a page "
                f"({HARD_LIMIT >> 10} KiB); read it with payouts statement (it streams)"
            )
    return None
