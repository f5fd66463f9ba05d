"""Fraud rules: pure functions from facts about a cash-out to a score 0-100 with reasons.

Each rule adds points and says why in words a reviewer can act on. The facts are gathered
by an activity from the ledger (earnings, holds) and the destination registry; nothing
here does I/O. The score feeds the policy's review and reject thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from payouts.domain.money import format_money

# (points, threshold) of each rule; kept together so a reviewer can read the whole scheme.
NEW_ACCOUNT_DAY = 25  # first earning less than a day ago
NEW_ACCOUNT_WEEK = 15  # ... less than a week ago
NO_HISTORY = 30  # no earnings on record at all
VELOCITY_DAY = 20  # this is at least the 3rd cash-out in 24 hours
VELOCITY_DAY_COUNT = 3
VELOCITY_WEEK = 10  # ... or at least the 10th in 7 days
VELOCITY_WEEK_COUNT = 10
SPIKE = 25  # last 24 hours' earnings over 5x the daily average of the 30 days before
SPIKE_FACTOR = 5
FRESH_EARNER = 15  # nothing earned before the last 24 hours, and it pays for this cash-out
SHARED_DESTINATION = 40  # the destination is used by other users too
CHANGED_DESTINATION = 20  # a new destination for a user who was paid elsewhere before
FIRST_CASHOUT = 10


@dataclass(frozen=True)
class RiskFacts:
    as_of: datetime
    currency: str
    amount: int
    first_earning_at: datetime | None
    cashouts_24h: int  # before this one, not voided
    cashouts_7d: int
    previous_paid: int
    earned_24h: int
    earned_prior_30d: int  # the 30 days before the last 24 hours
    destination_other_users: int
    destination_first_used_at: datetime | None  # by this user; None: never before
    other_destinations: int  # distinct destinations this user used before


def assess(f: RiskFacts) -> tuple[int, tuple[str, ...]]:
    """Score 0-100 and the reasons, most serious first."""
    found: list[tuple[int, str]] = []
    if f.first_earning_at is None:
        found.append((NO_HISTORY, "no earnings on record"))
    else:
        age = f.as_of - f.first_earning_at
        if age < timedelta(days=1):
            found.append((NEW_ACCOUNT_DAY, f"account is {_hours(age)} old (first earning)"))
        elif age < timedelta(days=7):
            found.append((NEW_ACCOUNT_WEEK, f"account is {age.days} days old (first earning)"))
    if f.cashouts_24h + 1 >= VELOCITY_DAY_COUNT:
        found.append((VELOCITY_DAY, f"{f.cashouts_24h + 1} cash-outs in the last 24 hours"))
    elif f.cashouts_7d + 1 >= VELOCITY_WEEK_COUNT:
        found.append((VELOCITY_WEEK, f"{f.cashouts_7d + 1} cash-outs in the last 7 days"))
    daily_avg = f.earned_prior_30d // 30
    if f.earned_prior_30d > 0 and f.earned_24h > SPIKE_FACTOR * max(daily_avg, 1):
        factor = f.earned_24h // max(daily_avg, 1)
        found.append(
            (
                SPIKE,
                (
                    f"earned {format_money(f.earned_24h, f.currency)} in the last 24 hours, "
                    f"{factor}x the daily average of the 30 days before"
                ),
            )
        )
    elif f.earned_prior_30d == 0 and f.earned_24h > 0 and f.earned_24h * 2 >= f.amount:
        found.append((FRESH_EARNER, "most of the amount was earned in the last 24 hours"))
    if f.destination_other_users > 0:
        others = f.destination_other_users
        found.append(
            (
                SHARED_DESTINATION,
                f"payout destination is also used by {others} other "
                + ("users" if others > 1 else "user"),
            )
        )
    if f.other_destinations > 0:
        if f.destination_first_used_at is None:
            found.append((CHANGED_DESTINATION, "payout destination is new for this user"))
        elif f.as_of - f.destination_first_used_at < timedelta(days=7):
            days = (f.as_of - f.destination_first_used_at).days
            found.append((CHANGED_DESTINATION, f"payout destination changed {days} days ago"))
    if f.previous_paid == 0:
        found.append((FIRST_CASHOUT, "first cash-out"))
    found.sort(key=lambda item: -item[0])
    score = min(100, sum(points for points, _ in found))
    return score, tuple(reason for _, reason in found)


def _hours(age: timedelta) -> str:
    hours = int(age.total_seconds() // 3600)
    return f"{hours} hour{'s' if hours != 1 else ''}"
