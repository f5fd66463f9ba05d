"""Record workflow histories for the replay test: `python -m tests.record_histories LABEL`.

The committed histories are what running cash-outs look like; `workflow/test_replay.py`
proves the current code replays every one of them. This writes a new set beside them, in
`histories/LABEL/` (with `workflow_ids.json`: admitted cash-outs replay only under their own
id, which their signatures name), and never touches an existing one: a change that alters
the command order goes behind `workflow.patched`, and the old histories keep proving it.
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
from tests.support.harness import Harness

HISTORIES = Path(__file__).parent / "histories"
IBAN = "DE89370400440532013000"


async def record(out: Path) -> None:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(devserver.temporal_cli()),
        dev_server_extra_args=devserver.LATENCY_FLAGS,
        search_attributes=search.ALL,
        data_converter=converter_for(Settings()),
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            async with Harness.running(env, Path(tmp), sandbox_bank_return_seconds=1) as h:
                for user in ("ana", "ben", "dev", "eli", "fay", "gus", "hana", "gia"):
                    h.fund(user, "800.00" if user != "gus" else "5.00")
                h.stack.identity.register("zoe", "rejected")
                h.stack.identity.register("ben", "verified", legal_name="Ben Okafor")
                h.fund("zoe", "100.00")
                runs = {
                    "wallet_paid": await h.cashout("ana", "12.345678", "wallet", "a@example.com"),
                    "gift_card_paid": await h.cashout("gia", "37.99", "gift_card", "g@example.com"),
                    "bank_paid": await h.cashout(
                        "ben", "40", "bank_transfer", IBAN, holder="OKAFOR, Ben"
                    ),
                    "bank_returned": await h.cashout(
                        "hana", "25", "bank_transfer", sandbox_iban("0606"), holder="Hana"
                    ),
                    "review_approved": await h.cashout("dev", "600", "wallet", "d@example.com"),
                    "review_rejected": await h.cashout("eli", "600", "wallet", "e@example.com"),
                    "cancelled": await h.cashout("fay", "600", "wallet", "f@example.com"),
                    "insufficient": await h.cashout("gus", "10", "wallet", "g@example.com"),
                    "identity_rejected": await h.cashout("zoe", "60", "wallet", "z@example.com"),
                }
                for name in ("review_approved", "review_rejected", "cancelled"):
                    await h.wait_stage(runs[name].request_id, Stage.AWAITING_REVIEW)
                await h.client.approve(runs["review_approved"].request_id, reviewer="mallory")
                await h.client.review(
                    runs["review_approved"].request_id, reviewer="bob", decision="approve"
                )
                await h.client.reject(
                    runs["review_rejected"].request_id, reviewer="carol", reason="pattern"
                )
                await h.client.cancel(runs["cancelled"].request_id, requested_by="fay")
                for name in ("bank_paid", "bank_returned"):
                    await h.wait_for(
                        runs[name].request_id, lambda s: any("queued" in e.note for e in s.timeline)
                    )
                batch = await h.temporal.start_workflow(
                    "BankBatchWorkflow", id="bank-batch-recorded", task_queue=h.task_queue
                )
                await h.temporal.get_workflow_handle(batch.id).result()
                await asyncio.sleep(1.2)
                reports = await h.temporal.start_workflow(
                    "BankReportsWorkflow", id="bank-reports-recorded", task_queue=h.task_queue
                )
                await h.temporal.get_workflow_handle(reports.id).result()
                await h.wait_stage(runs["bank_returned"].request_id, Stage.PAID)
                await asyncio.sleep(1.2)
                await h.run_workflow("BankReportsWorkflow")
                await h.wait_stage(runs["bank_returned"].request_id, Stage.RETURNED)
                ids = {name: ticket.workflow_id for name, ticket in runs.items()}
                ids |= {"bank_batch": batch.id, "bank_reports": reports.id}
                for name, ticket in runs.items():
                    if name != "bank_paid":  # stays open for its return window
                        await h.client.wait(ticket.request_id)
                for name, workflow_id in ids.items():
                    await save(env, out, name, workflow_id)
                ids |= await record_later_kinds(h, env, out)
                ids |= await record_profile_kinds(h, env, out)
                ids |= await record_speed_kinds(h, env, out)
                (out / "workflow_ids.json").write_text(
                    json.dumps(ids, indent=2, sort_keys=True) + "\n"
                )
    finally:
        await env.shutdown()


async def record_later_kinds(h: Harness, env: WorkflowEnvironment, out: Path) -> dict[str, str]:
    """Kinds of run added since release 0.1: a review flooded until it continued as new
    (both runs), a bank holder that could not be compared (reviewed), a polling service
    workflow's run that continued as new."""
    from payouts.domain.cashout import ReviewDecision
    from payouts.domain.messages import Polling

    h.fund("rol", "800.00")
    h.fund("nia", "100.00")
    h.stack.identity.register("nia", "verified", legal_name=None)
    rolled = await h.cashout("rol", "600", "wallet", "rol@example.com")
    holder = await h.cashout("nia", "20", "bank_transfer", sandbox_iban("0707"), holder="Nia N")
    for ticket in (rolled, holder):
        await h.wait_stage(ticket.request_id, Stage.AWAITING_REVIEW)
    handle = h.temporal.get_workflow_handle(rolled.workflow_id)
    sent = 0
    while (await h.client.status(rolled.request_id)).runs < 1:
        junk = [ReviewDecision(reviewer=f"m{sent + i}-" + "x" * 15_000) for i in range(20)]
        await asyncio.gather(*(handle.signal("approve", j) for j in junk))
        sent += 20
    await h.client.approve(rolled.request_id, reviewer="carol")
    await h.client.approve(holder.request_id, reviewer="carol")
    await h.client.wait(rolled.request_id)
    await h.wait_stage(holder.request_id, Stage.DISBURSING)
    poller = await h.temporal.start_workflow(
        "BankReportsWorkflow", Polling(every_seconds=0.05, cycles=2), id="reports-poller-recorded",
        task_queue=h.task_queue,
    )  # fmt: skip
    for _ in range(300):  # polling: the runs are on the server, nothing to await here
        if len(await runs_of(env, poller.id)) >= 2:
            break
        await asyncio.sleep(0.1)
    await h.temporal.get_workflow_handle(poller.id).terminate("recorded")
    first, second = (await runs_of(env, rolled.workflow_id))[:2]
    await save(env, out, "review_rolled_run1", rolled.workflow_id, first)
    await save(env, out, "review_rolled_run2", rolled.workflow_id, second)
    await save(env, out, "holder_review", holder.workflow_id)
    await save(env, out, "reports_poller", poller.id, (await runs_of(env, poller.id))[0])
    return {
        "review_rolled_run1": rolled.workflow_id,
        "review_rolled_run2": rolled.workflow_id,
        "holder_review": holder.workflow_id,
        "reports_poller": poller.id,
    }


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


async def runs_of(env: WorkflowEnvironment, workflow_id: str) -> list[str]:
    """The run ids of a workflow, oldest first."""
    found = [w async for w in env.client.list_workflows(f'WorkflowId = "{workflow_id}"')]
    return [w.run_id for w in sorted(found, key=lambda w: w.start_time)]


async def save(
    env: WorkflowEnvironment, out: Path, name: str, workflow_id: str, run_id: str | None = None
) -> None:
    history = await env.client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    (out / f"{name}.json").write_text(history.to_json())
    print("recorded", name)


if __name__ == "__main__":
    if len(sys.argv) != 2 or not sys.argv[1].replace("-", "").isalnum():
        sys.exit("usage: python -m tests.record_histories LABEL  (a new folder name)")
    target = HISTORIES / sys.argv[1]
    if target.exists():
        sys.exit(f"{target} exists: histories are never re-recorded; choose a new label")
    target.mkdir()
    asyncio.run(record(target))
