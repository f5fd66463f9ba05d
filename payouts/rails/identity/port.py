"""The identity provider (KYC): verified (with a tier and the legal name), rejected, or
pending. A real provider answers by webhook or by poll; `SandboxIdentity` is the one here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from payouts.domain.messages import IdentityResult


class IdentityProvider(Protocol):
    def check(self, user_id: str, as_of: datetime) -> IdentityResult:
        """The check's state at `as_of` (the workflow's clock)."""
        ...
