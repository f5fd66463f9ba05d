"""`payouts reverse`: the platform takes back (part of) an earning, signed with its key."""

from __future__ import annotations

from typing import Annotated

import typer

from payouts.cli.common import JsonOpt, _arun, _client, app, emit_json, money, out
from payouts.domain import validation
from payouts.domain.money import get_currency, parse_micros
from payouts.domain.reversals import ReversalResult


@app.command()
def reverse(
    event_id: Annotated[str, typer.Argument(help="The earning's event id.")],
    user: Annotated[str, typer.Option("--user", help="Whose earning it is.")],
    currency: Annotated[str, typer.Option("--currency", "-c", help="Its currency.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (the payee's statement shows it).")],
    amount: Annotated[
        str | None,
        typer.Option("--amount", help="Decimal amount to take back; default: all that is left."),
    ] = None,
    reversal_id: Annotated[
        str | None,
        typer.Option("--id", help="The reversal's own id (idempotency key); default: a new one."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Reverse an earning: from pending if it has not matured, else from available; what no
    balance covers (a cash-out holds it, or it was paid out) the payee owes, and their next
    earnings pay it back first."""
    ev = validation.event_id(event_id, field="EVENT_ID")
    who = validation.user_id(user, field="--user")
    code = get_currency(currency, field="--currency").code
    rid = validation.request_id(reversal_id, field="--id") if reversal_id else None
    micros = parse_micros(amount, field="--amount", allow_zero=False) if amount else None

    async def go() -> ReversalResult:
        client = await _client(as_platform=True)
        return await client.reverse_earning(
            ev, user_id=who, currency=code, reason=reason, amount=micros, reversal_id=rid
        )

    done = _arun(go())
    if json_out:
        emit_json({"event_id": ev, **done.model_dump(mode="json")})
        return
    cur = done.currency
    parts = [
        f"{money(v, cur)} from {name}"
        for name, v in (
            ("pending", done.from_pending),
            ("available", done.from_available),
            ("what is owed", done.owed),
        )
        if v
    ]
    again = " (already applied under this id)" if done.duplicate else ""
    out.print(
        f"{ev}: reversed {money(done.amount, cur)} of {done.user_id}'s earning{again}: "
        + ", ".join(parts)
    )
    if done.owed_after:
        out.print(
            f"{done.user_id} now owes {money(done.owed_after, cur)}; new earnings pay it back "
            "first, and no cash-out starts until it is within the policy's allowance"
        )
