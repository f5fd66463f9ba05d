"""Our side of the wallet provider's HTTP API.

`send` posts a payout with the idempotency key derived from the workflow. A 5xx or a 429
(with its Retry-After) is a retryable `RailTransientError`; a 422 means the key was used
for something else (`RailConflict`, never retried); a timeout is ambiguous (`RailTimeout`)
and the caller resolves it with `find` (by idempotency key) before anything is sent again.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import aiohttp

from payouts.domain.money import MICROS_PER_UNIT, format_micros
from payouts.errors import (
    InstantRefused,
    RailConflict,
    RailRetryAfter,
    RailTimeout,
    RailTransientError,
)
from payouts.rails.wallet.port import WalletPayoutRecord


def _record(data: dict[str, Any]) -> WalletPayoutRecord:
    return WalletPayoutRecord(
        id=str(data["id"]),
        idempotency_key=str(data["idempotency_key"]),
        reference=str(data["reference"]),
        amount=int(Decimal(str(data["amount"])) * MICROS_PER_UNIT),
        currency=str(data["currency"]),
        status=str(data["status"]),
        failure_reason=data.get("failure_reason"),
    )


class WalletClient:
    def __init__(self, base_url: str, api_key: str, *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {api_key}"}
        self.timeout = aiohttp.ClientTimeout(total=timeout)

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
        body: dict[str, object] = {
            "reference": reference,
            "wallet_id": wallet_id,
            "amount": format_micros(amount, currency),
            "currency": currency,
        }
        if instant:  # (a standard payout's body is as it always was: same idempotency)
            body["instant"] = True
        try:
            async with (
                aiohttp.ClientSession(timeout=self.timeout, headers=self.headers) as http,
                http.post(
                    f"{self.base_url}/v1/payouts", json=body, headers={"Idempotency-Key": key}
                ) as resp,
            ):
                data = await resp.json(content_type=None)
                if resp.status in (200, 201):
                    return _record(data)
                if resp.status == 422 and data.get("error") == "instant_unavailable":
                    raise InstantRefused(f"wallet provider: {data.get('message', 'no instant')}")
                if resp.status == 422:
                    raise RailConflict(f"wallet provider: {data.get('message', 'conflict')} (422)")
                if resp.status == 429:
                    after = float(resp.headers.get("Retry-After", "1"))
                    raise RailRetryAfter("wallet provider answered 429 Too Many Requests", after)
                if resp.status >= 500:
                    raise RailTransientError(f"wallet provider answered {resp.status}")
                raise RailConflict(f"wallet provider refused the payout: {resp.status} {data}")
        except TimeoutError:
            raise RailTimeout("no answer from the wallet provider in time") from None
        except aiohttp.ClientError as exc:
            raise RailTransientError(f"wallet provider unreachable: {exc}") from None

    async def find(self, key: str) -> WalletPayoutRecord | None:
        data = await self._get("/v1/payouts", {"idempotency_key": key})
        found = data.get("data", [])
        return _record(found[0]) if found else None

    async def get(self, payout_id: str) -> WalletPayoutRecord:
        return _record(await self._get(f"/v1/payouts/{payout_id}", {}))

    async def statement(self, day: date) -> list[WalletPayoutRecord]:
        data = await self._get("/v1/payouts", {"day": day.isoformat()})
        return [_record(r) for r in data.get("data", [])]

    async def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        try:
            async with (
                aiohttp.ClientSession(timeout=self.timeout, headers=self.headers) as http,
                http.get(f"{self.base_url}{path}", params=params) as resp,
            ):
                if resp.status >= 500 or resp.status == 429:
                    raise RailTransientError(f"wallet provider answered {resp.status}")
                data: dict[str, Any] = await resp.json(content_type=None)
                if resp.status != 200:
                    raise RailConflict(f"wallet provider: {resp.status} {data}")
                return data
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise RailTransientError(f"wallet provider unreachable: {exc}") from None
