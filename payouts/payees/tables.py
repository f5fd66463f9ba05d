"""The tables the payees' modules read and write, as SQLAlchemy Core tables (`USED`: the
destinations cash-outs were paid to)."""

from __future__ import annotations

from payouts.store.tables import (
    Account,
    AutoCashout,
    Earning,
    EarningReversal,
    Hold,
    PayoutDestination,
    PayoutProfile,
)

PROFILES = PayoutProfile.__table__  # type: ignore[attr-defined]
AUTO = AutoCashout.__table__  # type: ignore[attr-defined]
USED = PayoutDestination.__table__  # type: ignore[attr-defined]
ACCOUNTS = Account.__table__  # type: ignore[attr-defined]
EARNINGS = Earning.__table__  # type: ignore[attr-defined]
HOLDS = Hold.__table__  # type: ignore[attr-defined]
REVERSALS = EarningReversal.__table__  # type: ignore[attr-defined]
