"""`python -m bench.floor_worker QUEUE`: a worker process for the floor workflow, so the
floor is measured with as many worker processes as the pipeline (TEMPORAL_ADDRESS), with
the same payload encryption as the benchmark's client."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from temporalio.client import Client
from temporalio.worker import Worker

from bench.floor import FloorWorkflow, noop
from payouts.config.settings import Settings
from payouts.temporal.codec import converter_for


async def serve(queue: str) -> None:
    client = await Client.connect(
        os.environ["TEMPORAL_ADDRESS"], data_converter=converter_for(Settings())
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Worker(client, task_queue=queue, workflows=[FloorWorkflow], activities=[noop]):
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1]))
    sys.stdout.flush()
    os._exit(0)  # see the exit-crash note in docs/design.md
