"""Cash-out activities: open the I/O, call the domain, translate errors.

Each domain refusal (`PayoutError` that is not retryable) becomes a non-retryable
`ApplicationError` whose type is the error's stable code; transient faults stay retryable.
Database steps are synchronous (they run in the worker's thread pool, as local activities);
calls to the outside world are async and heartbeat while they wait.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from payouts import facts, outbox, risk
from payouts.errors import PayoutError
from payouts.ledger import Ledger
from payouts.models import (
    DisburseInput,
    IdentityInput,
    IdentityResult,
    NotifyInput,
    PostInput,
    RailResult,
    ReserveInput,
    ReserveResult,
    RiskInput,
    RiskResult,
    SettlementInput,
    VoidInput,
)
from payouts.providers.errors import RailTimeout
from payouts.providers.identity import IdentityProvider
from payouts.providers.rails import Rail

P = ParamSpec("P")
T = TypeVar("T")


def _application_error(exc: PayoutError) -> ApplicationError:
    return ApplicationError(exc.message, type=exc.code, non_retryable=not exc.retryable)


def domain_errors(fn: Callable[P, T]) -> Callable[P, T]:
    """Translate `PayoutError` into `ApplicationError` (sync activities)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        except PayoutError as exc:
            raise _application_error(exc) from exc

    return wrapper


async def _in_thread_with_heartbeat(fn: Callable[..., T], *args: Any) -> T:
    """Run a blocking provider call in a thread, heartbeating until it returns."""
    task = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    while True:
        done, _ = await asyncio.wait({task}, timeout=1.0)
        if done:
            return task.result()
        activity.heartbeat()


def async_domain_errors(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(*args, **kwargs)
        except PayoutError as exc:
            raise _application_error(exc) from exc

    return wrapper


class CashoutActivities:
    def __init__(
        self,
        *,
        ledger: Ledger,
        identity: IdentityProvider,
        rail: Rail,
        fingerprint_key: bytes,
    ) -> None:
        self.ledger = ledger
        self.identity = identity
        self.rail = rail
        self.fingerprint_key = fingerprint_key

    # ------------------------------------------------------------------ local: database

    @activity.defn(name="reserve_funds")
    @domain_errors
    def reserve_funds(self, inp: ReserveInput) -> ReserveResult:
        """Mature what is due for this user, then hold the gross (balance and limits)."""
        self.ledger.mature_due(user_id=inp.user_id)
        receipt = self.ledger.reserve(
            key=inp.key,
            hold_id=inp.hold_id,
            user_id=inp.user_id,
            currency=inp.currency,
            amount=inp.amount,
            daily_amount_limit=inp.daily_amount_limit,
            daily_count_limit=inp.daily_count_limit,
        )
        return ReserveResult(
            transaction_id=receipt.transaction_id, available_after=receipt.available_after
        )

    @activity.defn(name="assess_risk")
    @domain_errors
    def assess_risk(self, inp: RiskInput) -> RiskResult:
        fingerprint = facts.destination_fingerprint(inp.destination, self.fingerprint_key)
        found = facts.gather(
            self.ledger.db,
            user_id=inp.user_id,
            currency=inp.currency,
            amount=inp.amount,
            fingerprint=fingerprint,
            hold_id=f"cashout-{inp.request_id}",
            as_of=inp.as_of,
        )
        score, reasons = risk.assess(found)
        return RiskResult(score=score, reasons=reasons)

    @activity.defn(name="post_payout")
    @domain_errors
    def post_payout(self, inp: PostInput) -> int:
        return self.ledger.post(
            key=inp.key, hold_id=inp.hold_id, gross=inp.gross, fee=inp.fee
        ).transaction_id

    @activity.defn(name="void_hold")
    @domain_errors
    def void_hold(self, inp: VoidInput) -> int:
        return self.ledger.void(key=inp.key, hold_id=inp.hold_id, reason=inp.reason).transaction_id

    @activity.defn(name="notify")
    @domain_errors
    def notify(self, inp: NotifyInput) -> bool:
        return outbox.record(
            self.ledger.db,
            event_id=inp.event_id,
            request_id=inp.request_id,
            user_id=inp.user_id,
            stage=inp.stage.value,
            payload=dict(inp.payload),
            at=inp.at,
        )

    # ------------------------------------------------------------------ the outside world

    @activity.defn(name="verify_identity")
    @async_domain_errors
    async def verify_identity(self, inp: IdentityInput) -> IdentityResult:
        return await _in_thread_with_heartbeat(self.identity.check, inp.user_id, inp.checked_at)

    @activity.defn(name="disburse")
    @async_domain_errors
    async def disburse(self, inp: DisburseInput) -> RailResult:
        """Send the payout once in effect: a retry first asks the rail what it already has."""
        if activity.info().attempt > 1:
            known = await _in_thread_with_heartbeat(self.rail.lookup, inp.key)
            if known is not None:
                return known.model_copy(update={"resolved_by_lookup": True})
        try:
            return await _in_thread_with_heartbeat(self.rail.send, inp)
        except RailTimeout as exc:
            known = await _in_thread_with_heartbeat(self.rail.lookup, inp.key)
            if known is not None:
                activity.logger.info("ambiguous rail timeout resolved by lookup: applied")
                return known.model_copy(update={"resolved_by_lookup": True})
            raise ApplicationError(
                f"{exc.message}; the rail has no record of it, sending again",
                type=exc.code,
            ) from exc

    @activity.defn(name="check_settlement")
    @async_domain_errors
    async def check_settlement(self, inp: SettlementInput) -> RailResult:
        return await _in_thread_with_heartbeat(self.rail.status, inp.key, inp.as_of)

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.reserve_funds,
            self.assess_risk,
            self.post_payout,
            self.void_hold,
            self.notify,
            self.verify_identity,
            self.disburse,
            self.check_settlement,
        ]
