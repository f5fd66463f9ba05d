"""A sandbox digital-wallet provider: a local HTTP service that behaves like the big ones.

API (JSON, `Authorization: Bearer <key>`):

- `POST /v1/payouts` with an `Idempotency-Key` header and `{reference, wallet_id, amount,
  currency}`: 201 with the payout (status `pending`). The same key and body returns the
  first response again; the same key with another body is `422 idempotency_key_reused`.
  `"instant": true` asks for an instant payout: wallets `noinstant...` answer `422
  instant_unavailable` (nothing applied).
- `GET /v1/payouts/{id}`, `GET /v1/payouts?idempotency_key=K`, `GET /v1/payouts?day=D`.

Completion is asynchronous: when a payout completes (or fails: wallet ids starting with
`blocked` are suspended) the service POSTs signed webhook events (`payout.processing`,
then `payout.completed` / `payout.failed`) to the configured URL, header
`Wallet-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. Deliveries are retried
with backoff until acknowledged with a 2xx.

Faults, deterministic under a seed per (key, attempt): 503 (nothing applied), 429 with
`Retry-After` (nothing applied), a timeout (the payout IS applied, the answer comes too
late), duplicate webhook deliveries and out-of-order ones (the stale `processing` event
arriving after the final one).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import aiohttp
from aiohttp import web

from payouts.rails.sandbox_db import SandboxDB
from payouts.security.signing import sign
from payouts.web import serve

SCHEMA = """
CREATE TABLE IF NOT EXISTS wallet_payouts (
    id TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    body_hash TEXT NOT NULL,
    reference TEXT NOT NULL,
    wallet_id TEXT NOT NULL,
    amount TEXT NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    failure_reason TEXT,
    created_at REAL NOT NULL,
    completes_at REAL NOT NULL,
    day TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_wallet_payouts_day ON wallet_payouts (day);
CREATE TABLE IF NOT EXISTS wallet_calls (key TEXT PRIMARY KEY, calls INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS wallet_events (
    id TEXT PRIMARY KEY,
    payout_id TEXT NOT NULL,
    type TEXT NOT NULL,
    body TEXT NOT NULL,
    due_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    delivered INTEGER NOT NULL DEFAULT 0,
    copies INTEGER NOT NULL DEFAULT 1
);
"""


@dataclass(frozen=True)
class WalletFaults:
    seed: int = 0
    error_rate: float = 0.0  # 503, nothing applied
    throttle_rate: float = 0.0  # 429 with Retry-After, nothing applied
    timeout_rate: float = 0.0  # applied, answer after the client gave up
    timeout_seconds: float = 12.0
    duplicate_rate: float = 0.0  # a webhook event delivered twice
    reorder_rate: float = 0.0  # the stale "processing" event arrives after the final one
    complete_seconds: float = 0.5  # how long a payout stays pending


class WalletSandbox:
    """The service: an aiohttp application plus a webhook dispatcher task."""

    def __init__(
        self,
        db: SandboxDB,
        *,
        api_key: str,
        webhook_secret: str,
        webhook_url: str | None = None,
        faults: WalletFaults | None = None,
    ) -> None:
        self.db = db
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self.webhook_url = webhook_url
        self.faults = faults or WalletFaults()
        db.read().executescript(SCHEMA)
        self._runner: web.AppRunner | None = None
        self.injected: Counter[str] = Counter()  # faults served, by kind
        self._dispatcher: asyncio.Task[None] | None = None
        self.url = ""

    # ------------------------------------------------------------------ lifecycle

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/payouts", self._create)
        app.router.add_get("/v1/payouts", self._list)
        app.router.add_get("/v1/payouts/{id}", self._get)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner, self.url = await serve(self.app(), host, port)
        self._dispatcher = asyncio.create_task(self._dispatch_forever())
        return self.url

    async def stop(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            await asyncio.gather(self._dispatcher, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()

    # ------------------------------------------------------------------ API

    def _authorized(self, request: web.Request) -> bool:
        return hmac.compare_digest(
            request.headers.get("Authorization", ""), f"Bearer {self.api_key}"
        )

    async def _create(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _error(401, "unauthorized", "missing or wrong API key")
        key = request.headers.get("Idempotency-Key", "")
        if not key or len(key) > 255:
            return _error(400, "idempotency_key_required", "send an Idempotency-Key header")
        raw = await request.read()
        try:
            body = json.loads(raw)
            amount = Decimal(str(body["amount"]))
            if amount <= 0:
                raise ValueError
            fields = (str(body["reference"]), str(body["wallet_id"]), str(body["currency"]))
        except (ValueError, KeyError, TypeError, InvalidOperation, json.JSONDecodeError):
            return _error(400, "invalid_request", "reference, wallet_id, amount, currency")
        if body.get("instant") is True and fields[1].startswith("noinstant"):
            return _error(422, "instant_unavailable", "this wallet takes no instant payouts")
        calls = await asyncio.to_thread(self._count_call, key)
        f = self.faults
        if self._chance(key, calls, "error") < f.error_rate:
            self.injected["503"] += 1
            return _error(503, "unavailable", "try again")
        if self._chance(key, calls, "throttle") < f.throttle_rate:
            self.injected["429"] += 1
            return web.json_response(
                {"error": "rate_limited"}, status=429, headers={"Retry-After": "1"}
            )
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        status, payout = await asyncio.to_thread(self._apply, key, digest, fields, str(amount))
        if status == 422:
            why = "this Idempotency-Key was used with a different request"
            return _error(422, "idempotency_key_reused", why)
        if self._chance(key, calls, "timeout") < f.timeout_rate:
            self.injected["timeout"] += 1
            await asyncio.sleep(f.timeout_seconds)  # applied; the caller has given up by now
        return web.json_response(payout, status=status)

    async def _get(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _error(401, "unauthorized", "missing or wrong API key")
        found = await asyncio.to_thread(self._rows, "id = ?", request.match_info["id"])
        if not found:
            return _error(404, "not_found", "no such payout")
        return web.json_response(found[0])

    async def _list(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _error(401, "unauthorized", "missing or wrong API key")
        if "idempotency_key" in request.query:
            rows = await asyncio.to_thread(
                self._rows, "idempotency_key = ?", request.query["idempotency_key"]
            )
        elif "day" in request.query:
            rows = await asyncio.to_thread(self._rows, "day = ?", request.query["day"])
        else:
            return _error(400, "filter_required", "idempotency_key or day")
        return web.json_response({"data": rows})

    # ------------------------------------------------------------------ books

    def _count_call(self, key: str) -> int:
        with self.db.tx() as conn:
            conn.execute(
                "INSERT INTO wallet_calls (key, calls) VALUES (?, 1) "
                "ON CONFLICT(key) DO UPDATE SET calls = calls + 1",
                (key,),
            )
            row = conn.execute("SELECT calls FROM wallet_calls WHERE key = ?", (key,)).fetchone()
        return int(row[0])

    def _apply(
        self, key: str, digest: str, fields: tuple[str, str, str], amount: str
    ) -> tuple[int, dict[str, Any]]:
        reference, wallet_id, currency = fields
        now = time.time()
        with self.db.tx() as conn:
            row = conn.execute(
                "SELECT id, body_hash FROM wallet_payouts WHERE idempotency_key = ?", (key,)
            ).fetchone()
            if row is not None:
                if row[1] != digest:
                    return 422, {}
                payout_id = row[0]
                status = 200
            else:
                payout_id = "wpo_" + secrets.token_hex(8)
                complete = now + self.faults.complete_seconds
                conn.execute(
                    "INSERT INTO wallet_payouts (id, idempotency_key, body_hash, reference, "
                    "wallet_id, amount, currency, status, created_at, completes_at, day) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
                    (
                        payout_id,
                        key,
                        digest,
                        reference,
                        wallet_id,
                        amount,
                        currency,
                        now,
                        complete,
                        datetime.fromtimestamp(now, UTC).date().isoformat(),
                    ),
                )
                late = self._chance(payout_id, 0, "reorder") < self.faults.reorder_rate
                # a reordered "processing" event is held back until after the final one
                self._event(conn, payout_id, "payout.processing", complete + 0.3 if late else now)
                status = 201
        return status, self._rows("id = ?", payout_id)[0]

    def _rows(self, where: str, value: str) -> list[dict[str, Any]]:
        rows = (
            self.db.read()
            .execute(
                "SELECT id, idempotency_key, reference, wallet_id, amount, currency, status, "
                f"failure_reason, created_at FROM wallet_payouts WHERE {where} ORDER BY created_at",
                (value,),
            )
            .fetchall()
        )
        return [
            {
                "id": r[0],
                "idempotency_key": r[1],
                "reference": r[2],
                "wallet_id": r[3],
                "amount": r[4],
                "currency": r[5],
                "status": r[6],
                "failure_reason": r[7],
                "created": int(r[8]),
            }
            for r in rows
        ]

    def _event(self, conn: Any, payout_id: str, kind: str, due: float) -> None:
        event_id = "evt_" + secrets.token_hex(10)
        copies = 2 if self._chance(event_id, 0, "dup") < self.faults.duplicate_rate else 1
        conn.execute(
            "INSERT INTO wallet_events (id, payout_id, type, body, due_at, copies) "
            "VALUES (?, ?, ?, '', ?, ?)",
            (event_id, payout_id, kind, due, copies),
        )

    def _complete_due(self) -> None:
        """Finish pending payouts whose time has come, queueing their webhook events."""
        now = time.time()
        with self.db.tx() as conn:
            due = conn.execute(
                "SELECT id, wallet_id FROM wallet_payouts WHERE status = 'pending' AND "
                "completes_at <= ?",
                (now,),
            ).fetchall()
            for payout_id, wallet_id in due:
                failed = wallet_id.startswith("blocked")
                conn.execute(
                    "UPDATE wallet_payouts SET status = ?, failure_reason = ? WHERE id = ?",
                    (
                        "failed" if failed else "completed",
                        "wallet suspended" if failed else None,
                        payout_id,
                    ),
                )
                self._event(conn, payout_id, "payout.failed" if failed else "payout.completed", now)

    # ------------------------------------------------------------------ webhooks

    async def _dispatch_forever(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            while True:
                try:
                    await asyncio.to_thread(self._complete_due)
                    await self._deliver_due(http)
                except asyncio.CancelledError:
                    raise
                except Exception:  # the dispatcher must outlive any single failure
                    pass
                await asyncio.sleep(0.05)

    async def _deliver_due(self, http: aiohttp.ClientSession) -> None:
        if not self.webhook_url:
            return
        rows = await asyncio.to_thread(self._due_events)
        for event_id, payout_id, kind, attempts, copies in rows:
            payout = (await asyncio.to_thread(self._rows, "id = ?", payout_id))[0]
            body = json.dumps(
                {"id": event_id, "type": kind, "created": int(time.time()), "data": payout}
            ).encode()
            ok = False
            if copies > 1:
                self.injected["duplicate webhook"] += copies - 1
            for _ in range(copies):
                stamp = int(time.time())
                headers = {
                    "Content-Type": "application/json",
                    "Wallet-Event-Id": event_id,
                    "Wallet-Signature": sign(self.webhook_secret, body, stamp, event_id=event_id),
                }
                try:
                    async with http.post(self.webhook_url, data=body, headers=headers) as resp:
                        ok = ok or 200 <= resp.status < 300
                except (aiohttp.ClientError, TimeoutError):
                    pass
            await asyncio.to_thread(self._after_delivery, event_id, attempts, ok)

    def _due_events(self) -> list[tuple[str, str, str, int, int]]:
        rows = (
            self.db.read()
            .execute(
                "SELECT id, payout_id, type, attempts, copies FROM wallet_events "
                "WHERE delivered = 0 AND due_at <= ? ORDER BY due_at LIMIT 50",
                (time.time(),),
            )
            .fetchall()
        )
        return [(r[0], r[1], r[2], int(r[3]), int(r[4])) for r in rows]

    def _after_delivery(self, event_id: str, attempts: int, ok: bool) -> None:
        with self.db.tx() as conn:
            if ok:
                conn.execute(
                    "UPDATE wallet_events SET delivered = 1, attempts = ? WHERE id = ?",
                    (attempts + 1, event_id),
                )
            else:
                backoff = min(2.0**attempts, 60.0)
                conn.execute(
                    "UPDATE wallet_events SET attempts = ?, due_at = ? WHERE id = ?",
                    (attempts + 1, time.time() + backoff, event_id),
                )

    def _chance(self, key: str, call: int, salt: str) -> float:
        digest = hashlib.sha256(f"{self.faults.seed}:{key}:{call}:{salt}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    # ------------------------------------------------------------------ tests and reconciliation

    def rows_for(self, reference: str) -> list[dict[str, Any]]:
        """The payouts made for one reference (a cash-out's workflow id), as the API lists them."""
        return self._rows("reference = ?", reference)

    def payouts_for(self, reference: str) -> int:
        row = (
            self.db.read()
            .execute("SELECT COUNT(*) FROM wallet_payouts WHERE reference = ?", (reference,))
            .fetchone()
        )
        return int(row[0])

    def calls_for(self, key: str) -> int:
        row = (
            self.db.read()
            .execute("SELECT calls FROM wallet_calls WHERE key = ?", (key,))
            .fetchone()
        )
        return 0 if row is None else int(row[0])


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)
