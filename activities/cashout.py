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
    BookPayout,
    DisburseInput,
    IdentityInput,
    IdentityResult,
    NotifyInput,
    RailResult,
    ReleaseHold,
    ReserveAndAssess,
    Reserved,
    ReserveResult,
    RiskInput,
    RiskResult,
    SettlementInput,
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
    # Each is idempotent: every ledger write has a key from the workflow, the destination
    # registry is an upsert and the outbox is keyed by event id, so a local activity that
    # runs again after a crash changes nothing twice.

    @activity.defn(name="reserve_and_assess")
    @domain_errors
    def reserve_and_assess(self, inp: ReserveAndAssess) -> Reserved:
        """Mature what is due for this user, hold the gross (balance and limits), then
        gather the fraud facts and score them."""
        r = inp.reserve
        self.ledger.mature_due(user_id=r.user_id)
        receipt = self.ledger.reserve(
            key=r.key,
            hold_id=r.hold_id,
            user_id=r.user_id,
            currency=r.currency,
            amount=r.amount,
            daily_amount_limit=r.daily_amount_limit,
            daily_count_limit=r.daily_count_limit,
        )
        return Reserved(
            reserve=ReserveResult(
                transaction_id=receipt.transaction_id, available_after=receipt.available_after
            ),
            risk=self._assess(inp.risk, hold_id=r.hold_id),
        )

    def _assess(self, inp: RiskInput, *, hold_id: str) -> RiskResult:
        fingerprint = facts.destination_fingerprint(inp.destination, self.fingerprint_key)
        found = facts.gather(
            self.ledger.db,
            user_id=inp.user_id,
            currency=inp.currency,
            amount=inp.amount,
            fingerprint=fingerprint,
            hold_id=hold_id,
            as_of=inp.as_of,
        )
        score, reasons = risk.assess(found)
        return RiskResult(score=score, reasons=reasons)

    @activity.defn(name="book_payout")
    @domain_errors
    def book_payout(self, inp: BookPayout) -> int:
        """The rail paid: held -> clearing and fees; then tell the platform."""
        p = inp.post
        tx = self.ledger.post(key=p.key, hold_id=p.hold_id, gross=p.gross, fee=p.fee)
        self._record(inp.notify)
        return tx.transaction_id

    @activity.defn(name="release_hold")
    @domain_errors
    def release_hold(self, inp: ReleaseHold) -> int:
        """No payout: held -> available; then tell the platform."""
        v = inp.void
        tx = self.ledger.void(key=v.key, hold_id=v.hold_id, reason=v.reason)
        self._record(inp.notify)
        return tx.transaction_id

    @activity.defn(name="notify")
    @domain_errors
    def notify(self, inp: NotifyInput) -> bool:
        return self._record(inp)

    def _record(self, n: NotifyInput) -> bool:
        return outbox.record(
            self.ledger.db,
            event_id=n.event_id,
            request_id=n.request_id,
            user_id=n.user_id,
            stage=n.stage.value,
            payload=dict(n.payload),
            at=n.at,
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
            self.reserve_and_assess,
            self.book_payout,
            self.release_hold,
            self.notify,
            self.verify_identity,
            self.disburse,
            self.check_settlement,
        ]
