"""`payouts profile show | save | remove | default | auto | stop-auto`: a payee's payout
profile, as the platform manages it: saved destinations and automatic cash-outs.

Every change is signed with the platform's key and applied (or refused, with the reason) by
the worker; what the worker's policy decides (minimum cash-out, offered currencies, whose
destination an id is) is left to it. Here only the form of the input is checked, before
anything is sent: a bad amount, currency, id or option combination writes nothing.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from payouts.cli.common import (
    BicOpt,
    DestinationOpt,
    HolderOpt,
    JsonOpt,
    MethodOpt,
    _arun,
    _client,
    app,
    emit_json,
    money,
    out,
)
from payouts.domain import validation
from payouts.domain.cashout import SavedRef
from payouts.domain.money import format_micros, get_currency, parse_amount
from payouts.domain.profiles import AutoRule, AutoStatus, Every, PayeeProfile, SavedDestination
from payouts.domain.requests import destination_for, method_of
from payouts.errors import InvalidInput

profile_app = typer.Typer(
    help="A payee's payout profile: saved destinations and automatic cash-outs.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(profile_app, name="profile")

# the form of a saved destination's id (`payouts.domain.profiles.destination_id`)
_DST_ID = re.compile(r"dst_[0-9a-f]{20}", re.ASCII)

UserArg = Annotated[str, typer.Argument(metavar="USER", help="The payee.")]
DstArg = Annotated[str, typer.Argument(metavar="DST_ID", help="A saved destination's id.")]


def _user(value: str) -> str:
    return validation.user_id(value, field="USER")


def _destination_id(value: str, field: str) -> str:
    if not _DST_ID.fullmatch(value):
        raise InvalidInput(
            f"{field}: {value[:40]!r} is not a saved destination id (dst_ and 20 hex digits)",
            field=field,
        )
    return value


# ------------------------------------------------------------------ show


def _yes(flag: bool) -> str:
    return "yes" if flag else ""


def _cooloff(d: SavedDestination, now: datetime) -> str:
    if d.cooloff_until <= d.changed_at:
        return "none"  # the method has no cool-off
    until = f"{d.cooloff_until:%Y-%m-%d %H:%M}"
    return until if d.cooloff_until > now else f"{until} (ended)"


def _verification(d: SavedDestination) -> str:
    if d.verification is None:
        return "not yet" if d.method.value == "bank_transfer" else "-"
    shown = d.verification.value.replace("_", " ")
    return f"{shown}: the bank holds {d.verified_name!r}" if d.verified_name else shown


def _trigger(rule: AutoRule) -> str:
    parts = []
    if rule.threshold is not None:
        parts.append(f"at {money(rule.threshold, rule.currency)}")
    if rule.every is not None:
        least = f" (at least {money(rule.minimum, rule.currency)})" if rule.minimum else ""
        parts.append(f"{rule.every.value}{least}")
    return " or ".join(parts)


def _status_of(profile: PayeeProfile, currency: str) -> AutoStatus | None:
    return next((s for s in profile.auto_status if s.currency == currency), None)


def _show(profile: PayeeProfile) -> None:
    user = profile.user_id
    now = datetime.now(UTC)
    if not profile.destinations:
        out.print(f"{user} has no saved destinations")
    else:
        table = Table(title=f"Saved destinations of {user}")
        table.add_column("id", no_wrap=True)
        for col in ("method", "destination", "default", "cool-off until (UTC)", "verification"):
            table.add_column(col)
        table.add_column("notes")
        for d in profile.destinations:
            table.add_row(
                d.id,
                d.method.value,
                d.shown,
                _yes(d.is_default),
                _cooloff(d, now),
                _verification(d),
                "also saved or used by another payee" if d.shared else "",
            )
        out.print(table)
    if not profile.auto:
        out.print(f"{user} has no automatic cash-outs")
        return
    table = Table(title=f"Automatic cash-outs of {user}")
    for col in ("currency", "to", "when", "available", "status"):
        table.add_column(col, no_wrap=col in ("currency", "to"))
    for rule in profile.auto:
        status = _status_of(profile, rule.currency)
        table.add_row(
            rule.currency,
            rule.destination_id,
            _trigger(rule),
            "-" if status is None else money(status.available, rule.currency),
            "-" if status is None else status.explanation,
        )
    out.print(table)


@profile_app.command("show")
def profile_show(user: UserArg, json_out: JsonOpt = False) -> None:
    """Saved destinations (masked), automatic cash-outs and where each one stands."""
    user = _user(user)

    async def go() -> PayeeProfile:
        return await (await _client(as_platform=True)).payee_profile(user)

    profile = _arun(go())
    if json_out:
        emit_json(profile.model_dump(mode="json"))
    else:
        _show(profile)


# ------------------------------------------------------------------ destinations


@profile_app.command("save")
def profile_save(
    user: UserArg,
    method: MethodOpt,
    destination: DestinationOpt,
    holder: HolderOpt = None,
    bic: BicOpt = None,
    default: Annotated[
        bool, typer.Option("--default", help="Also make it the default for its method.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Save a destination (checked as a cash-out's would be) and print its id. Saving it
    again changes nothing; a changed one (e.g. another holder) starts a new cool-off."""
    user = _user(user)
    kind = method_of(method)
    if kind.value != "bank_transfer" and (holder is not None or bic is not None):
        raise InvalidInput(
            f"--holder/--bic: only for bank_transfer, not {kind.value}", field="--holder"
        )
    checked = destination_for(kind, destination, holder=holder, bic=bic)
    if isinstance(checked, SavedRef):
        raise InvalidInput(
            "--destination: give the account itself, not a saved destination's id",
            field="--destination",
        )

    async def go() -> str:
        client = await _client(as_platform=True)
        return await client.save_destination(user, kind, checked, default=default)

    dst = _arun(go())
    if json_out:
        emit_json({"user_id": user, "destination_id": dst, "default": default})
    else:
        out.print(dst)


