"""Record chosen kinds of run into a new set: `python -m tests.record_kinds LABEL
[profiles,speed,reversals,statements]` writes `histories/LABEL/` (with `workflow_ids.json`)
beside the committed sets, which it never touches. The profile and speed kinds are
`tests.record_histories`' own (that module, as it landed, records every earlier kind at
once); the reversal and statement kinds are here. `workflow/test_replay.py` replays every
set.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from payouts.config.settings import Settings
from payouts.devstack import devserver
from payouts.domain.cashout import Stage
from payouts.temporal import search
from payouts.temporal.codec import converter_for
from tests.record_histories import (
    HISTORIES,
    record_profile_kinds,
    record_speed_kinds,
    save,
)
from tests.support.harness import Harness


async def record(out: Path, kinds: list[str]) -> None:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(devserver.temporal_cli()),
        dev_server_extra_args=devserver.LATENCY_FLAGS,
        search_attributes=search.ALL,
        data_converter=converter_for(Settings()),
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            async with Harness.running(env, Path(tmp), sandbox_bank_return_seconds=1) as h:
                ids: dict[str, str] = {}
                for kind in kinds:
                    ids |= await KINDS[kind](h, env, out)
                (out / "workflow_ids.json").write_text(
                    json.dumps(ids, indent=2, sort_keys=True) + "\n"
                )
    finally:
        await env.shutdown()


async def record_reversal_kinds(h: Harness, env: WorkflowEnvironment, out: Path) -> dict[str, str]:
    """Kinds of run added with reversals: a reversal applied (the payee then owes), a
    cash-out in another currency refused while owing, and a cash-out reviewed because
    the payee owed beyond the limit (approved, paid)."""
    from datetime import UTC, datetime, timedelta

    from payouts.temporal import contract

    ledger = h.stack.ledger
    earned = datetime.now(UTC) - timedelta(days=10)
    ledger.credit_earning(
        event_id="rec-rev-1", user_id="rev", currency="USD", amount=40_000_000, earned_at=earned
    )
    ledger.credit_earning(
        event_id="rec-rev-eur", user_id="rev", currency="EUR", amount=20_000_000, earned_at=earned
    )
    paid = await h.cashout("rev", "40", "wallet", "rev@example.org")
    await h.client.wait(paid.request_id)
    await h.client.reverse_earning(
        "rec-rev-1", user_id="rev", currency="USD", reason="chargeback", reversal_id="rec-rv-1"
    )
    owing = await h.cashout("rev", "20", "wallet", "rev@example.org", currency="EUR")
    await h.client.wait(owing.request_id)
    h.fund("rev", "100.00")  # pays the 40.00 back first
    reviewed = await h.cashout("rev", "30", "wallet", "rev@example.org")
    await h.wait_stage(reviewed.request_id, Stage.AWAITING_REVIEW)
    await h.client.approve(reviewed.request_id, reviewer="carol")
    await h.client.wait(reviewed.request_id)
    ids = {
        "reversal_applied": contract.reversal_workflow_id("rec-rv-1"),
        "cashout_refused_while_owing": owing.workflow_id,
        "owed_review_paid": reviewed.workflow_id,
    }
    for name, workflow_id in ids.items():
        await save(env, out, name, workflow_id)
    return ids


async def record_statement_kinds(h: Harness, env: WorkflowEnvironment, out: Path) -> dict[str, str]:
    """A page of a payee's statement read by the platform through Temporal."""
    from payouts.temporal import contract

    h.fund("sta", "50.00")
    lines = [line async for line in h.client.statement("sta")]
    assert len(lines) >= 3
    [run] = [
        w.id async for w in h.temporal.list_workflows('WorkflowType = "PayeeStatementWorkflow"')
    ]
    ids = {"statement_page": run}
    assert run.startswith(contract.statement_workflow_id(""))
    for name, workflow_id in ids.items():
        await save(env, out, name, workflow_id)
    return ids


KINDS = {
    "profiles": record_profile_kinds,
    "speed": record_speed_kinds,
    "reversals": record_reversal_kinds,
    "statements": record_statement_kinds,
}

if __name__ == "__main__":
    args = sys.argv[1:]
    chosen = args[1].split(",") if len(args) == 2 else list(KINDS)
    if (
        len(args) not in (1, 2)
        or not args[0].replace("-", "").isalnum()
        or set(chosen) - set(KINDS)
    ):
        sys.exit("usage: python -m tests.record_kinds LABEL [profiles,speed,reversals,statements]")
    target = HISTORIES / args[0]
    if target.exists():
        sys.exit(f"{target} exists: histories are never re-recorded; choose a new label")
    target.mkdir()
    asyncio.run(record(target, chosen))
