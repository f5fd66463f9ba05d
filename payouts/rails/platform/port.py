"""The platform's webhook endpoint: where it hears of every cash-out's ending.

`WebhookEndpoint` is the adapter: an HTTPS POST per event, signed with the shared secret
(`Payouts-Signature`), carrying its event id (`Payouts-Event-Id`) so the platform can
de-duplicate a re-delivery. Another transport (a queue, an event bus) plugs in behind the
same method; the outbox and its retries stay.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import aiohttp

from payouts.security.signing import sign


@dataclass(frozen=True)
class Event:
    event_id: str
    body: bytes


class PlatformEndpoint(Protocol):
    async def send(self, events: Sequence[Event]) -> list[str | None]:
        """Deliver each event; for each, None when the platform took it, else why not."""
        ...


class WebhookEndpoint:
    def __init__(self, url: str, secret: str, *, timeout: float = 5.0) -> None:
        self.url = url
        self.secret = secret
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def send(self, events: Sequence[Event]) -> list[str | None]:
        results: list[str | None] = []
        async with aiohttp.ClientSession(timeout=self.timeout) as http:
            for e in events:
                headers = {
                    "Content-Type": "application/json",
                    "Payouts-Event-Id": e.event_id,
                    "Payouts-Signature": sign(self.secret, e.body, event_id=e.event_id),
                }
                try:
                    async with http.post(self.url, data=e.body, headers=headers) as resp:
                        ok = 200 <= resp.status < 300
                        results.append(None if ok else f"HTTP {resp.status}")
                except (aiohttp.ClientError, TimeoutError) as exc:
                    results.append(f"{type(exc).__name__}: {exc}"[:500])
        return results
