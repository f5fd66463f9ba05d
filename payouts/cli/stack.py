"""`payouts worker | up | codec-server | keygen`: running the stack and its keys."""

from __future__ import annotations

import asyncio
import signal
from typing import Annotated

import typer

from payouts.cli.common import app, env, out
from payouts.temporal.codec import codec_for


@app.command()
def worker() -> None:
    """Run a worker (same as `python worker.py`); start more to share the load."""
    from payouts.app import worker as worker_module

    asyncio.run(worker_module.run_worker(env.settings))


@app.command()
def up(
    demo: Annotated[bool, typer.Option(help="Seed payees and start demo cash-outs.")] = False,
    port: Annotated[int, typer.Option(help="Temporal frontend port.")] = 7233,
    ui_port: Annotated[int, typer.Option(help="Temporal web UI port.")] = 8233,
) -> None:
    """Run the embedded stack: Temporal dev server (reused if one listens), UI and a worker."""
    from payouts.devstack import stack

    asyncio.run(
        stack.up(env.settings, env.policy, demo=demo, port=port, ui_port=ui_port, console=out)
    )


@app.command("codec-server")
def codec_server(
    port: Annotated[int, typer.Option(help="Port to listen on (localhost only).")] = 8714,
    ui_origin: Annotated[
        list[str] | None,
        typer.Option("--ui-origin", help="A Temporal UI origin allowed to call it (repeat)."),
    ] = None,
    allow_encode: Annotated[
        bool, typer.Option(help="Serve /encode too (it lets callers seal payloads).")
    ] = False,
) -> None:
    """Run the codec server alone, for an operator's Temporal UI (Settings > Codec Server:
    the endpoint it prints) or `temporal --codec-endpoint URL --codec-auth "Bearer TOKEN"`.
    It decrypts with PAYOUTS_PAYLOAD_KEYS for callers holding PAYOUTS_OPERATOR_TOKEN."""
    from payouts.temporal.codec_server import CodecServer

    origins = tuple(ui_origin or ("http://localhost:8233", "http://127.0.0.1:8233"))

    env.deployment.require("payload_keys", "operator_token")

    async def serve() -> None:
        server = CodecServer(
            codec_for(env.settings),
            origins=origins,
            token=env.settings.operator_token,
            allow_encode=allow_encode,
        )
        await server.start(port=port)
        out.print(
            f"codec server for {', '.join(origins)}: the UI's endpoint is "
            f"{server.url}/t/$PAYOUTS_OPERATOR_TOKEN; Ctrl-C stops it"
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await server.stop()

    asyncio.run(serve())
