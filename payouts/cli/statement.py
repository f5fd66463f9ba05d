"""`payouts statement USER`: every movement of a payee's money, with running balances.

A table by default (it is built whole before it is printed); `--csv` and `--json` stream,
one line at a time, so a statement of any length runs in constant memory. `--json` writes
JSON Lines: one object per line (opening lines, movements, closing lines), amounts as ints
of micro-units. The CSV has amounts as decimal strings and text cells a spreadsheet will
not run as formulas.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from payouts.cli.common import JsonOpt, app, env, out, printable
from payouts.domain import validation
from payouts.domain.money import format_micros, get_currency
from payouts.domain.statements import Balances, LineKind, StatementLine
from payouts.errors import InvalidInput
from payouts.ledger.ingest import cell
from payouts.ledger.statement import statement as read_statement

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
FIELDS = ("pending", "available", "held", "owed")
CSV_HEADER = (
    "at", "currency", "kind", "description", "reference", "tasks",
    *(f"{f}_change" for f in FIELDS), *FIELDS, "net",
)  # fmt: skip


@app.command()
def statement(
    user: Annotated[str, typer.Argument(help="The payee's user id.")],
    date_from: Annotated[
        str | None,
        typer.Option("--from", help="First day (YYYY-MM-DD, UTC) or an ISO 8601 time."),
    ] = None,
    date_to: Annotated[
        str | None,
        typer.Option("--to", help="Last day, included (YYYY-MM-DD), or an ISO 8601 time."),
    ] = None,
    currency: Annotated[str | None, typer.Option("--currency", "-c")] = None,
    csv_out: Annotated[bool, typer.Option("--csv", help="Stream CSV.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """A payee's statement: earnings per day, maturations, reversals, cash-outs, returns and
    settlements of what they owe, with the balances after each, between opening and closing
    balances per currency (no --to: the balances now). JSON is JSON Lines."""
    user = validation.user_id(user, field="USER")
    start = _when(date_from, "--from")
    end = _when(date_to, "--to", day_after=True)
    if start is not None and end is not None and end <= start:
        raise InvalidInput(f"--to: {date_to!r} is not after --from {date_from!r}", field="--to")
    if csv_out and json_out:
        raise InvalidInput("--csv: choose --csv or --json, not both", field="--csv")
    code = None if currency is None else get_currency(currency, field="--currency").code
    lines = read_statement(env.db, user, start=start, end=end, currency=code)
    if json_out:
        for line in lines:
            sys.stdout.write(json.dumps(line.model_dump(mode="json"), sort_keys=True) + "\n")
    elif csv_out:
        _csv(lines)
    else:
        _table(user, lines, date_from, date_to)


def _when(text: str | None, flag: str, *, day_after: bool = False) -> datetime | None:
    """A day (UTC midnight; for --to the day after, so the day is included) or a time."""
    if text is None:
        return None
    value = text.strip()
    try:
        if _DATE.fullmatch(value):
            day = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
            return day + timedelta(days=1) if day_after else day
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise InvalidInput(
            f"{flag}: {text!r} is not a date (YYYY-MM-DD) or an ISO 8601 time with a timezone",
            field=flag,
        )
    return parsed.astimezone(UTC)


def _reference(line: StatementLine) -> str:
    if line.cashout is not None:
        return line.cashout.hold_id
    if line.reversal is not None:
        return line.reversal.reversal_id
    return "" if line.transaction_id is None else f"tx:{line.transaction_id}"


def _csv(lines: Iterator[StatementLine]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for line in lines:
        cur = line.currency

        def amounts(b: Balances) -> list[str]:
            return [format_micros(getattr(b, f), cur) for f in FIELDS]  # noqa: B023

        writer.writerow(
            [
                "" if line.at is None else line.at.isoformat(),
                cur,
                line.kind,
                cell(printable(line.description)),
                cell(_reference(line)),
                "" if line.tasks is None else line.tasks,
                *amounts(line.change),
                *amounts(line.balance),
                format_micros(line.net, cur),
            ]
        )


def _table(user: str, lines: Iterator[StatementLine], start: str | None, end: str | None) -> None:
    period = f" from {start or 'the start'} to {end or 'now'}" if start or end else ""
    table = Table(title=f"Statement of {user}{period}")
    table.add_column("when", no_wrap=True)
    table.add_column("what (and the change)", min_width=28, ratio=1)
    for col in (*FIELDS, "net"):
        table.add_column(col, justify="right", no_wrap=True)
    for line in lines:
        cur, bal = line.currency, line.balance
        edge = line.kind in (LineKind.OPENING, LineKind.CLOSING)
        when = _shown_at(line)
        changed = ", ".join(
            f"{f} {'+' if v > 0 else ''}{format_micros(v, cur)}"
            for f in FIELDS
            if (v := getattr(line.change, f))
        )
        what = line.description + (f"\n{changed}" if changed else "")
        cells = [f"{when} {cur}", what]
        cells += [format_micros(getattr(bal, f), cur) for f in FIELDS]
        cells.append(format_micros(line.net, cur))
        table.add_row(*(Text(printable(c), style="bold") if edge else c for c in cells))
    if not table.row_count:
        out.print(f"{user} has no movements" + period)
        return
    out.print(table)


def _shown_at(line: StatementLine) -> str:
    if line.at is None:
        return "start" if line.kind == LineKind.OPENING else "now"
    if line.kind == LineKind.EARNINGS and line.at.time() == datetime.min.time():
        return line.at.date().isoformat()
    return line.at.strftime("%Y-%m-%d %H:%M:%S")
