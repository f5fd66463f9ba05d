"""Replay the committed histories against today's workflow code (determinism guard).

If this fails, a change altered the commands a running cash-out would issue: put it behind
`workflow.patched`. Histories are never re-recorded: new ones go beside the old
(`python -m tests.record_histories LABEL`, or `tests.record_kinds` for the profile, speed and
reversal kinds, writes `histories/LABEL/`), and every one of them keeps replaying.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.worker._workflow_instance import _WorkflowLogicFlag
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from payouts.app.runtime import PASSTHROUGH, WORKFLOWS
from payouts.config.settings import Settings
from payouts.domain.cashout import Stage
from payouts.temporal.codec import converter_for
from tests.support.harness import Harness

ROOT = Path(__file__).parent.parent / "histories"
IDS = "workflow_ids.json"  # beside each recorded set: name -> the workflow id it ran under
HISTORIES = sorted(p for p in ROOT.rglob("*.json") if p.name != IDS)


def workflow_id(path: Path) -> str:
    """The id the history ran under: signatures bind rail events and decisions to it, so an
    admitted cash-out replays only under its own id. (Release 0.1's set has no ids file;
    nothing in it depends on the id.)"""
    ids = path.parent / IDS
    if not ids.exists():
        return path.stem
    return str(json.loads(ids.read_text())[path.stem])


def test_histories_are_committed() -> None:
    """The replay test has material: every kind of ending is recorded."""
    names = {p.stem for p in ROOT.glob("*.json")}  # release 0.1's own
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


@pytest.mark.parametrize("path", HISTORIES, ids=[str(p.relative_to(ROOT)) for p in HISTORIES])
async def test_history_replays(path: Path) -> None:
    """Today's code replays a recorded run without a non-determinism error."""
    history = WorkflowHistory.from_json(workflow_id(path), path.read_text())
    replayer = Replayer(
        workflows=WORKFLOWS,
        data_converter=converter_for(Settings()),
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
        ),
    )
    await replayer.replay_workflow(history)


def test_every_later_set_names_its_workflow_ids() -> None:
    for folder in {p.parent for p in HISTORIES if p.parent != ROOT}:
        ids = json.loads((folder / IDS).read_text())
        assert set(ids) == {p.stem for p in folder.glob("*.json") if p.name != IDS}


async def test_new_cash_outs_record_single_batch_activations(harness: Harness) -> None:
    """Our workers apply all of an activation's jobs before running workflow code (the SDK's
    internal flag 2), and every new cash-out records that in its first workflow task, so its
    replays do the same. Fails if an SDK upgrade drops the private switch."""
    h = harness
    h.fund("ida", "30.00")
    ticket = await h.cashout("ida", "20", "gift_card", "ida@example.com")
    assert (await h.result(ticket.request_id)).stage is Stage.PAID
    history = await h.client.client.get_workflow_handle(ticket.workflow_id).fetch_history()
    first = next(
        e for e in history.events if e.HasField("workflow_task_completed_event_attributes")
    )
    flags = first.workflow_task_completed_event_attributes.sdk_metadata.lang_used_flags
    assert int(_WorkflowLogicFlag.PROCESS_WORKFLOW_ACTIVATION_JOBS_AS_SINGLE_BATCH) in flags
