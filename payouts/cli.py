"""`payouts`: the command line for operators, reviewers and the demo.

Every read command takes `--json`. Every error ends with a one-line message on stderr and a
non-zero exit status (1: refused or invalid, 2: usage); never a traceback, unless
PAYOUTS_DEBUG=1.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Coroutine
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from payouts.config.settings import Settings
from payouts.domain import validation
from payouts.domain.cashout import CashoutStatus
from payouts.domain.fees import quote as make_quote
from payouts.domain.money import format_micros, format_money, get_currency, parse_micros
from payouts.domain.policy import Policy
from payouts.errors import InvalidInput, PayoutError
from payouts.ledger import Ledger
from payouts.ledger.ingest import ingest_file
from payouts.store.database import Database
from payouts.temporal import contract
from payouts.temporal.client import PayoutsClient, PendingReview, Ticket

T = TypeVar("T")


def _cli_client() -> str:
    """Who sends review and cancel decisions from this CLI (kept in the audit trail)."""
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli:{user}@{socket.gethostname()}"[:64]


CLI_CLIENT = _cli_client()

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

app = typer.Typer(
    name="payouts",
    help="Micropayment cash-outs on Temporal: ledger, cash-outs, reviews and the local stack.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


class Env:
    """What the commands share, built once from settings when first needed."""

    @cached_property
    def settings(self) -> Settings:
        return Settings()

    @cached_property
    def policy(self) -> Policy:
        return self.settings.load_policy()

    @cached_property
    def db(self) -> Database:
        return Database(self.settings.ledger_url)

    @cached_property
    def ledger(self) -> Ledger:
        return Ledger(self.db, hold_hours=self.policy.maturation.hold_hours)


env = Env()


def emit_json(data: Any) -> None:
    out.out(json.dumps(data, indent=2, sort_keys=True, default=str), highlight=False)


def money(micros: int, currency: str) -> str:
    return format_money(micros, currency)


# ---------------------------------------------------------------------------- ledger


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
    """Credit every earning in a file: event_id,user_id,amount,currency[,earned_at]."""
    if fmt is not None and fmt not in ("csv", "jsonl"):
        raise InvalidInput("--format: must be csv or jsonl", field="--format")
    size = file.stat().st_size if file.is_file() else 0
    show = not json_out and size > 1_000_000
    with Progress(
        TextColumn("[bold]{task.description}"),
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


@app.command()
def balance(
    user: Annotated[str, typer.Argument(help="User id.")],
    currency: Annotated[str | None, typer.Option("--currency", "-c")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Show a user's pending, available and held balance per currency."""
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
                    for k in ("pending", "available", "held")
                }
                for b in balances
            ]
        )
        return
    if not balances:
        out.print(f"{user} has no balance yet")
        return
    table = Table(title=f"Balance of {user}")
    for col in ("currency", "available", "pending", "held"):
        table.add_column(col, justify="left" if col == "currency" else "right")
    for b in balances:
        table.add_row(
            b.currency,
            money(b.available, b.currency),
            money(b.pending, b.currency),
            money(b.held, b.currency),
        )
    out.print(table)


def _requested(amount: str, user: str, currency: str) -> int:
    if amount.strip().lower() == "all":
        available = env.ledger.balance(user, currency).available
        if available <= 0:
            raise InvalidInput(
                f"AMOUNT: {user} has no available {currency} balance", field="amount"
            )
        return available
    return parse_micros(amount, field="AMOUNT", allow_zero=False)


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
    requested = _requested(amount, user, code)
    q = make_quote(env.policy, method, code, requested)
    available = env.ledger.balance(user, code).available
    covered = available >= q.gross
    if json_out:
        emit_json(q.model_dump(mode="json") | {"available": available, "covered": covered})
        return
    table = Table(title=f"Quote for {user}: {q.method.value} in {code}", show_header=False)
    table.add_column("what")
    table.add_column("amount", justify="right")
    table.add_row("requested", money(q.requested, code))
    table.add_row("paid out (gross)", money(q.gross, code))
    table.add_row("fee", money(q.fee, code))
    table.add_row("you receive (net)", money(q.net, code))
    table.add_row("stays in your balance", money(q.remainder, code))
    if q.cards:
        table.add_row("gift cards", " + ".join(money(c, code) for c in q.cards))
    table.add_row("available now", money(available, code))
    out.print(table)
    out.print(f"policy version {q.policy_version}")
    if not covered:
        out.print(f"[yellow]the available balance does not cover {money(q.gross, code)}[/]")


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
    """Check the books: per-currency conservation, balanced transactions, no drift."""
    totals = [env.ledger.totals(c) for c in env.ledger.currencies()]
    problems = env.ledger.audit()
    problems += [
        f"{t.currency} does not conserve: {t.model_dump()}" for t in totals if not t.conserved
    ]
    if json_out:
        emit_json({"totals": [t.model_dump() for t in totals], "problems": problems})
    else:
        table = Table(title="Ledger totals")
        cols = ("currency", "earned", "paid_out", "fees", "held", "available", "pending")
        for col in cols:
            table.add_column(col, justify="left" if col == "currency" else "right")
        for t in totals:
            table.add_row(t.currency, *(format_micros(getattr(t, c), t.currency) for c in cols[1:]))
        out.print(table)
        for p in problems:
            err.print(f"[red]problem:[/] {p}")
        if not problems:
            out.print("books balance: every currency conserves, every transaction sums to zero")
    if problems:
        raise typer.Exit(1)


