"""A sandbox of the platform's webhook endpoint, as the platform would build it.

It checks `Payouts-Signature` (which covers the event id too), de-duplicates by
`Payouts-Event-Id` (a re-delivery is acknowledged and ignored) and keeps what it
received. `fail_next` makes it answer 503 to the next N deliveries, to watch the
pipeline retry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from payouts.security.signing import verify
from payouts.web import serve


@dataclass
class PlatformSandbox:
    secret: str
    fail_next: int = 0
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    deliveries: int = 0
    duplicates: int = 0
    refused: int = 0
    url: str = ""
    _runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/payouts/events", self._receive)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner, base = await serve(self.app(), host, port)
        self.url = f"{base}/payouts/events"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _receive(self, request: web.Request) -> web.Response:
        self.deliveries += 1
        body = await request.read()
        event_id = request.headers.get("Payouts-Event-Id", "")
        why = verify(self.secret, body, request.headers.get("Payouts-Signature"), event_id=event_id)
        if why is not None:
            self.refused += 1
            return web.json_response({"error": why}, status=401)
        if self.fail_next > 0:
            self.fail_next -= 1
            return web.json_response({"error": "platform busy"}, status=503)
        if event_id in self.events:
            self.duplicates += 1
            return web.json_response({"duplicate": True})
        self.events[event_id] = json.loads(body)
        return web.json_response({"received": True})

    def stages_for(self, request_id: str) -> list[str]:
        return [
            e["data"]["stage"]
            for e in self.events.values()
            if e["data"]["request_id"] == request_id
        ]
