"""`payouts db upgrade | status`: the ledger's schema."""

from __future__ import annotations

from typing import Annotated

import typer

from payouts.cli.common import JsonOpt, app, emit_json, env, out
from payouts.store.migrations import HEAD

db_app = typer.Typer(
    help="The ledger database's schema: migrations.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def upgrade(json_out: JsonOpt = False) -> None:
    """Bring the ledger database to the newest schema (PAYOUTS_DATABASE_URL). Safe to run
    from several processes at once; a database of release 0.1 is upgraded in place."""
    from payouts.store import migrate

    before, after = migrate.upgrade(env.db)
    if json_out:
        emit_json({"before": before, "after": after})
    elif before == after:
        out.print(f"schema already at revision {after}")
    else:
        out.print(f"schema upgraded from revision {before or 'none'} to {after}")


@db_app.command("status")
def status(
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """The ledger database's schema revision, and this release's."""
    found = env.db.schema_revision()
    if json_out:
        emit_json({"revision": found, "head": HEAD, "current": found == HEAD})
        return
    state = "current" if found == HEAD else "behind: run payouts db upgrade"
    out.print(f"schema revision {found or 'none'} (this release: {HEAD}): {state}")
    if found != HEAD:
        raise typer.Exit(1)
