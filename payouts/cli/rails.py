"""`payouts giftcodes | batches | reconcile`: the rails' records and reconciliation."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated

import typer
from rich.table import Table

from payouts.cli.common import JsonOpt, _arun, app, emit_json, env, money, out
from payouts.errors import InvalidInput
from payouts.security.vault import vault_for


@app.command()
def giftcodes(
    request_id: Annotated[str, typer.Argument(metavar="REQUEST_ID")],
    user: Annotated[str, typer.Option("--user", help="The payee (codes are theirs alone).")],
    json_out: JsonOpt = False,
) -> None:
    """Show a gift card cash-out's codes to its payee, once; refused ever after."""
    from payouts.rails.giftcards import codes as giftcards

    cards = giftcards.reveal(
        env.db,
        vault_for(env.settings),
        request_id=request_id,
        user_id=user,
        at=datetime.now(UTC),
    )
    if json_out:
        emit_json(
            [{"face_value": c.face_value, "currency": c.currency, "code": c.code} for c in cards]
        )
        return
    for c in cards:
        out.print(f"{money(c.face_value, c.currency):>14}  {c.code}")
    out.print("these codes will not be shown again")


@app.command()
def batches(json_out: JsonOpt = False) -> None:
    """Bank batch files: items, totals, the bank's verdicts and the fees saved by batching;
    and what was quarantined (a file that failed the schema, a report we cannot read)."""
    from payouts.rails.bank import book, quarantine

    rows = book.batches(env.db)
    reports = quarantine.report_files(env.db, status="quarantined")
    if json_out:
        emit_json(
            {
                "batches": [
                    {
                        "batch_id": b.id,
                        "currency": b.currency,
                        "created_at": b.created_at,
                        "file": str(env.settings.bank_dir / "outbound" / b.file_name),
                        "items": len(b.items),
                        "total": sum(i.amount for i in b.items),
                        "fee_saved": b.fee_saved,
                        "status": b.status,
                        "reason": b.reason,
                        "verdicts": {
                            s: sum(1 for i in b.items if i.status == s)
                            for s in {i.status for i in b.items}
                        },
                    }
                    for b in rows
                ],
                "quarantined_reports": [
                    {
                        "file": str(env.settings.bank_dir / "inbound" / r.name),
                        "received_at": r.received_at,
                        "reason": r.reason,
                    }
                    for r in reports
                ],
            }
        )
        return
    if not rows and not reports:
        out.print("no bank batches yet")
        return
    table = Table(title=f"Bank batches (files in {env.settings.bank_dir / 'outbound'})")
    for col in ("batch", "time", "items", "total", "saved", "the bank's verdicts"):
        table.add_column(col, no_wrap=col in ("batch", "time"))
    for b in rows:
        counts: dict[str, int] = {}
        for i in b.items:
            counts[i.status] = counts.get(i.status, 0) + 1
        verdicts = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        if b.status == "quarantined":
            verdicts = f"QUARANTINED: {b.reason}; " + verdicts
        table.add_row(
            b.id,
            f"{b.created_at:%H:%M:%S}",
            str(len(b.items)),
            money(sum(i.amount for i in b.items), b.currency),
            money(b.fee_saved, b.currency),
            verdicts,
        )
    out.print(table)
    for r in reports:
        out.print(f"QUARANTINED report {r.name} ({r.received_at:%Y-%m-%d %H:%M:%S}): {r.reason}")


@app.command()
def reconcile(
    date_: Annotated[
        str, typer.Option("--date", help="YYYY-MM-DD, 'today' or 'yesterday'.")
    ] = "yesterday",
    json_out: JsonOpt = False,
) -> None:
    """Match the ledger, the rails' records and the bank files for a day; list mismatches."""
    from payouts.ops.reconcile import Report

    now = datetime.now(UTC)
    if date_ in ("today", "yesterday"):
        day = (now - timedelta(days=1 if date_ == "yesterday" else 0)).date()
    else:
        try:
            day = date.fromisoformat(date_)
        except ValueError:
            raise InvalidInput(
                f"--date: {date_!r} is not YYYY-MM-DD, today or yesterday", field="--date"
            ) from None
    from payouts.app.stack import Stack
    from payouts.devstack.stack import resolve_ports

    stack = Stack(resolve_ports(env.settings), env.policy)
    try:
        report: Report = _arun(stack.ops_activities.run(day, now))
    finally:
        stack.close()
    if json_out:
        emit_json(report.as_dict())
    else:
        rails = ", ".join(f"{n} {r}" for r, n in sorted(report.by_rail.items())) or "none"
        out.print(f"reconciliation of {day}: {report.checked} cash-outs checked ({rails})")
        if report.clean:
            out.print("clean: ledger, rails and bank files agree")
        else:
            table = Table(title="Mismatches")
            for col in ("cause", "cash-out", "detail"):
                table.add_column(col, no_wrap=col != "detail")
            for m in report.mismatches:
                table.add_row(m.kind, m.cashout, m.detail)
            out.print(table)
    if not report.clean:
        raise typer.Exit(1)
