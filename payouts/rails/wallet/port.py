"""The wallet provider: pays a wallet id, idempotent by key, and answers by webhook.

`WalletClient` is the adapter: it speaks the provider's HTTP API (here, the sandbox's). A
real provider needs its own request and response mapping, credentials and webhook
signature scheme behind the same methods; the ingress, de-duplication and the
lookup-on-timeout logic stay.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol


@dataclass(frozen=True)
class WalletPayoutRecord:
    id: str
    idempotency_key: str
    reference: str
    amount: int  # micros
    currency: str
    status: str  # pending | completed | failed
    failure_reason: str | None


class WalletProvider(Protocol):
    async def send(
        self,
        *,
        key: str,
        reference: str,
        wallet_id: str,
        amount: int,
        currency: str,
        instant: bool = False,
    ) -> WalletPayoutRecord:
        """Pay; `RailTimeout` when the answer is lost (ask `find` before sending again);
        `InstantRefused` when an instant payout is not possible for this wallet."""
        ...

    async def find(self, key: str) -> WalletPayoutRecord | None:
        """What the provider holds under an idempotency key."""
        ...

    async def get(self, payout_id: str) -> WalletPayoutRecord: ...

    async def statement(self, day: date) -> list[WalletPayoutRecord]: ...
