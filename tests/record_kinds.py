"""Record the kinds of run added with payout profiles, speed tiers, reversals and
statements: `python -m tests.record_kinds LABEL [profiles,speed,reversals,statements]`
writes `histories/LABEL/` (with `workflow_ids.json`) beside the committed sets, which it
never touches (`tests.record_histories` records the earlier kinds;
`workflow/test_replay.py` replays every set).
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
from payouts.devstack.demo import sandbox_iban
from payouts.domain.cashout import Stage
from payouts.temporal import search
from payouts.temporal.codec import converter_for
from tests.record_histories import HISTORIES, save
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


async def record_profile_kinds(h: Harness, env: WorkflowEnvironment, out: Path) -> dict[str, str]:
    """Kinds of run added with payout profiles: a profile change, the automatic cash-out
    sweep and the cash-out it started (to a saved destination), a bank transfer the bank
    verified only as a close match (reviewed, then queued), a saved wallet in its cool-off
    (reviewed, then paid)."""
    from datetime import UTC, datetime

    from payouts.domain.profiles import SweepResult, auto_request_id
    from payouts.temporal import contract

    for user in ("ivy", "jon", "kim"):
        h.fund(user, "200.00")
    auto_dst = await h.client.save_destination("ivy", "gift_card", "ivy@example.org")
    await h.client.set_auto_cashout("ivy", destination_id=auto_dst, currency="USD", threshold="50")
    sweep = await h.temporal.start_workflow(
        "AutoCashoutSweepWorkflow", 100.0, id="auto-sweep-recorded", task_queue=h.task_queue,
        result_type=SweepResult,
    )  # fmt: skip
    assert (await sweep.result()).started == 1
    rule = (await h.client.payee_profile("ivy")).auto[0]
    auto = auto_request_id("ivy", rule, f"d{datetime.now(UTC):%Y%m%d}")
    close = await h.cashout("jon", "45", "bank_transfer", sandbox_iban("0909"), holder="Jon Berg")
    wallet_dst = await h.client.save_destination("kim", "wallet", "kim@example.org")
    cooling = await h.cashout("kim", "30", "wallet", f"saved:{wallet_dst}")
    for ticket in (close, cooling):
        await h.wait_stage(ticket.request_id, Stage.AWAITING_REVIEW)
        await h.client.approve(ticket.request_id, reviewer="carol")
    await h.client.wait(auto)
    await h.client.wait(cooling.request_id)
    await h.wait_for(close.request_id, lambda s: any("queued" in e.note for e in s.timeline))
    changes = [
        w.id async for w in h.temporal.list_workflows('WorkflowType = "PayeeProfileWorkflow"')
    ]
    ids = {
        "profile_change": sorted(changes)[0],
        "auto_sweep": sweep.id,
        "auto_cashout": contract.cashout_id(auto),
        "vop_close_match": close.workflow_id,
        "saved_cooloff_review": cooling.workflow_id,
    }
    for name, workflow_id in ids.items():  # (the close match stays open: queued for a cutoff)
        await save(env, out, name, workflow_id)
    return ids


async def record_speed_kinds(h: Harness, env: WorkflowEnvironment, out: Path) -> dict[str, str]:
    """Kinds of run added with speed tiers: a wallet paid instantly, a wallet whose provider
    refused instant (paid at standard speed), a bank transfer sent instantly in a file of
    its own and booked."""
    for user in ("ina", "ino", "inb"):
        h.fund(user, "200.00")
    wallet = await h.cashout("ina", "40", "wallet", "ina@example.org", speed="instant")
    refused = await h.cashout("ino", "40", "wallet", "noinstant.ino@example.org", speed="instant")
    bank = await h.cashout(
        "inb", "50", "bank_transfer", sandbox_iban("2121"), holder="Ina Bee", speed="instant"
    )
    await h.wait_for(
        bank.request_id, lambda s: any("file of its own" in e.note for e in s.timeline)
    )
    await asyncio.sleep(1.2)  # the sandbox bank's answer
    await h.run_workflow("BankReportsWorkflow")
    await h.wait_stage(bank.request_id, Stage.PAID)
    for ticket in (wallet, refused):
        await h.client.wait(ticket.request_id)
    ids = {
        "wallet_instant": wallet.workflow_id,
        "wallet_instant_fell_back": refused.workflow_id,
        "bank_instant": bank.workflow_id,  # open: its return window
    }
    for name, workflow_id in ids.items():
        await save(env, out, name, workflow_id)
    return ids


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
