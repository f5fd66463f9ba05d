"""Serving a small aiohttp application on a local port (sandboxes, webhook receivers)."""

from __future__ import annotations

from aiohttp import web

from payouts.devstack.devserver import free_port


async def serve(
    app: web.Application, host: str = "127.0.0.1", port: int = 0
) -> tuple[web.AppRunner, str]:
    """Start `app`; port 0 picks a free one. Returns the runner (to clean up) and the URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = port or free_port()
    await web.TCPSite(runner, host, port).start()
    return runner, f"http://{host}:{port}"
