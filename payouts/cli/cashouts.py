"""`payouts cashout | status | cancel`: one cash-out, from the platform's side."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from payouts.cli.common import (
    CLI_CLIENT,
    BicOpt,
    DestinationOpt,
    HolderOpt,
    JsonOpt,
    MethodOpt,
    _arun,
    _client,
    app,
    emit_json,
    env,
    money,
    out,
    requested_amount,
)
from payouts.domain import validation
from payouts.domain.cashout import CashoutStatus
from payouts.domain.fees import Speed
from payouts.domain.money import get_currency
from payouts.errors import InvalidInput
from payouts.temporal.starting import Ticket


def _show_status(s: CashoutStatus) -> None:
    cur = s.currency
    table = Table(title=f"Cash-out {s.request_id}: {s.stage.value}", show_header=False)
    table.add_column("what")
    table.add_column("value")
    table.add_row("payee", s.user_id)
    table.add_row("method", f"{s.method.value} to {s.destination}")
    table.add_row("requested", money(s.requested, cur))
    table.add_row(
        "gross / fee / net", f"{money(s.gross, cur)} / {money(s.fee, cur)} / {money(s.net, cur)}"
    )
    if s.remainder:
        table.add_row("stays in balance", money(s.remainder, cur))
    if s.cards:
        table.add_row("gift cards", " + ".join(money(c, cur) for c in s.cards))
    if s.identity:
        table.add_row("identity", s.identity)
    if s.verification:
        table.add_row("verification of payee", s.verification.replace("_", " "))
    if s.risk_score is not None:
        table.add_row("risk", f"{s.risk_score}: " + ("; ".join(s.risk_reasons) or "-"))
    if s.decision:
        table.add_row("decision", s.decision)
    if s.approvals_needed:
        accepted = [r for r in s.reviews if r.accepted and r.decision == "approve"]
        waiting = s.review_deadline and s.stage.value == "AWAITING_REVIEW"
        deadline = f", deadline {s.review_deadline:%Y-%m-%d %H:%M} UTC" if waiting else ""
        table.add_row("approvals", f"{len(accepted)} of {s.approvals_needed}{deadline}")
    if s.rail_reference:
        table.add_row("rail reference", s.rail_reference)
    if s.expected_arrival:
        table.add_row("expected arrival", f"{s.expected_arrival:%Y-%m-%d %H:%M} UTC")
    if s.outcome:
        table.add_row("outcome", s.outcome)
    if s.refused or s.dropped:
        table.add_row(
            "refused", f"{s.refused} decisions, cancels or rail events; {s.dropped} oversized"
        )
    if s.runs:
        table.add_row("runs", f"continued as new {s.runs} times (history kept bounded)")
    table.add_row("policy version", s.policy_version)
    out.print(table)
    timeline = Table(title="Timeline")
    for col in ("time (UTC)", "stage", "what happened"):
        timeline.add_column(col)
    for e in s.timeline:
        timeline.add_row(f"{e.at:%Y-%m-%d %H:%M:%S}", e.stage.value, e.note)
    out.print(timeline)


@app.command()
def cashout(
    user: Annotated[str, typer.Argument(metavar="USER", help="The payee.")],
    amount: Annotated[str, typer.Argument(metavar="AMOUNT", help="Decimal amount, or 'all'.")],
    method: MethodOpt,
    destination: DestinationOpt,
    currency: Annotated[str, typer.Option("--currency", "-c")] = "USD",
    holder: HolderOpt = None,
    bic: BicOpt = None,
    request_id: Annotated[
        str | None, typer.Option(help="Idempotency key; default: a new id (printed).")
    ] = None,
    speed: Annotated[
        str, typer.Option(help="standard, or instant (where the policy offers it).")
    ] = "standard",
    wait: Annotated[bool, typer.Option(help="Wait until the cash-out ends.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Start a cash-out (the same request id never starts a second one)."""
    import uuid

    user = validation.user_id(user, field="USER")
    code = get_currency(currency, field="--currency").code
    requested = requested_amount(amount, user, code)
    rid = request_id or uuid.uuid4().hex[:16]
    if speed not in ("standard", "instant"):
        raise InvalidInput("--speed: must be standard or instant", field="speed")
    chosen: Speed = "instant" if speed == "instant" else "standard"

    async def go() -> tuple[Ticket, CashoutStatus | None]:
        client = await _client(as_platform=True)
        ticket = await client.request_cashout(
            request_id=rid,
            user_id=user,
            amount=requested,
            currency=code,
            method=method,
            destination=destination,
            holder=holder,
            bic=bic,
            speed=chosen,
        )
        final = await client.wait(rid) if wait else None
        return ticket, final

    ticket, final = _arun(go())
    q = ticket.quote
    data = {
        "request_id": ticket.request_id,
        "workflow_id": ticket.workflow_id,
        "existing": ticket.existing,
        "quote": q.model_dump(mode="json"),
        "status": final.model_dump(mode="json") if final else None,
    }
    if json_out:
        emit_json(data)
        return
    verb = "already exists" if ticket.existing else "started"
    out.print(
        f"cash-out {ticket.request_id} {verb} (workflow {ticket.workflow_id}): "
        f"{money(q.gross, q.currency)} by {q.method.value} ({q.speed}), fee "
        f"{money(q.fee, q.currency)}, payee receives {money(q.net, q.currency)}"
    )
    if final:
        _show_status(final)
    else:
        out.print(f"follow it with: payouts status {ticket.request_id}")


@app.command()
def status(
    request_id: Annotated[str, typer.Argument(metavar="REQUEST_ID")],
    json_out: JsonOpt = False,
) -> None:
    """Show a cash-out: stage, amounts, risk, reviews, timeline and expected arrival."""

    async def go() -> CashoutStatus:
        return await (await _client()).status(request_id)

    s = _arun(go())
    if json_out:
        emit_json(s.model_dump(mode="json"))
    else:
        _show_status(s)


@app.command()
def cancel(
    request_id: Annotated[str, typer.Argument(metavar="REQUEST_ID")],
    by: Annotated[str, typer.Option("--by", help="The payee's user id (or a reviewer's).")],
    reason: Annotated[str, typer.Option(help="Why.")] = "",
    key: Annotated[
        Path | None,
        typer.Option(
            "--key",
            help="A reviewer cancelling: their key file. Without it the platform's key signs "
            "the payee's cancel.",
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Cancel a cash-out before disbursement starts; the hold goes back to available. The
    payee's cancel is signed by the platform, a reviewer's with their key (--key)."""
    reviewer_key = env.deployment.reviewer_key(by, key) if key else None

    async def go() -> CashoutStatus:
        client = await _client(as_platform=reviewer_key is None)
        return await client.cancel(
            request_id, requested_by=by, reason=reason, client=CLI_CLIENT, key=reviewer_key
        )

    s = _arun(go())
    if json_out:
        emit_json(s.model_dump(mode="json"))
    else:
        out.print(f"cash-out {request_id}: {s.stage.value}: {s.outcome}")
