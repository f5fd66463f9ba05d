"""The Temporal contract: every name that crosses the wire, the workflow ids, the keys.

Workflow, activity, signal, query and update names, and the ids and idempotency keys built
from them, are recorded in every history: a running cash-out replays against them, and the
rails and the ledger remember the keys. Changing a value here strands cash-outs in flight,
so none of them ever changes; new names are added beside the old ones.
"""

from __future__ import annotations

from typing import Final

DEFAULT_TASK_QUEUE: Final = "payouts"


class Workflow:
    CASHOUT: Final = "CashoutWorkflow"
    BANK_BATCH: Final = "BankBatchWorkflow"
    BANK_REPORTS: Final = "BankReportsWorkflow"
    NOTIFICATIONS: Final = "NotificationsWorkflow"
    RECONCILE: Final = "ReconcileWorkflow"
    PROFILE: Final = "PayeeProfileWorkflow"
    AUTO_SWEEP: Final = "AutoCashoutSweepWorkflow"
    REVERSAL: Final = "EarningReversalWorkflow"
    STATEMENT: Final = "PayeeStatementWorkflow"


class Signal:
    APPROVE: Final = "approve"
    REJECT: Final = "reject"
    CANCEL: Final = "cancel"
    BANK_EVENT: Final = "bank_event"
    WALLET_EVENT: Final = "wallet_event"


class Query:
    STATUS: Final = "status"
    ANSWER: Final = "answer"


class Update:
    REVIEW: Final = "review"
    CANCEL: Final = "cancel"


class Activity:
    """Activity names. Local activities touch only our database; the rest the outside world."""

    # the cash-out: local
    ADMIT_AND_RESERVE: Final = "admit_and_reserve"
    RESERVE_AND_ASSESS: Final = "reserve_and_assess"
    BOOK_PAYOUT: Final = "book_payout"
    RELEASE_HOLD: Final = "release_hold"
    REVERSE_PAYOUT: Final = "reverse_payout"
    NOTIFY: Final = "notify"
    RECORD_REVIEW_AUDIT: Final = "record_review_audit"
    ENQUEUE_BANK_TRANSFER: Final = "enqueue_bank_transfer"
    # the cash-out: the outside world
    VERIFY_IDENTITY: Final = "verify_identity"
    SEND_WALLET_PAYOUT: Final = "send_wallet_payout"
    WALLET_PAYOUT_STATUS: Final = "wallet_payout_status"
    ISSUE_GIFT_CARDS: Final = "issue_gift_cards"
    # the bank workflows
    CUT_BANK_BATCHES: Final = "cut_bank_batches"
    PROCESS_BANK_REPORTS: Final = "process_bank_reports"
    BANK_SIGNALS: Final = "bank_signals"
    MARK_BANK_SIGNALLED: Final = "mark_bank_signalled"
    APPLY_LATE_BANK_EVENT: Final = "apply_late_bank_event"
    SEND_INSTANT_BANK_TRANSFER: Final = "send_instant_bank_transfer"  # a cash-out's, at once
    # payees: profiles and the automatic cash-out sweep
    APPLY_PROFILE_CHANGE: Final = "apply_profile_change"
    SWEEP_AUTO_CASHOUTS: Final = "sweep_auto_cashouts"
    VERIFY_PAYEE: Final = "verify_payee"  # Verification of Payee, before a bank transfer
    APPLY_REVERSAL: Final = "apply_reversal"  # an earning reversal the platform signed
    STATEMENT_PAGE: Final = "statement_page"  # a page of a payee's statement, for the platform
    # operations
    DELIVER_NOTIFICATIONS: Final = "deliver_notifications"
    RECONCILE_DAY: Final = "reconcile_day"


class Patch:
    """`workflow.patched` ids: a cash-out that started before a change keeps its old
    commands on replay; one that starts after takes the new ones."""

    ADMISSION: Final = "admission-before-hold"
    ROLL: Final = "continue-as-new-at-long-waits"
    HOLDER_REVIEW: Final = "uncompared-holder-to-review"
    VOP: Final = "verification-of-payee"
    DORMANT: Final = "sweep-dormant-balances"


class Decision:
    """What a reviewer decides (the signal names double as the decision)."""

    APPROVE: Final = Signal.APPROVE
    REJECT: Final = Signal.REJECT
    ALL: Final = (APPROVE, REJECT)


# ---------------------------------------------------------------- workflow ids

CASHOUT_PREFIX: Final = "cashout-"


def cashout_id(request_id: str) -> str:
    """The workflow id of a cash-out: one workflow per platform request id."""
    return f"{CASHOUT_PREFIX}{request_id}"


def request_id_of(workflow_id: str) -> str:
    return workflow_id.removeprefix(CASHOUT_PREFIX)


def profile_change_id(change_id: str) -> str:
    """The workflow that applies one change to a payee's profile (a re-sent change meets
    the first one's run and result)."""
    return f"profile-{change_id}"


def reversal_workflow_id(reversal_id: str) -> str:
    """The workflow that applies one reversal (a re-sent one meets the first run)."""
    return f"reversal-{reversal_id}"


def statement_workflow_id(request_id: str) -> str:
    """The workflow that serves one page of a statement to the platform."""
    return f"statement-{request_id}"


def poller_id(workflow_name: str) -> str:
    """The one long-lived run of a polling service workflow (bank reports, notifications)."""
    return f"payouts-{workflow_name}"


def scheduled_id(workflow_name: str) -> str:
    """The id a Temporal Schedule gives the runs it starts (the server appends the time)."""
    return f"{workflow_name}-scheduled"


# ---------------------------------------------------------------- idempotency keys


class Step:
    """The steps of a cash-out that write somewhere; each has one key per workflow."""

    RESERVE: Final = "reserve"
    POST: Final = "post"
    VOID: Final = "void"
    REVERSE: Final = "reverse"
    DISBURSE: Final = "disburse"


def hold_id(workflow_id: str) -> str:
    """A cash-out's hold in the ledger is named after its workflow."""
    return workflow_id


def step_key(workflow_id: str, step: str) -> str:
    """The idempotency key of one step: from the workflow, never from the attempt, so every
    retry, worker and replay sends the same one."""
    return f"{workflow_id}:{step}"


def notification_id(workflow_id: str, stage: str) -> str:
    """The event id the platform de-duplicates a stage notification by."""
    return step_key(workflow_id, f"notify:{stage}")


def gift_card_reference(request_id: str) -> str:
    """What the gift card provider files a cash-out's cards under."""
    return cashout_id(request_id)
