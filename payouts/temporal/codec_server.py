"""A Temporal codec server: the Temporal UI (and `temporal --codec-endpoint`) send it
encrypted payloads and get them back decrypted, using the keys this process holds.

Run it where only operators can reach it (it binds to localhost): whoever points their UI
at it sees names and account numbers; everyone else sees ciphertext. `payouts up` starts it
and sets it as the embedded UI's codec endpoint.

Protocol (Temporal's remote codec): `POST /decode` and `POST /encode` with the JSON form of
`temporal.api.common.v1.Payloads`; CORS allows the configured UI origins.
"""

from __future__ import annotations

from aiohttp import web
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.converter import PayloadCodec

from payouts.web import serve


class CodecServer:
    def __init__(self, codec: PayloadCodec, *, origins: tuple[str, ...]) -> None:
        self.codec = codec
        self.origins = origins
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.decoded = 0

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._cors])
        app.router.add_post("/decode", self._decode)
        app.router.add_post("/encode", self._encode)
        app.router.add_route("OPTIONS", "/{tail:.*}", self._preflight)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner, self.url = await serve(self.app(), host, port)
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _cors(self, request: web.Request, handler: object) -> web.StreamResponse:
        response: web.StreamResponse = await handler(request)  # type: ignore[operator]
        origin = request.headers.get("Origin")
        if origin and origin in self.origins:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Credentials"] = "true"
            response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = (
                "Content-Type, X-Namespace, Authorization"
            )
        return response

    async def _preflight(self, _: web.Request) -> web.Response:
        return web.Response(status=200)

    async def _decode(self, request: web.Request) -> web.Response:
        payloads = await self._read(request)
        decoded = await self.codec.decode(payloads.payloads)
        self.decoded += len(decoded)
        return self._write(decoded)

    async def _encode(self, request: web.Request) -> web.Response:
        payloads = await self._read(request)
        return self._write(await self.codec.encode(payloads.payloads))

    async def _read(self, request: web.Request) -> Payloads:
        try:
            return json_format.Parse(await request.text(), Payloads())
        except json_format.ParseError as exc:
            raise web.HTTPBadRequest(text=f"not a Payloads message: {exc}") from None

    def _write(self, payloads: list[Payload]) -> web.Response:
        body = json_format.MessageToJson(Payloads(payloads=payloads))
        return web.Response(text=body, content_type="application/json")
