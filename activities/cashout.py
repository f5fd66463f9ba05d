"""Cash-out activities: open the I/O, call the domain, translate errors.

Each domain refusal (`PayoutError` that is not retryable) becomes a non-retryable
`ApplicationError` whose type is the error's stable code; transient faults stay retryable
(a 429's Retry-After becomes the next retry delay). Database steps are synchronous and run
as local activities in the worker's thread pool; calls to the outside world are async and
heartbeat while they wait.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any, ParamSpec, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.admission import Admitter
from payouts.domain import risk
from payouts.domain.cashout import AuditEntry
from payouts.domain.messages import (
    AdmitAndReserve,
    AdmittedReserve,
    BankEnqueue,
    BookPayout,
    GiftCardsInput,
    GiftCardsIssued,
    IdentityInput,
    IdentityResult,
    NotifyInput,
    ReleaseHold,
    ReserveAndAssess,
    Reserved,
    ReserveResult,
    ReversePayout,
    RiskInput,
    RiskResult,
    WalletPayout,
    WalletPayoutInput,
)
from payouts.domain.money import format_money
from payouts.errors import PayoutError, RailRetryAfter, RailTimeout
from payouts.ledger import Ledger
from payouts.ledger import risk_facts as facts
from payouts.rails.bank import book
from payouts.rails.giftcards import codes as giftcards
from payouts.rails.giftcards.port import GiftCardProvider
from payouts.rails.identity.port import IdentityProvider
from payouts.rails.wallet.port import WalletPayoutRecord, WalletProvider
from payouts.security.vault import Vault
from payouts.store import audit, outbox
from payouts.temporal import contract
from payouts.temporal.contract import Activity as A
from payouts.temporal.interfaces import CashoutSteps

log = logging.getLogger("payouts.activities")
P = ParamSpec("P")
T = TypeVar("T")
OWED_LOOKBACK = timedelta(days=90)  # how far back owing beyond the limit sends to review


def _application_error(exc: PayoutError) -> ApplicationError:
    """A domain error is expected (a refusal, a rail's known fault), not a bug: it fails the
    activity as BENIGN, which the SDK logs without a traceback at DEBUG, and we log one
    line: INFO for a refusal, WARNING for a fault that is retried. Anything else raised in
    an activity is a bug and keeps the SDK's warning with its traceback."""
    delay = None
    if isinstance(exc, RailRetryAfter):
        delay = timedelta(seconds=exc.retry_after)
    info = activity.info()
    if exc.retryable:
        log.warning("%s: %s, attempt %d: %s", info.workflow_id, exc.code, info.attempt, exc)
    else:
        log.info("%s refused: %s: %s", info.workflow_id, exc.code, exc)
    return ApplicationError(
        exc.message,
        type=exc.code,
        non_retryable=not exc.retryable,
        next_retry_delay=delay,
        category=ApplicationErrorCategory.BENIGN,
    )


def domain_errors(fn: Callable[P, T]) -> Callable[P, T]:
    """Translate `PayoutError` into `ApplicationError` (sync activities)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        except PayoutError as exc:
            raise _application_error(exc) from exc

    return wrapper


def async_domain_errors(
    fn: Callable[P, Coroutine[Any, Any, T]],
) -> Callable[P, Coroutine[Any, Any, T]]:
    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(*args, **kwargs)
        except PayoutError as exc:
            raise _application_error(exc) from exc

    return wrapper


async def heartbeating(awaitable: Awaitable[T]) -> T:
    """Await a call to the outside world, heartbeating every second until it answers."""
    task = asyncio.ensure_future(awaitable)
    while True:
        done, _ = await asyncio.wait({task}, timeout=1.0)
        if done:
            return task.result()
        activity.heartbeat()


def _in_thread(fn: Callable[..., T], *args: Any) -> Awaitable[T]:
    return heartbeating(asyncio.to_thread(fn, *args))


def _payout(record: WalletPayoutRecord, *, looked_up: bool = False) -> WalletPayout:
    return WalletPayout(
        id=record.id,
        status=record.status,
        failure_reason=record.failure_reason,
        resolved_by_lookup=looked_up,
    )


class CashoutActivities(CashoutSteps):
    def __init__(
        self,
        *,
        ledger: Ledger,
        identity: IdentityProvider,
        wallet: WalletProvider,
        gift_cards: GiftCardProvider,
        vault: Vault,
        fingerprint_key: bytes,
        admitter: Admitter,
        owed_allowances: dict[str, int] | None = None,
        owed_review_above: dict[str, int] | None = None,
    ) -> None:
        self.admitter = admitter
        # per currency (the worker's policy): what a payee may owe and still start a
        # cash-out, and above what owing (in the last OWED_LOOKBACK) sends it to review
        self.owed_allowances = owed_allowances or {}
        self.owed_review_above = owed_review_above or {}
        self.ledger = ledger
        self.identity = identity
        self.wallet = wallet
        self.gift_cards = gift_cards
        self.vault = vault
        self.fingerprint_key = fingerprint_key

    # ------------------------------------------------------------------ local: database
    # Each is idempotent: every ledger write has a key from the workflow, the destination
    # registry and the batch book are upserts, the outbox is keyed by event id, so a local
    # activity that runs again after a crash changes nothing twice.

    @activity.defn(name=A.ADMIT_AND_RESERVE)
    @domain_errors
    def admit_and_reserve(self, inp: AdmitAndReserve) -> AdmittedReserve:
        """Admit the cash-out (the platform's signature, the registered rules and quote);
        only an admitted one is reserved and assessed. One local activity, one round."""
        admission = self.admitter.admit(inp.admit)
        if not admission.admitted:
            return AdmittedReserve(admission=admission)
        reserve = inp.reserve
        if admission.destination is not None:  # a saved destination: score the real one
            risk = reserve.risk.model_copy(update={"destination": admission.destination})
            reserve = reserve.model_copy(update={"risk": risk})
        return AdmittedReserve(admission=admission, reserved=self.reserve_and_assess(reserve))

    @activity.defn(name=A.RESERVE_AND_ASSESS)
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
            owed_allowances=self.owed_allowances,
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
        return RiskResult(score=score, reasons=reasons, review=self._owed_flags(inp))

    def _owed_flags(self, inp: RiskInput) -> tuple[str, ...]:
        """A payee who owed more than the policy's limit after a reversal lately is seen
        by a reviewer (in any currency: the debt says something about the payee)."""
        if not self.owed_review_above:
            return ()
        peaks = facts.owed_peaks(self.ledger.db, inp.user_id, inp.as_of - OWED_LOOKBACK)
        flags = []
        for cur, (owed, at) in sorted(peaks.items()):
            limit = self.owed_review_above.get(cur)
            if limit is not None and owed > limit:
                flags.append(
                    f"owed {format_money(owed, cur)} after reversed earnings on {at:%Y-%m-%d} "
                    f"(reviewed above {format_money(limit, cur)})"
                )
        return tuple(flags)

    @activity.defn(name=A.BOOK_PAYOUT)
    @domain_errors
    def book_payout(self, inp: BookPayout) -> int:
        """The rail paid: held -> clearing and fees; then tell the platform."""
        p = inp.post
        tx = self.ledger.post(key=p.key, hold_id=p.hold_id, gross=p.gross, fee=p.fee)
        self._record(inp.notify)
        return tx.transaction_id

    @activity.defn(name=A.RELEASE_HOLD)
    @domain_errors
    def release_hold(self, inp: ReleaseHold) -> int:
        """No payout: a queued bank transfer is taken out of the book first (it must never
        leave for a released hold), then held -> available, then tell the platform."""
        v = inp.void
        book.withdraw(self.ledger.db, v.hold_id, inp.notify.at)
        tx = self.ledger.void(key=v.key, hold_id=v.hold_id, reason=v.reason)
        self._record(inp.notify)
        return tx.transaction_id

    @activity.defn(name=A.REVERSE_PAYOUT)
    @domain_errors
    def reverse_payout(self, inp: ReversePayout) -> int:
        """The rail returned a paid payout: the money goes back to available."""
        r = inp.reverse
        tx = self.ledger.reverse(key=r.key, hold_id=r.hold_id, reason=r.reason)
        self._record(inp.notify)
        return tx.transaction_id

    @activity.defn(name=A.NOTIFY)
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

    @activity.defn(name=A.RECORD_REVIEW_AUDIT)
    @domain_errors
    def record_review_audit(self, entries: list[AuditEntry]) -> int:
        return audit.record(self.ledger.db, entries)

    @activity.defn(name=A.ENQUEUE_BANK_TRANSFER)
    @domain_errors
    def enqueue_bank_transfer(self, inp: BankEnqueue) -> str:
        """Put the transfer in the batch book; the next cutoff sends it."""
        d = inp.destination
        return book.enqueue(
            self.ledger.db,
            workflow_id=inp.workflow_id,
            request_id=inp.request_id,
            user_id=inp.user_id,
            currency=inp.currency,
            amount=inp.amount,
            iban=d.iban,
            bic=d.bic,
            holder_name=d.holder_name,
            at=inp.at,
        )

    # ------------------------------------------------------------------ the outside world

    @activity.defn(name=A.VERIFY_IDENTITY)
    @async_domain_errors
    async def verify_identity(self, inp: IdentityInput) -> IdentityResult:
        return await _in_thread(self.identity.check, inp.user_id, inp.checked_at)

    @activity.defn(name=A.SEND_WALLET_PAYOUT)
    @async_domain_errors
    async def send_wallet_payout(self, inp: WalletPayoutInput) -> WalletPayout:
        """Pay once in effect: a retry, or an answer lost in a timeout, is resolved by asking
        the provider what it has under the idempotency key before sending again."""
        if activity.info().attempt > 1:
            known = await heartbeating(self.wallet.find(inp.key))
            if known is not None:
                return _payout(known, looked_up=True)
        try:
            record = await heartbeating(
                self.wallet.send(
                    key=inp.key,
                    reference=inp.reference,
                    wallet_id=inp.wallet_id,
                    amount=inp.amount,
                    currency=inp.currency,
                    instant=inp.instant,
                )
            )
        except RailTimeout as exc:
            known = await heartbeating(self.wallet.find(inp.key))
            if known is not None:
                activity.logger.info("ambiguous wallet timeout resolved by lookup: applied")
                return _payout(known, looked_up=True)
            raise ApplicationError(
                f"{exc.message}; the provider has no record of it, sending again", type=exc.code
            ) from exc
        return _payout(record)

    @activity.defn(name=A.WALLET_PAYOUT_STATUS)
    @async_domain_errors
    async def wallet_payout_status(self, payout_id: str) -> WalletPayout:
        return _payout(await heartbeating(self.wallet.get(payout_id)))

    @activity.defn(name=A.ISSUE_GIFT_CARDS)
    @async_domain_errors
    async def issue_gift_cards(self, inp: GiftCardsInput) -> GiftCardsIssued:
        """Issue the cards and keep their codes encrypted; only their number leaves this
        activity (no digit of a code enters workflow history)."""
        cards = await _in_thread(
            lambda: self.gift_cards.issue(
                key=inp.key,
                reference=contract.gift_card_reference(inp.request_id),
                currency=inp.currency,
                faces=inp.cards,
                at=inp.at,
            )
        )
        await _in_thread(
            lambda: giftcards.store(
                self.ledger.db,
                self.vault,
                request_id=inp.request_id,
                user_id=inp.user_id,
                cards=cards,
                at=inp.at,
            )
        )
        return GiftCardsIssued(count=len(cards))

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.admit_and_reserve,
            self.reserve_and_assess,
            self.book_payout,
            self.release_hold,
            self.reverse_payout,
            self.notify,
            self.record_review_audit,
            self.enqueue_bank_transfer,
            self.verify_identity,
            self.send_wallet_payout,
            self.wallet_payout_status,
            self.issue_gift_cards,
        ]
