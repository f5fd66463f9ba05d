"""`payouts earn | ingest | balance | quote | mature | audit`: the ledger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from payouts.cli.common import JsonOpt, app, emit_json, env, err, money, out, requested_amount
from payouts.domain import validation
from payouts.domain.fees import arrival_minutes
from payouts.domain.fees import quote as make_quote
from payouts.domain.money import format_micros, format_money, get_currency, parse_micros
from payouts.errors import InvalidInput
from payouts.ledger.ingest import ingest_file


@app.command()
def earn(
    user: Annotated[str, typer.Argument(help="The user who earned it.")],
    amount: Annotated[str, typer.Argument(help="Decimal amount, e.g. 0.000125")],
    currency: Annotated[str, typer.Option("--currency", "-c", help="ISO 4217 code.")],
    event_id: Annotated[
        str | None, typer.Option(help="Idempotency key; default: a new id (printed).")
    ] = None,
    earned_at: Annotated[
        str | None, typer.Option(help="ISO 8601 time with timezone; default: now.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Credit one micro-earning to a user (idempotent by --event-id)."""
    import uuid

    user = validation.user_id(user, field="USER")
    code = get_currency(currency, field="--currency").code
    micros = parse_micros(amount, field="AMOUNT", allow_zero=False)
    ev = validation.event_id(event_id or f"cli-{uuid.uuid4()}", field="--event-id")
    when = (
        validation.timestamp(
            earned_at, field="--earned-at", now=datetime.now(UTC), max_skew=timedelta(minutes=5)
        )
        if earned_at
        else None
    )
    summary = env.ledger.credit_earning(
        event_id=ev, user_id=user, currency=code, amount=micros, earned_at=when
    )
    bal = env.ledger.balance(user, code)
    result = {
        "event_id": ev,
        "credited": summary.credited == 1,
        "duplicate": summary.duplicates == 1,
        "balance": bal.model_dump(),
    }
    if json_out:
        emit_json(result)
        return
    verb = "credited" if summary.credited else "already credited (same event id), skipped"
    out.print(f"{ev}: {money(micros, code)} to {user} {verb}")
    out.print(
        f"{user}: available {money(bal.available, code)}, pending {money(bal.pending, code)}, "
        f"held {money(bal.held, code)}"
    )


