"""A statement a page at a time, for callers that cannot hold a stream open (the client,
through Temporal): the lines of [start, until), where `until` is chosen so the page holds
at most about `limit` movements and never splits the lines of one instant.

A page is a statement of its own window (opening balances at `start`, closing at
`until`), so pages chain: the next one starts at `until`, and its opening balances are
this one's closing ones unless the ledger changed in between (an earning back-dated into a
window already served): the caller then sees the new opening.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from payouts.domain.statements import LineKind, StatementLine
from payouts.errors import InvalidState
from payouts.ledger.statement import statement
from payouts.store.database import Database

EDGES = (LineKind.OPENING, LineKind.CLOSING)
SAME_INSTANT_CAP = 20  # a page may hold this many times `limit` lines of one instant


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
    until = _cut(db, user_id, start, end, currency, limit)
    lines = list(statement(db, user_id, start=start, end=until or end, currency=currency))
    return lines, until


def _cut(
    db: Database,
    user_id: str,
    start: datetime | None,
    end: datetime | None,
    currency: str | None,
    limit: int,
) -> datetime | None:
    """The instant of the first movement past `limit` (None: they all fit). When the first
    `limit` + 1 movements are all of one instant, the page takes that instant whole and
    stops at the next one."""
    lines = statement(db, user_id, start=start, end=end, currency=currency)
    try:
        return _first_beyond(
            (line.at for line in lines if line.kind not in EDGES and line.at is not None), limit
        )
    finally:
        lines.close()  # (its read transaction ends here, not when it is collected)


def _first_beyond(times: Iterator[datetime], limit: int) -> datetime | None:
    first: list[datetime] = []
    for at in times:
        first.append(at)
        if len(first) > limit:
            break
    else:
        return None
    beyond = first[limit]
    if first[0] != beyond:
        return beyond
    count = len(first)
    for at in times:  # one instant holds more than a page: take it whole
        if at != beyond:
            return at
        count += 1
        if count > limit * SAME_INSTANT_CAP:
            raise InvalidState(
                f"statement: more than {limit * SAME_INSTANT_CAP} movements at "
                f"{beyond.isoformat()}; read it with payouts statement (it streams)"
            )
    return None
