"""The fee quote: what the payee sees before confirming, and what is then charged.

`quote` is a pure function of the policy slice and the requested amount. The requested
amount may carry sub-minor micros (a user asking for their whole balance); the gross payout
is the largest payable amount not above it (whole minor units, or for gift cards the largest
sum of the policy's face values), and the rest stays in the payee's balance.
"""

from __future__ import annotations

import math
from datetime import datetime
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict

from payouts.domain.money import check_micros, format_money, get_currency, split_minor
from payouts.domain.policy import CashoutRules, Method, Policy, fee_for
from payouts.errors import QuoteRefused

Speed = Literal["standard", "instant"]


class Quote(BaseModel):
    """gross = fee + net; requested = gross + remainder. All in micros."""

    model_config = ConfigDict(frozen=True)

    policy_version: str
    method: Method
    currency: str
    requested: int
    gross: int
    fee: int
    net: int
    remainder: int
    # Gift cards only: the face values of the cards, largest first.
    cards: tuple[int, ...] = ()
    # Set by the client when it shows the quote; a quote stays honoured for 15 minutes.
    quoted_at: datetime | None = None
    # "instant": the method's instant fees, paid in minutes (where the policy offers it)
    speed: Speed = "standard"


def quote(
    policy: Policy, method: Method | str, currency: str, requested: int, speed: Speed = "standard"
) -> Quote:
    """Quote a cash-out of `requested` micros by `method` in `currency` under `policy`."""
    return quote_with_rules(policy.rules_for(method, currency), requested, speed)


def quote_with_rules(rules: CashoutRules, requested: int, speed: Speed = "standard") -> Quote:
    check_micros(requested, field="amount", allow_zero=False)
    cur = rules.currency
    if speed == "instant" and rules.instant is None:
        raise QuoteRefused(f"speed: instant is not offered for {rules.method.value} in {cur}")
    if rules.method is Method.GIFT_CARD:
        cards = best_card_combination(rules.denominations, requested)
        gross = sum(cards)
    else:
        cards = ()
        gross, _ = split_minor(requested, cur)
    fees = rules.instant.fees if speed == "instant" and rules.instant else rules.fees
    minimum = max(rules.currency_rules.min_cashout, fees.min_amount)
    if gross < minimum:
        shown = format_money(requested, cur)
        raise QuoteRefused(
            f"amount: {shown} is below the minimum cash-out of {format_money(minimum, cur)} "
            f"for {rules.method.value}"
            + (f" (payable as cards: {format_money(gross, cur)})" if rules.denominations else "")
        )
    if gross > fees.max_amount:
        raise QuoteRefused(
            f"amount: {format_money(gross, cur)} is above the {rules.method.value} maximum of "
            f"{format_money(fees.max_amount, cur)} per cash-out"
        )
    fee = fee_for(fees, rules.rounding, cur, gross)
    if fee >= gross:
        raise QuoteRefused(
            f"amount: the fee of {format_money(fee, cur)} would take the whole "
            f"{format_money(gross, cur)}"
        )
    return Quote(
        policy_version=rules.policy_version,
        method=rules.method,
        currency=cur,
        requested=requested,
        gross=gross,
        fee=fee,
        net=gross - fee,
        remainder=requested - gross,
        cards=cards,
        speed=speed,
    )


def arrival_minutes(rules: CashoutRules, speed: Speed) -> int:
    """How long after approval the payee should have the money, at this speed."""
    if speed == "instant" and rules.instant is not None:
        return rules.instant.expected_arrival_minutes
    return rules.expected_arrival_hours * 60


def best_card_combination(faces: tuple[int, ...], amount: int) -> tuple[int, ...]:
    """The largest sum of face values (each usable many times) not above `amount`.

    Among equal sums, the fewest cards. Face values share a step (their gcd), so the search
    runs over amount/step cells: 50,000 at most for a 500.00 limit in cents.
    """
    if not faces or amount <= 0:
        return ()
    step = math.gcd(*faces)
    units = amount // step
    return tuple(f * step for f in _best_cards(tuple(f // step for f in faces), units))


@lru_cache(maxsize=256)
def _best_cards(faces: tuple[int, ...], units: int) -> tuple[int, ...]:
    if units > 2_000_000:
        raise QuoteRefused("amount: too large for a gift card combination")
    # fewest[v] = fewest cards summing to exactly v (-1: unreachable); last[v] = a card used.
    fewest = [-1] * (units + 1)
    last = [0] * (units + 1)
    fewest[0] = 0
    for v in range(1, units + 1):
        best = -1
        for f in faces:
            if f <= v and fewest[v - f] >= 0 and (best < 0 or fewest[v - f] + 1 < best):
                best = fewest[v - f] + 1
                last[v] = f
        fewest[v] = best
    v = units
    while v > 0 and fewest[v] < 0:
        v -= 1
    cards = []
    while v > 0:
        cards.append(last[v])
        v -= last[v]
    return tuple(sorted(cards, reverse=True))


def describe(q: Quote) -> str:
    cur = get_currency(q.currency).code
    return (
        f"gross {format_money(q.gross, cur)}, fee {format_money(q.fee, cur)}, "
        f"net {format_money(q.net, cur)}, stays in balance {format_money(q.remainder, cur)}"
    )
