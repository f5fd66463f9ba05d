"""`payouts review list | approve | reject | audit`: the reviewers' commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from payouts.cli.common import (
    CLI_CLIENT,
    JsonOpt,
    _arun,
    _client,
    emit_json,
    env,
    err,
    money,
    out,
    printable,
    review_app,
)
from payouts.domain.cashout import CashoutStatus, ReviewDecision
from payouts.temporal import contract
from payouts.temporal.reviewing import PendingReview


@review_app.command("list")
def review_list(json_out: JsonOpt = False) -> None:
    """Cash-outs waiting for a reviewer, oldest first."""

    async def go() -> list[PendingReview]:
        return await (await _client()).pending_reviews()

    pending = _arun(go())
    if json_out:
        emit_json([p.__dict__ for p in pending])
        return
    if not pending:
        out.print("no cash-outs are waiting for review")
        return
    table = Table(title="Awaiting review")
    table.add_column("request id", no_wrap=True)
    for col in ("payee", "method", "amount", "risk", "since (UTC)"):
        table.add_column(col)
    for p in pending:
        table.add_row(
            p.request_id,
            p.user_id,
            p.method,
            money(p.amount, p.currency),
            "-" if p.risk_score is None else str(p.risk_score),
            f"{p.started:%m-%d %H:%M}" if p.started else "-",
        )
    out.print(table)
    out.print("decide with: payouts review approve|reject REQUEST_ID --reviewer NAME")


def _decide(
    request_id: str,
    reviewer: str,
    decision: str,
    reason: str,
    signal: bool,
    json_out: bool,
    key_file: Path | None,
) -> None:
    key = env.deployment.reviewer_key(reviewer, key_file)

    async def go() -> CashoutStatus | None:
        client = await _client()
        if signal:
            send = client.approve if decision == "approve" else client.reject
            await send(request_id, reviewer=reviewer, reason=reason, client=CLI_CLIENT, key=key)
            return None
        return await client.review(
            request_id,
            reviewer=reviewer,
            decision=decision,
            reason=reason,
            client=CLI_CLIENT,
            key=key,
        )

    s = _arun(go())
    if json_out:
        emit_json(s.model_dump(mode="json") if s else {"signal_sent": decision})
    elif s is None:
        out.print(f"{decision} signal sent to {request_id} (see payouts status {request_id})")
    else:
        accepted = [r for r in s.reviews if r.accepted and r.decision == "approve"]
        more = s.approvals_needed - len(accepted)
        if decision == "reject":
            tail = "the cash-out is rejected and the hold released"
        elif more > 0:
            tail = f"{more} more approval needed"
        else:
            tail = "review complete, the cash-out proceeds to payment"
        out.print(f"{request_id}: {decision} by {reviewer} accepted; {tail}")


ReviewerOpt = Annotated[str, typer.Option("--reviewer", "-r", help="Your reviewer id.")]
SignalOpt = Annotated[
    bool, typer.Option("--signal", help="Send the signal and do not wait for the answer.")
]
KeyOpt = Annotated[
    Path | None,
    typer.Option(
        "--key",
        help="Your private key file (default: PAYOUTS_REVIEWER_KEY_FILE; in the embedded "
        "stack, your generated key).",
    ),
]


@review_app.command("approve")
def review_approve(
    request_id: Annotated[str, typer.Argument(metavar="REQUEST_ID")],
    reviewer: ReviewerOpt,
    reason: Annotated[str, typer.Option(help="Why.")] = "",
    signal: SignalOpt = False,
    key: KeyOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Approve a held cash-out, signed with your key (refused: not your registered key, the
    payee, twice under four eyes, stale or replayed)."""
    _decide(request_id, reviewer, "approve", reason, signal, json_out, key)


@review_app.command("reject")
def review_reject(
    request_id: Annotated[str, typer.Argument(metavar="REQUEST_ID")],
    reviewer: ReviewerOpt,
    reason: Annotated[str, typer.Option(help="Why (shown to the payee).")] = "",
    signal: SignalOpt = False,
    key: KeyOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Reject a held cash-out, signed with your key; the hold goes back to the payee."""
    _decide(request_id, reviewer, "reject", reason, signal, json_out, key)


@review_app.command("sign")
def review_sign(
    request_id: Annotated[str, typer.Argument(metavar="REQUEST_ID")],
    reviewer: ReviewerOpt,
    reject: Annotated[bool, typer.Option("--reject", help="Sign a rejection.")] = False,
    reason: Annotated[str, typer.Option(help="Why.")] = "",
    key: KeyOpt = None,
) -> None:
    """Print a signed decision to paste into the Temporal UI's "Send a Signal" dialog
    (signal name `approve`, or `reject` with --reject). It is bound to this cash-out and
    stays valid for 15 minutes."""
    decision = "reject" if reject else "approve"
    signer = env.deployment.reviewer_key(reviewer, key)

    async def go() -> ReviewDecision:
        client = await _client()
        return await client.signed_decision(
            request_id, reviewer=reviewer, decision=decision, reason=reason, key=signer
        )

    signed = _arun(go()).model_copy(update={"client": "temporal-ui"})
    payload = signed.model_dump(exclude={"ref"})
    err.print(f"signal name: {decision}   (workflow {contract.cashout_id(request_id)})")
    out.print(json.dumps(payload, separators=(", ", ": ")), markup=False, highlight=False)


@review_app.command("audit")
def review_audit(
    request_id: Annotated[
        str | None, typer.Argument(metavar="[REQUEST_ID]", help="One cash-out (default: all).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """The reviewer audit trail: every decision, accepted or refused, oldest first."""
    from payouts.store import audit as trail

    rows = trail.entries(env.db, None if request_id is None else contract.cashout_id(request_id))
    if json_out:
        emit_json([r.model_dump(mode="json", exclude={"id"}) for r in rows])
        return
    if not rows:
        out.print("no reviewer decisions recorded" + (f" for {request_id}" if request_id else ""))
        return
    table = Table(title="Reviewer decisions")
    for col in ("at (UTC)", "request id", "reviewer", "decision", "through"):
        table.add_column(col, no_wrap=col in ("at (UTC)", "request id"))
    table.add_column("reason, or why it was refused")
    for r in rows:
        table.add_row(
            f"{r.at:%m-%d %H:%M:%S}",
            r.request_id,
            r.reviewer,
            r.decision if r.accepted else Text.assemble(printable(r.decision), (" refused", "red")),
            f"{r.via} from {r.client}",
            r.reason if r.accepted else r.refusal,
        )
    out.print(table)