@app.command()
def ingest(
    file: Annotated[Path, typer.Argument(help="CSV or JSON Lines file (may be .gz).")],
    rejects: Annotated[
        Path | None,
        typer.Option(help="Credit the good rows; write each bad row and its reason here (CSV)."),
    ] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="csv or jsonl; default: from the file.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Credit every earning in a file: event_id,user_id,amount,currency[,earned_at]; rows
    with `reverses,reason` reverse an earning."""
    if fmt is not None and fmt not in ("csv", "jsonl"):
        raise InvalidInput("--format: must be csv or jsonl", field="--format")
    size = file.stat().st_size if file.is_file() else 0
    show = not json_out and size > 1_000_000
    with Progress(
        TextColumn("{task.description}", style="bold", markup=False),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=not show,
        transient=False,
    ) as bar:
        task = bar.add_task(f"ingest {file.name}", total=size)
        report = ingest_file(
            env.ledger,
            file,
            rejects=rejects,
            fmt=fmt,
            progress=lambda n: bar.advance(task, n),
        )
        bar.update(task, completed=size)
    credited = {cur: format_micros(v, cur) for cur, v in sorted(report.credited_amount.items())}
    data = {
        "file": str(file),
        "rows": report.rows,
        "credited": report.credited,
        "duplicates": report.duplicates,
        "rejected": len(report.rejected),
        "rejects_file": str(rejects) if rejects else None,
        "credited_amount": credited,
        "reversed": report.reversed,
        "reversed_amount": {
            cur: format_micros(v, cur) for cur, v in sorted(report.reversed_amount.items())
        },
        "owed_changed": report.owed_changes,
    }
    if json_out:
        emit_json(data)
        return
    totals = ", ".join(f"{v} {c}" for c, v in credited.items()) or "nothing"
    out.print(
        f"{file}: {report.rows} rows, {report.credited} credited ({totals}), "
        f"{report.duplicates} duplicates skipped, {len(report.rejected)} rejected"
        + (f" (see {rejects})" if rejects and report.rejected else "")
    )
    if report.reversed:
        taken = ", ".join(
            f"{format_micros(v, c)} {c}" for c, v in sorted(report.reversed_amount.items())
        )
        out.print(
            f"{report.reversed} reversals ({taken}); {report.owed_changes} payee(s) now owe more"
        )


@app.command()
def balance(
    user: Annotated[str, typer.Argument(help="User id.")],
    currency: Annotated[str | None, typer.Option("--currency", "-c")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Show a user's pending, available and held balance per currency, and what they owe
    from reversed earnings."""
    user = validation.user_id(user, field="USER")
    if currency:
        balances = [env.ledger.balance(user, get_currency(currency, field="--currency").code)]
    else:
        balances = env.ledger.balances(user)
    if json_out:
        emit_json(
            [
                b.model_dump()
                | {
                    k + "_display": format_micros(getattr(b, k), b.currency)
                    for k in ("pending", "available", "held", "owed")
                }
                for b in balances
            ]
        )
        return
    if not balances:
        out.print(f"{user} has no balance yet")
        return
    table = Table(title=f"Balance of {user}")
    for col in ("currency", "available", "pending", "held", "owed"):
        table.add_column(col, justify="left" if col == "currency" else "right")
    for b in balances:
        table.add_row(
            b.currency,
            money(b.available, b.currency),
            money(b.pending, b.currency),
            money(b.held, b.currency),
            Text(format_money(b.owed, b.currency), style="bold red") if b.owed else "",
        )
    out.print(table)
    if any(b.owed for b in balances):
        out.print("owed: reversed earnings no balance covered; new earnings pay it back first")


@app.command()
def quote(
    user: Annotated[str, typer.Argument(help="User id.")],
    amount: Annotated[str, typer.Argument(help="Decimal amount, or 'all' for the whole balance.")],
    method: Annotated[str, typer.Option("--method", "-m", help="bank_transfer, wallet, gift_card")],
    currency: Annotated[str, typer.Option("--currency", "-c")],
    json_out: JsonOpt = False,
) -> None:
    """Show what a cash-out would pay: gross, fee, net, and what stays in the balance."""
    user = validation.user_id(user, field="USER")
    code = get_currency(currency, field="--currency").code
    requested = requested_amount(amount, user, code)
    q = make_quote(env.policy, method, code, requested)
    rules = env.policy.rules_for(q.method, code)
    instant = make_quote(env.policy, method, code, requested, "instant") if rules.instant else None
    available = env.ledger.balance(user, code).available
    covered = available >= q.gross
    if json_out:
        emit_json(
            q.model_dump(mode="json")
            | {"available": available, "covered": covered}
            | {"instant": instant.model_dump(mode="json") if instant else None}
        )
        return
    table = Table(title=f"Quote for {user}: {q.method.value} in {code}", show_header=False)
    table.add_column("what")
    table.add_column("amount", justify="right")
    table.add_row("requested", money(q.requested, code))
    table.add_row("paid out (gross)", money(q.gross, code))
    table.add_row("fee", money(q.fee, code))
    table.add_row("you receive (net)", money(q.net, code))
    table.add_row("stays in your balance", money(q.remainder, code))
    table.add_row("arrives within", _within(arrival_minutes(rules, "standard")))
    if instant is not None:
        table.add_row("or instantly: fee", money(instant.fee, code))
        table.add_row("instantly: you receive", money(instant.net, code))
        table.add_row("instantly: arrives within", _within(arrival_minutes(rules, "instant")))
    if q.cards:
        table.add_row("gift cards", " + ".join(money(c, code) for c in q.cards))
    table.add_row("available now", money(available, code))
    out.print(table)
    out.print(f"policy version {q.policy_version}")
    if not covered:
        out.print(Text(f"the available balance does not cover {money(q.gross, code)}", "yellow"))


@app.command()
def mature(json_out: JsonOpt = False) -> None:
    """Move every earning whose hold has passed from pending to available."""
    result = env.ledger.mature_due()
    if json_out:
        emit_json(result.model_dump())
        return
    amounts = ", ".join(money(v, c) for c, v in sorted(result.amount.items())) or "nothing"
    out.print(f"{result.earnings} earnings matured ({amounts})")


@app.command()
def audit(json_out: JsonOpt = False) -> None:
    """Check the books: per-currency conservation (earned - reversed = paid out + fees +
    held + available + pending - owed), balanced transactions, no drift, no negative
    balance, nothing owed above zero."""
    totals = [env.ledger.totals(c) for c in env.ledger.currencies()]
    problems = env.ledger.audit()
    if json_out:
        emit_json({"totals": [t.model_dump() for t in totals], "problems": problems})
    else:
        table = Table(title="Ledger totals")
        cols = ("currency", "earned", "reversed", "paid_out", "fees", "held", "available",
                "pending", "owed")  # fmt: skip
        for col in cols:
            table.add_column(col, justify="left" if col == "currency" else "right")
        for t in totals:
            table.add_row(t.currency, *(format_micros(getattr(t, c), t.currency) for c in cols[1:]))
        out.print(table)
        for p in problems:
            err.print(Text("problem:", "red"), p)
        if not problems:
            out.print(
                "books balance: every currency conserves (earned - reversed = paid out + fees"
                " + held + available + pending - owed), every transaction sums to zero"
            )
    if problems:
        raise typer.Exit(1)


def _within(minutes: int) -> str:
    return f"{minutes} minutes" if minutes < 120 else f"{minutes // 60} hours"