# ---------------------------------------------------------------------------- cash-outs

review_app = typer.Typer(
    help="List held cash-outs and approve or reject them.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(review_app, name="review")


async def _client() -> PayoutsClient:
    return await PayoutsClient.connect(
        policy=env.policy,
        task_queue=env.settings.task_queue,
        converter=env.settings.data_converter(),
    )


def _arun(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


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
    method: Annotated[str, typer.Option("--method", "-m", help="bank_transfer, wallet, gift_card")],
    destination: Annotated[
        str,
        typer.Option(
            "--destination",
            "-d",
            help="IBAN, wallet id (e-mail or +phone), or e-mail for gift cards.",
        ),
    ],
    currency: Annotated[str, typer.Option("--currency", "-c")] = "USD",
    holder: Annotated[str | None, typer.Option(help="Bank account holder's name.")] = None,
    bic: Annotated[str | None, typer.Option(help="BIC of the payee's bank (optional).")] = None,
    request_id: Annotated[
        str | None, typer.Option(help="Idempotency key; default: a new id (printed).")
    ] = None,
    wait: Annotated[bool, typer.Option(help="Wait until the cash-out ends.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Start a cash-out (the same request id never starts a second one)."""
    import uuid

    user = validation.user_id(user, field="USER")
    code = get_currency(currency, field="--currency").code
    requested = _requested(amount, user, code)
    rid = request_id or uuid.uuid4().hex[:16]

    async def go() -> tuple[Ticket, CashoutStatus | None]:
        client = await _client()
        ticket = await client.request_cashout(
            request_id=rid,
            user_id=user,
            amount=requested,
            currency=code,
            method=method,
            destination=destination,
            holder=holder,
            bic=bic,
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
        f"{money(q.gross, q.currency)} by {q.method.value}, fee {money(q.fee, q.currency)},"
        f" payee receives {money(q.net, q.currency)}"
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
    json_out: JsonOpt = False,
) -> None:
    """Cancel a cash-out before disbursement starts; the hold goes back to available."""

    async def go() -> CashoutStatus:
        return await (await _client()).cancel(
            request_id, requested_by=by, reason=reason, client=CLI_CLIENT
        )

    s = _arun(go())
    if json_out:
        emit_json(s.model_dump(mode="json"))
    else:
        out.print(f"cash-out {request_id}: {s.stage.value}: {s.outcome}")


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
    request_id: str, reviewer: str, decision: str, reason: str, signal: bool, json_out: bool
) -> None:
    async def go() -> CashoutStatus | None:
        client = await _client()
        if signal:
            send = client.approve if decision == "approve" else client.reject
            await send(request_id, reviewer=reviewer, reason=reason, client=CLI_CLIENT)
            return None
        return await client.review(
            request_id, reviewer=reviewer, decision=decision, reason=reason, client=CLI_CLIENT
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
    bool, typer.Option("--signal", help="Send a signal (fire and forget) instead of an update.")
]


@review_app.command("approve")
def review_approve(
    request_id: Annotated[str, typer.Argument(metavar="REQUEST_ID")],
    reviewer: ReviewerOpt,
    reason: Annotated[str, typer.Option(help="Why.")] = "",
    signal: SignalOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Approve a held cash-out (refused: not a reviewer, the payee, or twice under four eyes)."""
    _decide(request_id, reviewer, "approve", reason, signal, json_out)


@review_app.command("reject")
def review_reject(
    request_id: Annotated[str, typer.Argument(metavar="REQUEST_ID")],
    reviewer: ReviewerOpt,
    reason: Annotated[str, typer.Option(help="Why (shown to the payee).")] = "",
    signal: SignalOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Reject a held cash-out; the hold goes back to the payee's available balance."""
    _decide(request_id, reviewer, "reject", reason, signal, json_out)


@review_app.command("audit")
def review_audit(
    request_id: Annotated[
        str | None, typer.Argument(metavar="[REQUEST_ID]", help="One cash-out (default: all).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """The reviewer audit trail: every decision, accepted or refused, oldest first."""
    from rich.markup import escape

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
            escape(r.request_id),
            escape(r.reviewer),
            r.decision if r.accepted else f"{r.decision} [red]refused[/]",
            escape(f"{r.via} from {r.client}"),
            escape(r.reason if r.accepted else r.refusal),
        )
    out.print(table)


# ---------------------------------------------------------------------------- rails


@app.command()
def giftcodes(
    request_id: Annotated[str, typer.Argument(metavar="REQUEST_ID")],
    user: Annotated[str, typer.Option("--user", help="The payee (codes are theirs alone).")],
    json_out: JsonOpt = False,
) -> None:
    """Show a gift card cash-out's codes to its payee, once; refused ever after."""
    from payouts.rails.giftcards import codes as giftcards
    from payouts.security.vault import Vault

    cards = giftcards.reveal(
        env.db,
        Vault(env.settings.vault_keys()),
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
    """Bank batch files: items, totals, the bank's verdicts and the fees saved by batching."""
    from payouts.rails.bank import book

    rows = book.batches(env.db)
    if json_out:
        emit_json(
            [
                {
                    "batch_id": b.id,
                    "currency": b.currency,
                    "created_at": b.created_at,
                    "file": str(env.settings.bank_dir / "outbound" / b.file_name),
                    "items": len(b.items),
                    "total": sum(i.amount for i in b.items),
                    "fee_saved": b.fee_saved,
                    "status": b.status,
                    "verdicts": {
                        s: sum(1 for i in b.items if i.status == s)
                        for s in {i.status for i in b.items}
                    },
                }
                for b in rows
            ]
        )
        return
    if not rows:
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
        table.add_row(
            b.id,
            f"{b.created_at:%H:%M:%S}",
            str(len(b.items)),
            money(sum(i.amount for i in b.items), b.currency),
            money(b.fee_saved, b.currency),
            verdicts,
        )
    out.print(table)


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
    from payouts.app import worker as worker_module
    from payouts.devstack.stack import resolve_ports

    stack = worker_module.Stack(resolve_ports(env.settings), env.policy)
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


# ---------------------------------------------------------------------------- the stack


@app.command()
def worker() -> None:
    """Run a worker (same as `python worker.py`); start more to share the load."""
    from payouts.app import worker as worker_module

    asyncio.run(worker_module.run_worker(env.settings))


@app.command()
def up(
    demo: Annotated[bool, typer.Option(help="Seed payees and start demo cash-outs.")] = False,
    port: Annotated[int, typer.Option(help="Temporal frontend port.")] = 7233,
    ui_port: Annotated[int, typer.Option(help="Temporal web UI port.")] = 8233,
) -> None:
    """Run the embedded stack: Temporal dev server (reused if one listens), UI and a worker."""
    from payouts.devstack import stack

    asyncio.run(
        stack.up(env.settings, env.policy, demo=demo, port=port, ui_port=ui_port, console=out)
    )


@app.command("codec-server")
def codec_server(
    port: Annotated[int, typer.Option(help="Port to listen on (localhost only).")] = 8714,
    ui_origin: Annotated[
        list[str] | None,
        typer.Option("--ui-origin", help="A Temporal UI origin allowed to call it (repeat)."),
    ] = None,
) -> None:
    """Run the codec server alone, for an operator's Temporal UI (Settings > Codec Server)
    or `temporal --codec-endpoint`: it decrypts payloads with PAYOUTS_PAYLOAD_KEYS."""
    from payouts.temporal.codec_server import CodecServer

    origins = tuple(ui_origin or ("http://localhost:8233", "http://127.0.0.1:8233"))

    async def serve() -> None:
        server = CodecServer(env.settings.codec(), origins=origins)
        url = await server.start(port=port)
        out.print(f"codec server at {url} for {', '.join(origins)}; Ctrl-C stops it")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await server.stop()

    asyncio.run(serve())


@app.command()
def keygen(
    key_id: Annotated[str, typer.Argument(help="A name for the key, e.g. 2026-11.")],
) -> None:
    """Print a new payload key as `id:base64key`. To rotate, put it first in
    PAYOUTS_PAYLOAD_KEYS and keep the old ones after it, on every worker and codec server."""
    from payouts.temporal.codec import new_key, parse_keys

    if not key_id or any(c in key_id for c in ":, ") or not key_id.isprintable():
        raise InvalidInput("key_id: must be a non-empty name without ':', ',' or spaces")
    spec = f"{key_id}:{new_key()}"
    parse_keys(spec, secret="")  # the same rules the workers apply
    out.print(spec, markup=False, highlight=False)


# ---------------------------------------------------------------------------- entry point


def main(argv: list[str] | None = None) -> None:
    """Run the CLI and leave with an explicit exit status.

    The process ends through `os._exit` after flushing: processes that used the Temporal
    client can crash at interpreter exit (sdk-python #300), and a finished command must
    never report that as its result.
    """
    code = run(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run(argv: list[str] | None = None) -> int:
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="payouts", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except PayoutError as exc:
        err.print(f"error: {exc.message}", markup=False)
        return 1
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        return 130
    except typer.TyperException as exc:  # usage errors: the message, then help hints
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            err.print(f"error: {exc.format_message()}", markup=False)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except Exception as exc:
        if os.environ.get("PAYOUTS_DEBUG"):
            raise
        err.print(f"error: {type(exc).__name__}: {exc}", markup=False)
        return 1
