"""Payout profiles: a payee's saved destinations and their standing instruction to be paid
automatically.

The platform manages both (`ProfileChange`, signed with its key like a cash-out request).
A saved destination is referred to by its id (`dst_...`, stable for that payee and that
account); a cash-out may name it instead of typing the destination. A destination added
or changed starts a cool-off: a cash-out to it before the cool-off ends goes to review.

An automatic cash-out (`AutoRule`) pays the payee's matured balance in one currency to one
saved destination when a trigger is met: the balance reaches a threshold, or a weekly or
monthly date passes with at least a minimum. The sweep that looks (`auto_due`) names each
cash-out it starts after the payee, the currency and the trigger's period
(`auto_request_id`), so running it twice in a period starts nothing twice.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import model_validator

from payouts.domain.cashout import BankAccount, Destination, Frozen
from payouts.domain.money import format_money
from payouts.domain.policy import Method

# the platform's event (type "payee.payout_details_changed") when a destination is saved,
# changed or removed
CHANGED = "PAYOUT_DETAILS_CHANGED"


class ProfileAction(StrEnum):
    SAVE = "save"  # add a destination, or change one (same account: same id)
    REMOVE = "remove"
    MAKE_DEFAULT = "make_default"
    AUTO = "auto"  # set the automatic cash-out for a currency
    STOP_AUTO = "stop_auto"
    VIEW = "view"  # change nothing; answer the profile


class Every(StrEnum):
    WEEKLY = "weekly"  # Mondays, UTC
    MONTHLY = "monthly"  # the 1st, UTC


class AutoRule(Frozen):
    """Pay the matured balance in `currency` to `destination_id` when it reaches
    `threshold`, or `every` week or month if it is at least `minimum` (either or both)."""

    destination_id: str
    currency: str
    threshold: int | None = None  # micros
    every: Every | None = None
    minimum: int = 0  # micros: a scheduled cash-out needs at least this much

    @model_validator(mode="after")
    def _a_trigger(self) -> AutoRule:
        if self.threshold is None and self.every is None:
            raise ValueError("auto: give a threshold, a schedule (every), or both")
        if (self.threshold is not None and self.threshold <= 0) or self.minimum < 0:
            raise ValueError("auto: amounts must be positive")
        return self


class ProfileChange(Frozen):
    """One change to a payee's profile, as the platform signs it."""

    change_id: str
    user_id: str
    action: ProfileAction
    destination: Destination | None = None  # SAVE
    make_default: bool = False  # SAVE: also the default for its method
    destination_id: str = ""  # REMOVE, MAKE_DEFAULT
    auto: AutoRule | None = None  # AUTO
    currency: str = ""  # STOP_AUTO
    requested_at: datetime
    platform_signature: str = ""


class Verification(StrEnum):
    """Verification of Payee: the bank's answer to "is this name on this account?"."""

    MATCH = "match"
    CLOSE_MATCH = "close_match"
    NO_MATCH = "no_match"
    UNAVAILABLE = "unavailable"


class PayeeCheckInput(Frozen):
    """Verification of Payee for a bank cash-out: is `account.holder_name` the name on
    `account.iban`? A saved destination's answer is kept with the profile."""

    user_id: str
    account: BankAccount
    destination_id: str = ""  # a saved destination ("" when the cash-out typed it)
    changed_at: datetime | None = None  # the saved destination's version the cash-out pays
    checked_at: datetime


class PayeeCheck(Frozen):
    result: Verification
    bank_name: str = ""  # on a close match: the name the bank holds
    kept: bool = False  # the profile's answer for this unchanged destination, not asked again


def vop_outcome(check: PayeeCheck) -> tuple[str, str]:
    """(why the cash-out is refused, why it goes to review): at most one is not empty."""
    if check.result is Verification.NO_MATCH:
        return "Verification of Payee: the name does not match the account", ""
    if check.result is Verification.CLOSE_MATCH:
        return "", f"Verification of Payee: close match; the bank holds {check.bank_name!r}"
    if check.result is Verification.UNAVAILABLE:
        return "", "Verification of Payee: the bank's service did not answer"
    return "", ""


class SavedDestination(Frozen):
    """What the platform and the payee are shown of a saved destination (masked)."""

    id: str
    method: Method
    shown: str  # masked
    is_default: bool
    changed_at: datetime
    cooloff_until: datetime
    verification: Verification | None = None
    verified_name: str = ""  # the bank's name, on a close match
    shared: bool = False  # another payee saved or used the same account


class ProfileFacts(Frozen):
    """What a cash-out to a saved destination must know of it (resolved at admission)."""

    destination_id: str
    changed_at: datetime
    cooloff_until: datetime
    shared: bool = False
    verification: Verification | None = None
    verified_name: str = ""


class AutoStatus(Frozen):
    """Where a payee stands with one automatic cash-out, for them to read."""

    currency: str
    available: int
    due: bool
    explanation: str  # "below your threshold by 1.23 USD", "next on 2026-12-07", ...


class PayeeProfile(Frozen):
    user_id: str
    destinations: tuple[SavedDestination, ...] = ()
    auto: tuple[AutoRule, ...] = ()
    auto_status: tuple[AutoStatus, ...] = ()  # one per rule, in the same order


