"""Dormant balances: a reversal touches a balance as an earning or a cash-out does."""

from __future__ import annotations

from datetime import timedelta

from cryptography.fernet import Fernet

from payouts.config.policy_file import load_policy
from payouts.domain.cashout import GiftCardDelivery
from payouts.domain.profiles import ProfileAction, ProfileChange
from payouts.ledger import EarningRow, Ledger
from payouts.ledger.reversals import ReversalRow
from payouts.payees.dormant import dormant_page
from payouts.payees.profiles import Profiles
from payouts.security.vault import Vault
from payouts.store.tables import to_epoch_us
from tests.support.databases import FakeClock


def test_a_recent_reversal_keeps_an_old_balance_from_being_dormant(
    ledger: Ledger, clock: FakeClock
) -> None:
    """Earned 200 days ago: dormant at a 180-day cutoff, until a reversal of part of it
    today touches the balance."""
    profiles = Profiles(
        ledger.db, vault=Vault([Fernet.generate_key().decode()]), fingerprint_key=b"k",
        policy=load_policy(), clock=clock,
    )  # fmt: skip
    profiles.apply(
        ProfileChange(
            change_id="c1", user_id="old", action=ProfileAction.SAVE, requested_at=clock.now,
            destination=GiftCardDelivery(email="old@example.org"), make_default=True,
        )
    )  # fmt: skip
    long_ago = to_epoch_us(clock.now - timedelta(days=200))
    ledger.credit_earnings([EarningRow("e-old", "old", "USD", 40_000_000, long_ago)])
    cutoff = clock.now - timedelta(days=180)
    [before] = dormant_page(ledger.db, "", 10, cutoff)[0]
    assert before.dormant and before.available == 40_000_000
    ledger.reverse_earnings([ReversalRow("rv-old", "e-old", 1_000_000, "price adjusted")])
    [after] = dormant_page(ledger.db, "", 10, cutoff)[0]
    assert not after.dormant and after.available == 39_000_000