@profile_app.command("remove")
def profile_remove(user: UserArg, destination_id: DstArg, json_out: JsonOpt = False) -> None:
    """Remove a saved destination; an automatic cash-out paying to it stops too."""
    user = _user(user)
    dst = _destination_id(destination_id, "DST_ID")

    async def go() -> PayeeProfile:
        return await (await _client(as_platform=True)).remove_destination(user, dst)

    profile = _arun(go())
    if json_out:
        emit_json(profile.model_dump(mode="json"))
    else:
        out.print(f"{user}: {dst} removed; {len(profile.destinations)} saved destinations left")


@profile_app.command("default")
def profile_default(user: UserArg, destination_id: DstArg, json_out: JsonOpt = False) -> None:
    """Make a saved destination the default for its method."""
    user = _user(user)
    dst = _destination_id(destination_id, "DST_ID")

    async def go() -> PayeeProfile:
        return await (await _client(as_platform=True)).make_default(user, dst)

    profile = _arun(go())
    if json_out:
        emit_json(profile.model_dump(mode="json"))
        return
    chosen = next((d for d in profile.destinations if d.id == dst), None)
    what = f" for {chosen.method.value} ({chosen.shown})" if chosen else ""
    out.print(f"{user}: {dst} is now the default{what}")


# ------------------------------------------------------------------ automatic cash-outs


def _every(value: str | None) -> Every | None:
    if value is None:
        return None
    try:
        return Every(value.strip().lower())
    except ValueError:
        names = ", ".join(e.value for e in Every)
        raise InvalidInput(f"--every: {value!r} is not one of {names}", field="--every") from None


@profile_app.command("auto")
def profile_auto(
    user: UserArg,
    destination: Annotated[
        str, typer.Option("--destination", "-d", help="The saved destination to pay (dst_...).")
    ],
    currency: Annotated[str, typer.Option("--currency", "-c", help="ISO 4217 code.")],
    threshold: Annotated[
        str | None, typer.Option(help="Pay out when the available balance reaches this.")
    ] = None,
    every: Annotated[
        str | None, typer.Option(help="weekly (Mondays) or monthly (the 1st), UTC.")
    ] = None,
    minimum: Annotated[
        str | None, typer.Option(help="With --every: pay only if at least this is available.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Pay the available balance in one currency automatically to a saved destination: when
    it reaches --threshold, or --every week or month, or both. Replaces the currency's rule."""
    user = _user(user)
    dst = _destination_id(destination, "--destination")
    code = get_currency(currency, field="--currency").code
    schedule = _every(every)
    if threshold is None and schedule is None:
        raise InvalidInput(
            "--threshold/--every: give a threshold, a schedule, or both", field="--threshold"
        )
    if minimum is not None and schedule is None:
        raise InvalidInput("--minimum: only applies with --every", field="--minimum")
    limit = (
        None
        if threshold is None
        else parse_amount(
            threshold, code, field="--threshold", whole_minor_units=True, allow_zero=False
        )
    )
    least = (
        0
        if minimum is None
        else parse_amount(minimum, code, field="--minimum", whole_minor_units=True)
    )

    async def go() -> PayeeProfile:
        client = await _client(as_platform=True)
        return await client.set_auto_cashout(
            user,
            destination_id=dst,
            currency=code,
            threshold=None if limit is None else format_micros(limit),
            every=None if schedule is None else schedule.value,
            minimum=format_micros(least),
        )

    profile = _arun(go())
    if json_out:
        emit_json(profile.model_dump(mode="json"))
        return
    rule = next((r for r in profile.auto if r.currency == code), None)
    status = _status_of(profile, code)
    when = f" {_trigger(rule)}" if rule else ""
    why = f"; {status.explanation}" if status else ""
    out.print(f"{user}: automatic cash-out in {code} to {dst}{when}{why}")


@profile_app.command("stop-auto")
def profile_stop_auto(
    user: UserArg,
    currency: Annotated[str, typer.Option("--currency", "-c", help="ISO 4217 code.")],
    json_out: JsonOpt = False,
) -> None:
    """Stop the automatic cash-out in a currency (nothing to stop is not an error)."""
    user = _user(user)
    code = get_currency(currency, field="--currency").code

    async def go() -> PayeeProfile:
        return await (await _client(as_platform=True)).stop_auto_cashout(user, code)

    profile = _arun(go())
    if json_out:
        emit_json(profile.model_dump(mode="json"))
    else:
        out.print(f"{user}: no automatic cash-out in {code}")
