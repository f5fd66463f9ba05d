"""Replay the committed histories against today's workflow code (determinism guard).

If this fails, a change altered the commands a running cash-out would issue: put it
behind `workflow.patched`, or, if the change is compatible, re-record with
`python -m tests.record_histories`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from payouts.settings import Settings
from worker import PASSTHROUGH, WORKFLOWS

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_histories_are_committed() -> None:
    """The replay test has material: every kind of ending is recorded."""
    names = {p.stem for p in HISTORIES}
    assert {
        "wallet_paid",
        "gift_card_paid",
        "bank_paid",
        "bank_returned",
        "bank_batch",
        "bank_reports",
        "review_approved",
        "review_rejected",
        "cancelled",
        "insufficient",
        "identity_rejected",
    } <= names


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays(path: Path) -> None:
    """Today's code replays a recorded run without a non-determinism error."""
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(
        workflows=WORKFLOWS,
        data_converter=Settings().data_converter(),
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
        ),
    )
    await replayer.replay_workflow(history)
