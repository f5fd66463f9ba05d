"""One worker process: `python worker.py` and `payouts worker` run `main`.

It connects to the Temporal server of Temporal's standard environment configuration
(default localhost:7233) and builds its `Stack` from the PAYOUTS_* settings.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from payouts.app.stack import Stack
from payouts.config.settings import Settings
from payouts.errors import PayoutError
from payouts.temporal import telemetry
from payouts.temporal.codec import converter_for
from payouts.temporal.connection import connect


async def run_worker(settings: Settings) -> None:
    stack = Stack(settings)
    settings = stack.settings  # with the keys this process holds
    client = await connect(
        converter_for(settings),
        runtime=telemetry.runtime(settings.metrics_port, settings.metrics_host),
    )
    worker = stack.worker(client)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    metrics = (
        f"; metrics at http://{settings.metrics_host}:{settings.metrics_port}/metrics"
        if settings.metrics_port
        else ""
    )
    print(
        f"worker polling task queue {settings.task_queue!r} at "
        f"{client.service_client.config.target_host}{metrics}",
        flush=True,
    )
    async with worker:
        await stop.wait()
    stack.close()


def main() -> None:
    code = 0
    try:
        asyncio.run(run_worker(Settings()))
    except PayoutError as exc:  # a refusal to start (keys, schema): one line, no traceback
        print(f"error: {exc.message}", file=sys.stderr, flush=True)
        code = 1
    sys.stdout.flush()
    os._exit(code)  # see the exit-crash note in docs/design.md


if __name__ == "__main__":
    main()
