"""Serving small aiohttp applications on local ports (sandboxes, webhook ingress, codec
server), and finding free ports for them."""

from __future__ import annotations

import contextlib
import socket

from aiohttp import web


async def serve(
    app: web.Application, host: str = "127.0.0.1", port: int = 0
) -> tuple[web.AppRunner, str]:
    """Start `app`; port 0 picks a free one. Returns the runner (to clean up) and the URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = port or free_port()
    await web.TCPSite(runner, host, port).start()
    return runner, f"http://{host}:{port}"


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
