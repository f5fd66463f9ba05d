"""A Temporal codec server: the Temporal UI (and `temporal --codec-endpoint`) send it
encrypted payloads and get them back decrypted, using the keys this process holds.

Whoever can call it reads names and account numbers, so it serves operators only:

- **a credential on every call**: the operators' token (`PAYOUTS_OPERATOR_TOKEN`), as
  `Authorization: Bearer <token>` (the `temporal` CLI's `--codec-auth`, curl) or in the path,
  `/t/<token>/decode`, for the Temporal UI, which cannot set a header without its own login
  (the endpoint `payouts up` gives the embedded UI). A wrong or missing token is 401;
  tokens are compared in constant time;
- **Host and Origin checked**: the Host must be the address it listens on (a DNS-rebinding
  page reaches it under another name: 421), and a browser request must come from a
  configured UI origin (403), so a web page cannot make an operator's browser call it;
- **small bodies** (4 MiB, Temporal's own payload ceiling with room) and **decode only**:
  `/encode` exists only when asked for (`allow_encode`), since it lets a caller forge
  sealed payloads.

Protocol (Temporal's remote codec): `POST /decode` (and `/encode`) with the JSON form of
`temporal.api.common.v1.Payloads`.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.converter import PayloadCodec

from payouts.errors import CodecError, SecretError
from payouts.web import serve

MAX_BODY = 4 * 1024 * 1024
LOCAL_NAMES = ("127.0.0.1", "localhost", "[::1]")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class CodecServer:
    def __init__(
        self,
        codec: PayloadCodec,
        *,
        origins: tuple[str, ...],
        token: str,
        allow_encode: bool = False,
    ) -> None:
        if len(token) < 16:
            raise SecretError(
                "the codec server needs the operators' token (PAYOUTS_OPERATOR_TOKEN, at "
                "least 16 characters): make one with `payouts keygen operator`"
            )
        self.codec = codec
        self.origins = origins
        self.token = token
        self.allow_encode = allow_encode
        self._runner: web.AppRunner | None = None
        self.url = ""  # where it listens (no credential)
        self.hosts: set[str] = set()
        self.decoded = 0
        self.refused = 0

    @property
    def ui_endpoint(self) -> str:
        """The endpoint for a Temporal UI: the token in the path."""
        return f"{self.url}/t/{self.token}"

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard], client_max_size=MAX_BODY)
        for prefix in ("", "/t/{token}"):
            app.router.add_post(f"{prefix}/decode", self._decode)
            if self.allow_encode:
                app.router.add_post(f"{prefix}/encode", self._encode)
            app.router.add_route("OPTIONS", f"{prefix}/{{tail:.*}}", self._preflight)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner, self.url = await serve(self.app(), host, port)
        bound = self.url.rsplit(":", 1)[1]
        self.hosts = {f"{name}:{bound}" for name in LOCAL_NAMES}
        if host not in ("127.0.0.1", "localhost", "::1"):
            self.hosts.add(f"{host}:{bound}")
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # ------------------------------------------------------------------ the guard

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if request.host not in self.hosts:
            return self._refuse(421, "unknown host")
        if origin is not None and origin not in self.origins:
            return self._refuse(403, "origin not allowed")
        if request.method == "OPTIONS":  # a preflight carries no credential
            return self._cors(await handler(request), origin)
        if not self._authorized(request):
            return self._cors(self._refuse(401, "operator token required"), origin)
        return self._cors(await handler(request), origin)

    def _authorized(self, request: web.Request) -> bool:
        presented = request.match_info.get("token")
        if presented is None:
            scheme, _, value = request.headers.get("Authorization", "").partition(" ")
            presented = value.strip() if scheme.lower() == "bearer" else ""
        return hmac.compare_digest(presented.encode(), self.token.encode())

    def _refuse(self, status: int, why: str) -> web.Response:
        self.refused += 1
        return web.json_response({"error": why}, status=status)

    def _cors(self, response: web.StreamResponse, origin: str | None) -> web.StreamResponse:
        if origin is not None:  # checked above: one of ours
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Credentials"] = "true"
            response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = (
                "Content-Type, X-Namespace, Authorization"
            )
            response.headers["Vary"] = "Origin"
        return response

    # ------------------------------------------------------------------ the protocol

    async def _preflight(self, _: web.Request) -> web.Response:
        return web.Response(status=200)

    async def _decode(self, request: web.Request) -> web.Response:
        payloads = await self._read(request)
        try:
            decoded = await self.codec.decode(payloads.payloads)
        except CodecError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        self.decoded += len(decoded)
        return self._write(decoded)

    async def _encode(self, request: web.Request) -> web.Response:
        payloads = await self._read(request)
        return self._write(await self.codec.encode(payloads.payloads))

    async def _read(self, request: web.Request) -> Payloads:
        try:
            return json_format.Parse(await request.text(), Payloads())
        except (json_format.ParseError, UnicodeDecodeError) as exc:
            raise web.HTTPBadRequest(text=f"not a Payloads message: {exc}") from None

    def _write(self, payloads: list[Payload]) -> web.Response:
        body = json_format.MessageToJson(Payloads(payloads=payloads))
        return web.Response(text=body, content_type="application/json")
