"""Our webhook ingress: rails call us here; verified events become workflow signals.

`POST /webhooks/wallet`: the signature (`Wallet-Signature`, HMAC over timestamp, event id
and body) is checked first, and a bad or malformed one answers 401; an event id seen
before is acknowledged without effect; otherwise the event is signalled to its cash-out
workflow (the payout's `reference`) and then recorded.
If Temporal cannot be reached the answer is 503, so the provider delivers it again.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

from aiohttp import web
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from payouts.domain.messages import WalletEvent
from payouts.domain.trust import rail_event_message
from payouts.security.keys import SigningKey
from payouts.security.signing import verify
from payouts.store.database import Database
from payouts.store.tables import WebhookEvent, to_epoch_us
from payouts.temporal.contract import Signal

_EVENT = WebhookEvent.__table__  # type: ignore[attr-defined]


class WebhookReceiver:
    def __init__(
        self,
        *,
        client: Client,
        db: Database,
        wallet_secret: str,
        service_key: SigningKey,
        tolerance: int = 300,
    ) -> None:
        self.service_key = service_key
        self.client = client
        self.db = db
        self.wallet_secret = wallet_secret
        self.tolerance = tolerance
        self.received = 0
        self.duplicates = 0
        self.refused = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/webhooks/wallet", self.wallet)
        return app

    async def wallet(self, request: web.Request) -> web.Response:
        body = await request.read()
        claimed = request.headers.get("Wallet-Event-Id", "")
        why = verify(
            self.wallet_secret,
            body,
            request.headers.get("Wallet-Signature"),
            event_id=claimed,
            tolerance=self.tolerance,
        )
        if why is not None:
            self.refused += 1
            return web.json_response({"error": why}, status=401)
        try:
            event = json.loads(body)
            data = event["data"]
            signal = WalletEvent(
                event_id=str(event["id"]),
                type=str(event["type"]),
                payout_id=str(data["id"]),
                status=str(data["status"]),
                failure_reason=data.get("failure_reason"),
            )
            reference = str(data["reference"])
            if signal.event_id != claimed:
                raise ValueError("the event id header is not the event's")
        except (ValueError, KeyError, TypeError):
            self.refused += 1
            return web.json_response({"error": "malformed event"}, status=400)
        if await asyncio.to_thread(self._seen, signal.event_id):
            self.duplicates += 1
            return web.json_response({"received": True, "duplicate": True})
        # vouch for it to the cash-out: our ingress's key over the event and its workflow
        message = rail_event_message(reference, "wallet", signal.model_dump(mode="json"))
        signal = signal.model_copy(update={"signature": self.service_key.sign(message)})
        try:
            await self.client.get_workflow_handle(reference).signal(Signal.WALLET_EVENT, signal)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:  # Temporal unreachable: ask for a retry
                return web.json_response({"error": "try again"}, status=503)
        await asyncio.to_thread(self._record, signal, reference)
        self.received += 1
        return web.json_response({"received": True})

    def _seen(self, event_id: str) -> bool:
        with self.db.read_connection() as conn:
            return (
                conn.execute(select(_EVENT.c.event_id).where(_EVENT.c.event_id == event_id)).first()
                is not None
            )

    def _record(self, event: WalletEvent, reference: str) -> None:
        try:
            with self.db.write_connection() as conn:
                conn.execute(
                    insert(_EVENT).values(
                        event_id=event.event_id,
                        source="wallet",
                        reference=reference[:200],
                        kind=event.type[:64],
                        received_at=to_epoch_us(datetime.now(UTC)),
                    )
                )
        except IntegrityError:  # a concurrent delivery of the same event got there first
            pass
