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
                (out / "workflow_ids.json").write_text(
                    json.dumps(ids, indent=2, sort_keys=True) + "\n"
                )
    finally:
        await env.shutdown()


async def save(env: WorkflowEnvironment, out: Path, name: str, workflow_id: str) -> None:
    history = await env.client.get_workflow_handle(workflow_id).fetch_history()
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
