"""The activities' signatures, for workflows to call them by typed reference.

Workflows call `workflow.execute_activity_method(CashoutSteps.verify_identity, ...)`, so
mypy checks the argument and the result, and the workflow modules need none of the
activities' dependencies (the database, the rails). The implementations in `activities/`
subclass these and register under the same names; `tests/unit/test_contract.py` checks
that every implementation keeps its interface's name.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import activity

from payouts.domain.cashout import AuditEntry
from payouts.domain.messages import (
    AdmitAndReserve,
    AdmittedReserve,
    BankCycle,
    BankEnqueue,
    BankSignal,
    BookPayout,
    DeliveryResult,
    GiftCardsInput,
    GiftCardsIssued,
    IdentityInput,
    IdentityResult,
    NotifyInput,
    ReconcileInput,
    ReconcileResult,
    ReleaseHold,
    ReserveAndAssess,
    Reserved,
    ReversePayout,
    WalletPayout,
    WalletPayoutInput,
)
from payouts.domain.profiles import (
    PayeeCheck,
    PayeeCheckInput,
    ProfileChangeInput,
    ProfileResult,
    SweepPage,
    SweepResult,
)
from payouts.domain.reversals import ReversalInput, ReversalResult
from payouts.domain.statements import StatementInput, StatementPage
from payouts.temporal.contract import Activity as A


class CashoutSteps:
    """What a cash-out does: local activities on our database, then calls to the rails."""

    @activity.defn(name=A.ADMIT_AND_RESERVE)
    def admit_and_reserve(self, inp: AdmitAndReserve) -> AdmittedReserve:
        raise NotImplementedError

    @activity.defn(name=A.RESERVE_AND_ASSESS)
    def reserve_and_assess(self, inp: ReserveAndAssess) -> Reserved:
        raise NotImplementedError

    @activity.defn(name=A.BOOK_PAYOUT)
    def book_payout(self, inp: BookPayout) -> int:
        raise NotImplementedError

    @activity.defn(name=A.RELEASE_HOLD)
    def release_hold(self, inp: ReleaseHold) -> int:
        raise NotImplementedError

    @activity.defn(name=A.REVERSE_PAYOUT)
    def reverse_payout(self, inp: ReversePayout) -> int:
        raise NotImplementedError

    @activity.defn(name=A.NOTIFY)
    def notify(self, inp: NotifyInput) -> bool:
        raise NotImplementedError

    @activity.defn(name=A.RECORD_REVIEW_AUDIT)
    def record_review_audit(self, entries: list[AuditEntry]) -> int:
        raise NotImplementedError

    @activity.defn(name=A.ENQUEUE_BANK_TRANSFER)
    def enqueue_bank_transfer(self, inp: BankEnqueue) -> str:
        raise NotImplementedError

    @activity.defn(name=A.VERIFY_IDENTITY)
    async def verify_identity(self, inp: IdentityInput) -> IdentityResult:
        raise NotImplementedError

    @activity.defn(name=A.SEND_WALLET_PAYOUT)
    async def send_wallet_payout(self, inp: WalletPayoutInput) -> WalletPayout:
        raise NotImplementedError

    @activity.defn(name=A.WALLET_PAYOUT_STATUS)
    async def wallet_payout_status(self, payout_id: str) -> WalletPayout:
        raise NotImplementedError

    @activity.defn(name=A.ISSUE_GIFT_CARDS)
    async def issue_gift_cards(self, inp: GiftCardsInput) -> GiftCardsIssued:
        raise NotImplementedError


class BankSteps:
    """The bank workflows: cut batches, read reports, tell the cash-outs."""

    @activity.defn(name=A.CUT_BANK_BATCHES)
    def cut_bank_batches(self, as_of: datetime) -> BankCycle:
        raise NotImplementedError

    @activity.defn(name=A.PROCESS_BANK_REPORTS)
    def process_bank_reports(self, as_of: datetime) -> BankCycle:
        raise NotImplementedError

    @activity.defn(name=A.BANK_SIGNALS)
    def bank_signals(self, limit: int) -> list[BankSignal]:
        raise NotImplementedError

    @activity.defn(name=A.MARK_BANK_SIGNALLED)
    def mark_bank_signalled(self, told: list[BankSignal]) -> int:
        raise NotImplementedError

    @activity.defn(name=A.APPLY_LATE_BANK_EVENT)
    def apply_late_bank_event(self, signal: BankSignal) -> str:
        raise NotImplementedError

    @activity.defn(name=A.SEND_INSTANT_BANK_TRANSFER)
    def send_instant_bank_transfer(self, inp: BankEnqueue) -> str:
        raise NotImplementedError


class OpsSteps:
    """Operations: deliver the platform's notifications, reconcile a day."""

    @activity.defn(name=A.DELIVER_NOTIFICATIONS)
    async def deliver_notifications(self, as_of: datetime) -> DeliveryResult:
        raise NotImplementedError

    @activity.defn(name=A.RECONCILE_DAY)
    async def reconcile_day(self, inp: ReconcileInput) -> ReconcileResult:
        raise NotImplementedError


class PayeeSteps:
    """Payees: apply a signed change to a profile (local), one page of the automatic
    cash-out sweep (it starts cash-outs through Temporal), Verification of Payee (the
    bank's name check, kept with a saved destination), apply a signed reversal of an
    earning (local), and serve a signed read of a page of a payee's statement (local)."""

    @activity.defn(name=A.VERIFY_PAYEE)
    async def verify_payee(self, inp: PayeeCheckInput) -> PayeeCheck:
        raise NotImplementedError

    @activity.defn(name=A.APPLY_PROFILE_CHANGE)
    def apply_profile_change(self, inp: ProfileChangeInput) -> ProfileResult:
        raise NotImplementedError

    @activity.defn(name=A.SWEEP_AUTO_CASHOUTS)
    async def sweep_auto_cashouts(self, page: SweepPage) -> SweepResult:
        raise NotImplementedError

    @activity.defn(name=A.APPLY_REVERSAL)
    def apply_reversal(self, inp: ReversalInput) -> ReversalResult:
        raise NotImplementedError

    @activity.defn(name=A.STATEMENT_PAGE)
    def statement_page(self, inp: StatementInput) -> StatementPage:
        raise NotImplementedError
