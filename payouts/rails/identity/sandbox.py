"""Identity verification (KYC): the protocol and a sandbox provider.

The sandbox answers like a real provider: verified (with a tier and the legal name on
record), rejected (with a reason), or pending, resolving to verified after a delay. Users
get an outcome by registration (`register`) or, for the demo, by their id's prefix:
`kyc-pending-...` and `kyc-reject-...`. Everyone else is verified at tier 1.

A pending check resolves against the time the caller passes (the workflow's clock), so
that time-skipping tests see a delay of hours pass in milliseconds.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from payouts.domain.messages import IdentityResult, IdentityStatus
from payouts.rails.sandbox_db import SandboxDB
from payouts.store.tables import to_epoch_us


class SandboxIdentity:
    def __init__(self, db: SandboxDB, *, default_pending_seconds: int = 2 * 3600) -> None:
        self.db = db
        self.default_pending_seconds = default_pending_seconds

    def register(
        self,
        user_id: str,
        outcome: IdentityStatus | str = IdentityStatus.VERIFIED,
        *,
        legal_name: str | None = None,
        tier: int = 1,
        pending_seconds: int | None = None,
    ) -> None:
        outcome = IdentityStatus(outcome)
        delay = self.default_pending_seconds if pending_seconds is None else pending_seconds
        with self.db.tx() as conn:
            conn.execute(
                "INSERT INTO sandbox_identities (user_id, outcome, legal_name, tier, "
                "pending_seconds) VALUES (?, ?, ?, ?, ?) ON CONFLICT(user_id) DO UPDATE SET "
                "outcome = excluded.outcome, legal_name = excluded.legal_name, "
                "tier = excluded.tier, pending_seconds = excluded.pending_seconds, "
                "first_checked_at_us = NULL",
                (user_id, outcome.value, legal_name, tier, delay),
            )

    def known(self, user_id: str) -> bool:
        """Has an outcome been registered or checked for this user?"""
        with self.db.tx() as conn:
            found = conn.execute(
                "SELECT 1 FROM sandbox_identities WHERE user_id = ?", (user_id,)
            ).fetchone()
        return found is not None

    def check(self, user_id: str, as_of: datetime) -> IdentityResult:
        now_us = to_epoch_us(as_of)
        with self.db.tx() as conn:
            row = conn.execute(
                "SELECT outcome, legal_name, tier, pending_seconds, first_checked_at_us "
                "FROM sandbox_identities WHERE user_id = ?",
                (user_id,),
            ).fetchone()
            if row is None:
                outcome, name, tier, delay, first = self._by_prefix(user_id), None, 1, None, None
                conn.execute(
                    "INSERT INTO sandbox_identities (user_id, outcome, legal_name, tier, "
                    "pending_seconds, first_checked_at_us) VALUES (?, ?, ?, ?, ?, ?)",
                    (user_id, outcome, name, tier, self.default_pending_seconds, now_us),
                )
                delay, first = self.default_pending_seconds, now_us
            else:
                outcome, name, tier, delay, first = row
                if first is None:
                    first = now_us
                    conn.execute(
                        "UPDATE sandbox_identities SET first_checked_at_us = ? WHERE user_id = ?",
                        (now_us, user_id),
                    )
        reference = "idv_" + hashlib.sha256(user_id.encode()).hexdigest()[:12]
        if outcome == IdentityStatus.REJECTED:
            return IdentityResult(
                status=IdentityStatus.REJECTED,
                reference=reference,
                reason="document check failed (sandbox)",
            )
        if outcome == IdentityStatus.PENDING and now_us < first + delay * 1_000_000:
            return IdentityResult(
                status=IdentityStatus.PENDING,
                reference=reference,
                reason="documents under review (sandbox)",
            )
        return IdentityResult(
            status=IdentityStatus.VERIFIED, tier=tier, reference=reference, legal_name=name
        )

    @staticmethod
    def _by_prefix(user_id: str) -> str:
        if user_id.startswith("kyc-reject"):
            return IdentityStatus.REJECTED.value
        if user_id.startswith("kyc-pending"):
            return IdentityStatus.PENDING.value
        return IdentityStatus.VERIFIED.value
