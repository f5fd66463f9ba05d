"""What every command group shares: the settings and ledger (built once, when first
needed), the consoles, JSON output, the client, and who this CLI says it is."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Coroutine
from functools import cached_property
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from payouts.config.settings import Settings
from payouts.domain.money import format_money, parse_micros
from payouts.domain.policy import Policy
from payouts.errors import InvalidInput
from payouts.ledger import Ledger
from payouts.security.deployment import Deployment
from payouts.store.database import Database
from payouts.temporal.client import PayoutsClient
from payouts.temporal.codec import converter_for
from payouts.temporal.connection import connect_config

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

# C0 and C1 controls (but tab and newline), DEL, and the bidirectional overrides that can
# make a name read as another
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """A string from outside (a reviewer's name, a rail's reason) made safe to show in a
    terminal: each control character becomes U+FFFD, visibly."""
    return _UNSAFE.sub("\ufffd", text)


class SafeConsole(Console):
    """Every string it prints is text, not markup (`[/]` in a name is shown as typed) and
    never reaches the terminal with its control characters (escape sequences, carriage
    returns). Our own styling goes in `Text` objects."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(markup=False, emoji=False, highlight=False, soft_wrap=True, **kwargs)

    def render_str(self, text: str, **kwargs: Any) -> Text:
        kwargs.update(markup=False, emoji=False)
        return super().render_str(printable(text), **kwargs)


out = SafeConsole()
err = SafeConsole(stderr=True)

app = typer.Typer(
    name="payouts",
    help="Micropayment cash-outs on Temporal: ledger, cash-outs, reviews and the local stack.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
MethodOpt = Annotated[str, typer.Option("--method", "-m", help="bank_transfer, wallet, gift_card")]
DestinationOpt = Annotated[
    str,
    typer.Option(
        "--destination", "-d", help="IBAN, wallet id (e-mail or +phone), or e-mail for gift cards."
    ),
]
HolderOpt = Annotated[str | None, typer.Option(help="Bank account holder's name.")]
BicOpt = Annotated[str | None, typer.Option(help="BIC of the payee's bank (optional).")]


class Env:
    """What the commands share, built once from settings when first needed."""

    @cached_property
    def deployment(self) -> Deployment:
        """The keys this CLI holds: from settings, or in the embedded stack from its data
        folder (`payouts review approve R --reviewer alice` needs no flags there)."""
        return Deployment(Settings(), connect_config()["target_host"])

    @cached_property
    def settings(self) -> Settings:
        return self.deployment.settings

    @cached_property
    def policy(self) -> Policy:
        return self.deployment.policy(self.settings.load_policy())

    @cached_property
    def db(self) -> Database:
        return Database(self.settings.ledger_url)

    @cached_property
    def ledger(self) -> Ledger:
        return Ledger(self.db, hold_hours=self.policy.maturation.hold_hours)

    def reset(self) -> None:
        """Forget what was built (tests run many commands with other settings)."""
        for name in ("deployment", "settings", "policy", "db", "ledger"):
            self.__dict__.pop(name, None)


env = Env()


def emit_json(data: Any) -> None:
    out.out(json.dumps(data, indent=2, sort_keys=True, default=str), highlight=False)


def money(micros: int, currency: str) -> str:
    return format_money(micros, currency)


async def _client(*, as_platform: bool = False) -> PayoutsClient:
    """The client; `as_platform` for commands that act as the platform (it signs them)."""
    dep = env.deployment
    dep.require("payload_keys")
    return await PayoutsClient.connect(
        policy=env.policy,
        task_queue=env.settings.task_queue,
        converter=converter_for(env.settings),
        platform_key=dep.platform_key() if as_platform else None,
    )


def _arun(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


review_app = typer.Typer(
    help="List held cash-outs and approve or reject them.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(review_app, name="review")


def requested_amount(amount: str, user: str, currency: str) -> int:
    if amount.strip().lower() == "all":
        available = env.ledger.balance(user, currency).available
        if available <= 0:
            raise InvalidInput(
                f"AMOUNT: {user} has no available {currency} balance", field="amount"
            )
        return available
    return parse_micros(amount, field="AMOUNT", allow_zero=False)
