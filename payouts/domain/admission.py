"""Admission: the worker decides what a cash-out may do, not whoever started it.

Before anything is held, the worker checks a cash-out's input against its own registry of
policy versions: the rules slice must be exactly the registered version's slice for the
method and currency; the request must be in the form the request rules produce (ids,
amount, destination); the quote must be the one that version gives for the amount
(recomputed to the micro: fee, net, remainder and gift card faces), not in the future, and
honoured only within its window; and the request must be recent. The platform's signature
is checked by the caller (it needs the key; this stays pure).

Each refusal names the rule it broke.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from payouts.domain.cashout import CashoutInput
from payouts.domain.policy import Policy
from payouts.domain.requests import build_input
from payouts.errors import PayoutError

REQUEST_TTL = timedelta(minutes=15)  # a signed request starts within this, or never
CLOCK_SKEW = timedelta(minutes=2)


def refusal(
    inp: CashoutInput, *, started_at: datetime, registry: Callable[[str], Policy | None]
) -> str | None:
    """Why `inp` may not run (None: admitted). `started_at` is when the server started it."""
    version = inp.rules.policy_version
    policy = registry(version)
    if policy is None:
        return f"rules: policy version {version!r} is not registered with this service"
    if inp.requested_at > started_at + CLOCK_SKEW:
        return "requested_at: in the future"
    if started_at - inp.requested_at > REQUEST_TTL:
        minutes = int(REQUEST_TTL.total_seconds() // 60)
        return f"requested_at: the request is more than {minutes} minutes old; send a new one"
    req = inp.request
    try:
        expected = build_input(
            policy,
            request_id=req.request_id,
            user_id=req.user_id,
            amount=req.amount,
            currency=req.currency,
            method=req.method,
            destination=req.destination,
            quote=req.quote,
            speed=req.speed,
            now=inp.requested_at,
            registry=registry,
        )
    except PayoutError as exc:
        return exc.message
    if expected.rules != inp.rules:
        return (
            f"rules: not the registered slice of policy {version} for "
            f"{req.method.value} in {req.currency}"
        )
    if expected.request != req:
        return "request: not in the form the request rules give it"
    if expected.quote != inp.quote:
        return f"quote: not the quote policy {inp.quote.policy_version} gives for this amount"
    return None
