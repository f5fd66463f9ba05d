"""The double-entry ledger (see `payouts.ledger.ledger`)."""

from payouts.ledger.accounts import PLATFORM, Kind
from payouts.ledger.ledger import Ledger
from payouts.ledger.results import (
    IN_BATCH_CONFLICT,
    Balance,
    CreditSummary,
    EarningRow,
    HoldReceipt,
    HoldStatus,
    MaturationResult,
    Totals,
)

__all__ = [
    "IN_BATCH_CONFLICT",
    "PLATFORM",
    "Balance",
    "CreditSummary",
    "EarningRow",
    "HoldReceipt",
    "HoldStatus",
    "Kind",
    "Ledger",
    "MaturationResult",
    "Totals",
]
