"""`payouts security log`: the refusals at the trust boundary (who claimed what, why)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from payouts.cli.common import JsonOpt, app, emit_json, env, out
from payouts.store import security_log

security_app = typer.Typer(
    help="The trust boundary's records.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(security_app, name="security")


@security_app.command("log")
def log(
    limit: Annotated[int, typer.Option(help="How many, newest first.", min=1, max=10_000)] = 50,
    json_out: JsonOpt = False,
) -> None:
    """Refused starts and other refusals, newest first (decisions on a cash-out are in
    `payouts review audit`)."""
    rows = security_log.entries(env.db, limit)
    if json_out:
        emit_json([r.model_dump(mode="json", exclude={"id"}) for r in rows])
        return
    if not rows:
        out.print("no refusals recorded")
        return
    table = Table(title="Security log")
    for col in ("at (UTC)", "claimed to be", "tried", "on", "why"):
        table.add_column(col, no_wrap=col == "at (UTC)")
    for r in rows:
        table.add_row(
            f"{r.at:%m-%d %H:%M:%S}",
            r.actor,
            r.action,
            r.subject,
            f"{r.outcome}: {r.reason}",
        )
    out.print(table)