class ProfileChangeInput(Frozen):
    change: ProfileChange
    started_at: datetime  # when the server started the change's workflow


class ProfileResult(Frozen):
    """The answer to a change: applied (and the profile after it), or why not."""

    applied: bool
    refusal: str = ""
    profile: PayeeProfile | None = None
    destination_id: str = ""


def destination_id(user_id: str, fingerprint: str) -> str:
    """A saved destination's id: stable for this payee and this account, and no account
    number in it (the fingerprint is a keyed hash)."""
    return "dst_" + hashlib.sha256(f"{user_id}|{fingerprint}".encode()).hexdigest()[:20]


def cooloff_end(changed_at: datetime, hours: int) -> datetime:
    return changed_at + timedelta(hours=hours)


def review_reasons(facts: ProfileFacts, now: datetime) -> list[str]:
    """Why a cash-out to this saved destination goes to a reviewer (none: it need not)."""
    reasons = []
    if now < facts.cooloff_until:
        reasons.append(
            f"the destination was saved or changed {facts.changed_at:%Y-%m-%d %H:%M} UTC: "
            f"in cool-off until {facts.cooloff_until:%Y-%m-%d %H:%M} UTC"
        )
    if facts.shared:
        reasons.append("the destination is also saved or used by another payee")
    return reasons


# ------------------------------------------------------------------ automatic cash-out


def period_of(rule: AutoRule, now: datetime, *, scheduled: bool) -> str:
    """The trigger period a cash-out started now belongs to: a day for a threshold, the ISO
    week or the month for a schedule. One cash-out per rule and period."""
    if not scheduled:
        return f"d{now:%Y%m%d}"
    if rule.every is Every.WEEKLY:
        year, week, _ = now.isocalendar()
        return f"w{year}{week:02d}"
    return f"m{now:%Y%m}"


def auto_request_id(user_id: str, rule: AutoRule, period: str) -> str:
    """Deterministic, so a sweep that runs twice in a period (or two that overlap) start
    the same cash-out once (request ids are 1-64 of [A-Za-z0-9_.:-])."""
    digest = hashlib.sha256(f"{user_id}|{rule.currency}|{period}".encode()).hexdigest()[:24]
    return f"auto-{rule.currency.lower()}-{period}-{digest}"


def dormant_request_id(user_id: str, currency: str, now: datetime) -> str:
    """A dormant balance is paid at most once a month (deterministic, like the rules')."""
    period = f"m{now:%Y%m}"
    digest = hashlib.sha256(f"{user_id}|{currency}|dormant|{period}".encode()).hexdigest()[:24]
    return f"dormant-{currency.lower()}-{period}-{digest}"


def schedule_due(rule: AutoRule, now: datetime) -> bool:
    """Is today a scheduled day (Monday for weekly, the 1st for monthly)?"""
    if rule.every is Every.WEEKLY:
        return now.weekday() == 0
    if rule.every is Every.MONTHLY:
        return now.day == 1
    return False


def auto_due(rule: AutoRule, available: int, now: datetime) -> tuple[bool, str, str]:
    """(start a cash-out?, why or why not, its period). `available` is the matured balance."""
    cur = rule.currency
    if rule.threshold is not None and available >= rule.threshold:
        return (
            True,
            f"{format_money(available, cur)} reached the threshold",
            period_of(rule, now, scheduled=False),
        )
    if schedule_due(rule, now) and available >= max(rule.minimum, 1):
        return True, f"scheduled {rule.every}", period_of(rule, now, scheduled=True)
    if rule.threshold is not None:
        short = format_money(rule.threshold - available, cur)
        return False, f"below your threshold by {short}", ""
    return False, f"next on {next_scheduled(rule, now):%Y-%m-%d}", ""


def next_scheduled(rule: AutoRule, now: datetime) -> datetime:
    """The next scheduled day after today (UTC midnight)."""
    day = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    if rule.every is Every.WEEKLY:
        return day + timedelta(days=(7 - day.weekday()) % 7)
    if rule.every is Every.MONTHLY:
        if day.day == 1:
            return day
        first = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
        return first
    return day


# ------------------------------------------------------------------ the sweep's messages


class SweepPage(Frozen):
    """One page of the sweep: opted-in payees after `after` (by user id), at most `limit`,
    cash-outs started at most `rate` per second; `dormant`: the dormant balances instead of
    the standing instructions."""

    as_of: datetime
    after: str = ""
    limit: int = 1000
    rate: float = 50.0
    dormant: bool = False


class SweepResult(Frozen):
    scanned: int = 0
    started: int = 0
    already: int = 0  # started before in this period (a second or overlapping sweep)
    skipped: int = 0  # not due (below the threshold, not a scheduled day)
    refused: int = 0  # the request would not validate (e.g. below the method's minimum)
    next_after: str = ""  # "" when this was the last page

    def plus(self, other: SweepResult) -> SweepResult:
        fields = ("scanned", "started", "already", "skipped", "refused")
        added = {f: getattr(self, f) + getattr(other, f) for f in fields}
        return SweepResult(**added, next_after=other.next_after)
