"""The floors' workflows, in a module of their own that imports nothing but temporalio:
the workflow sandbox re-imports a workflow's module for every run, so a floor defined
next to heavy imports would measure those imports, not the server."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn(name="bench_noop")
async def noop(value: str) -> str:
    return value


@workflow.defn(name="BenchFloor")
class FloorWorkflow:
    @workflow.run
    async def run(self, steps: int) -> int:
        for i in range(steps):
            await workflow.execute_activity(
                "bench_noop", str(i), start_to_close_timeout=timedelta(seconds=30)
            )
        return steps
