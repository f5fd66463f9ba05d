"""Service workflows that poll: one long-lived run each, not a new workflow every few
seconds (which flooded the UI's list: 71 of 76 workflows after a minute of `make run`).

`poll` runs a cycle, shows what it did as the workflow's current details, sleeps, and
after `Polling.cycles` cycles (or when Temporal suggests it) continues as new, so the
history stays small. A run started without `Polling` does one cycle, as the schedules of
release 0.1 started them (and as tests and operators may still run one by hand).
"""

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import NoReturn, TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from payouts.domain.messages import Polling

R = TypeVar("R")


async def poll(
    polling: Polling, cycle: Callable[[], Awaitable[R]], describe: Callable[[R], str]
) -> NoReturn:
    every = timedelta(seconds=polling.every_seconds)
    for _ in range(polling.cycles):
        result = await cycle()
        workflow.set_current_details(
            f"**every {polling.every_seconds:g} s** (run {polling.run + 1}); last cycle "
            f"{workflow.now():%Y-%m-%d %H:%M:%S} UTC: {describe(result)}"
        )
        if workflow.info().is_continue_as_new_suggested():
            break
        await workflow.sleep(every)
    workflow.continue_as_new(polling.model_copy(update={"run": polling.run + 1}))
