"""`payouts up`: the embedded stack in one process group.

The Temporal dev server (with its UI) runs as a child process with its state in the data
folder, unless a server already listens on the port, which is then reused. A worker runs in
this process. Ctrl-C stops the worker first (in-flight tasks finish or are handed back),
then the server.
"""

from __future__ import annotations

import asyncio
import os
import signal

from rich.console import Console

from payouts import demo as demo_module
from payouts.client import PayoutsClient, ensure_search_attributes, wait_until_ready
from payouts.devserver import DevServer, port_open
from payouts.policy import Policy
from payouts.settings import Settings


def _address(port: int) -> tuple[str, int]:
    """TEMPORAL_ADDRESS when set (a remote cluster), else the local port."""
    configured = os.environ.get("TEMPORAL_ADDRESS")
    if configured:
        host, _, p = configured.rpartition(":")
        return host or "127.0.0.1", int(p)
    return "127.0.0.1", port


async def up(
    settings: Settings,
    policy: Policy,
    *,
    demo: bool,
    port: int,
    ui_port: int,
    console: Console,
) -> None:
    import worker as worker_module  # the composition root lives at the top level

    host, tport = _address(port)
    server: DevServer | None = None
    if port_open(host, tport):
        console.print(f"using the Temporal server already listening at {host}:{tport}")
        ui = None
    else:
        server = DevServer(
            port=tport,
            ui_port=ui_port,
            db_file=settings.temporal_db_path,
            log_file=settings.temporal_db_path.with_name("temporal.log"),
        )
        console.print(
            f"starting the Temporal dev server at {server.address} "
            f"(state in {settings.temporal_db_path}) ..."
        )
        server.start()
        ui = f"http://localhost:{ui_port}"
    stack = worker_module.Stack(settings, policy)
    try:
        client = await wait_until_ready(target_host=f"{host}:{tport}")
        added = await ensure_search_attributes(client)
        if added:
            console.print(f"registered search attributes: {', '.join(added)}")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with stack.worker(client):
            console.print(
                f"worker polling task queue {settings.task_queue!r}; ledger "
                f"{_safe_url(settings.ledger_url)}"
            )
            if ui:
                console.print(f"[bold]Temporal UI: {ui}[/]")
            if demo:
                payouts = PayoutsClient(client, policy=policy, task_queue=settings.task_queue)
                started = await demo_module.run(payouts, stack.ledger, stack.identity)
                console.print("\n[bold]demo cash-outs[/]")
                for line in demo_module.describe(started):
                    console.print("  " + line, markup=False)
                console.print(
                    "\nin another terminal (with .venv/bin on PATH):\n"
                    "  payouts review list\n"
                    f"  payouts review approve {started[3][1].request_id} --reviewer alice\n"
                    f"  payouts status {started[0][1].request_id}\n"
                    "  payouts balance ana"
                )
            console.print("\nrunning; Ctrl-C stops the worker and the server")
            await stop.wait()
            console.print("stopping the worker ...")
    finally:
        stack.close()
        if server is not None:
            console.print("stopping the Temporal dev server ...")
            server.stop()


def _safe_url(url: str) -> str:
    """The ledger URL without a password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.split("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}@{host}"
    return url
