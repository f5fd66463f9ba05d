"""The cash-out commands as a reviewer or operator runs them, and the real `temporal` CLI."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
from pathlib import Path

from payouts.devstack import devserver
from payouts.domain.cashout import Stage
from payouts.temporal.codec import codec_for
from payouts.temporal.codec_server import CodecServer
from tests.support.harness import Harness


def run(h: Harness, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environ = dict(os.environ)
    environ.update(
        {
            "TEMPORAL_ADDRESS": h.temporal.service_client.config.target_host,
            "PAYOUTS_DATA_DIR": str(data_dir),
            "PAYOUTS_DATABASE_URL": h.stack.db.url,
            "PAYOUTS_TASK_QUEUE": h.task_queue,
            "COLUMNS": "200",  # an operator's wide terminal: table cells are not wrapped
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "payouts", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
    )


async def in_thread(h: Harness, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI without blocking the event loop that drives the worker."""
    return await asyncio.to_thread(run, h, data_dir, *args)


async def test_cashout_review_and_status_commands(harness: Harness, tmp_path: Path) -> None:
    """cashout starts it, review list shows it, review approve completes it, status tells."""
    h = harness
    h.fund("carol", "700.00")
    started = await in_thread(
        h,
        tmp_path,
        "cashout",
        "carol",
        "600",
        "--method",
        "wallet",
        "--destination",
        "carol@example.com",
        "--request-id",
        "cli-1",
        "--json",
    )
    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout)["quote"]["net"] == 590_900_000
    await h.wait_stage("cli-1", Stage.AWAITING_REVIEW)
    for _ in range(100):  # visibility is eventually consistent
        listed = await in_thread(h, tmp_path, "review", "list", "--json")
        if any(p["request_id"] == "cli-1" for p in json.loads(listed.stdout)):
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("cli-1 never listed for review")
    refused = await in_thread(h, tmp_path, "review", "approve", "cli-1", "--reviewer", "carol")
    assert refused.returncode == 1
    assert refused.stderr.strip() == "error: reviewers cannot decide on their own cash-out"
    approved = await in_thread(h, tmp_path, "review", "approve", "cli-1", "--reviewer", "bob")
    assert approved.returncode == 0 and "review complete" in approved.stdout
    await h.result("cli-1")
    status = await in_thread(h, tmp_path, "status", "cli-1", "--json")
    data = json.loads(status.stdout)
    assert data["stage"] == "PAID" and data["reviews"][-1]["via"] == "signal"
    assert data["reviews"][-1]["client"].startswith("cli:")
    shown = await in_thread(h, tmp_path, "status", "cli-1")
    assert "PAID" in shown.stdout and "Timeline" in shown.stdout
    missing = await in_thread(h, tmp_path, "status", "nope-1")
    assert missing.returncode == 1 and "no cash-out with request id 'nope-1'" in missing.stderr
    trail = await in_thread(h, tmp_path, "review", "audit", "cli-1", "--json")
    decisions = [(d["reviewer"], d["accepted"], d["via"]) for d in json.loads(trail.stdout)]
    assert decisions == [("carol", False, "signal"), ("bob", True, "signal")]
    shown = await in_thread(h, tmp_path, "review", "audit")
    assert "approve refused" in shown.stdout and "reviewers cannot decide on their" in shown.stdout


async def test_cancel_command(harness: Harness, tmp_path: Path) -> None:
    """cancel --by the payee ends a held cash-out and reports the released hold."""
    h = harness
    h.fund("pat", "700.00")
    await h.cashout("pat", "600", "wallet", "pat@example.com", request_id="cli-2")
    await h.wait_stage("cli-2", Stage.AWAITING_REVIEW)
    done = await in_thread(h, tmp_path, "cancel", "cli-2", "--by", "pat", "--reason", "oops")
    assert done.returncode == 0 and "CANCELLED" in done.stdout and "hold released" in done.stdout
    again = await in_thread(h, tmp_path, "cancel", "cli-2", "--by", "pat")
    assert again.returncode == 1 and "too late to cancel: the cash-out is CANCELLED" in again.stderr


async def test_temporal_cli_signal_and_query(harness: Harness, tmp_path: Path) -> None:
    """A reviewer approves with `temporal workflow signal` (as from the UI): a typed
    payload claiming to be alice is refused; the one `payouts review sign` prints counts.
    An operator reads the outcome with `temporal workflow query`: through the codec server
    the answer is readable; without it, it is ciphertext."""
    h = harness
    h.fund("quinn", "700.00")
    ticket = await h.cashout("quinn", "600", "wallet", "quinn@example.com")
    await h.wait_stage(ticket.request_id, Stage.AWAITING_REVIEW)
    address = h.temporal.service_client.config.target_host
    cli = str(devserver.temporal_cli())

    def temporal(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [cli, "workflow", *args, "--address", address, "--workflow-id", ticket.workflow_id],
            capture_output=True,
            text=True,
            timeout=30,
        )

    forged = await asyncio.to_thread(
        temporal,
        "signal",
        "--name",
        "approve",
        "--input",
        '{"reviewer": "alice", "reason": "ok from the CLI"}',
    )
    assert forged.returncode == 0, forged.stderr
    refused = await h.wait_for(ticket.request_id, lambda s: bool(s.reviews))
    assert refused.stage is Stage.AWAITING_REVIEW
    assert refused.reviews[0].refusal.startswith("unsigned")
    signed = await in_thread(
        h, tmp_path, "review", "sign", ticket.request_id, "--reviewer", "alice", "--reason", "ok"
    )
    assert signed.returncode == 0, signed.stderr
    assert "signal name: approve" in signed.stderr
    signal = await asyncio.to_thread(
        temporal, "signal", "--name", "approve", "--input", signed.stdout.strip()
    )
    assert signal.returncode == 0, signal.stderr
    await h.result(ticket.request_id)
    token = h.stack.settings.operator_token
    # the temporal CLI encodes its (empty) query input through the codec too
    codec = CodecServer(codec_for(h.stack.settings), origins=(), token=token, allow_encode=True)
    await codec.start()
    try:
        query = await asyncio.to_thread(
            temporal, "query", "--name", "status", "--output", "json",
            "--codec-endpoint", codec.url, "--codec-auth", f"Bearer {token}",
        )  # fmt: skip
        unauthorised = await asyncio.to_thread(
            temporal, "query", "--name", "status", "--output", "json",
            "--codec-endpoint", codec.url,
        )  # fmt: skip
        raw = await asyncio.to_thread(temporal, "query", "--name", "status", "--output", "json")
    finally:
        await codec.stop()
    assert query.returncode == 0, query.stderr
    answer = json.loads(query.stdout)
    status = answer["queryResult"][0] if "queryResult" in answer else answer
    assert status["stage"] == "PAID"
    accepted = status["reviews"][-1]
    assert (accepted["reviewer"], accepted["accepted"], accepted["client"]) == (
        "alice",
        True,
        "temporal-ui",
    )
    assert codec.decoded >= 1
    assert "PAID" not in raw.stdout
    assert "PAID" not in unauthorised.stdout and codec.refused >= 1
    assert base64.b64encode(b"binary/encrypted").decode() in raw.stdout


HOSTILE = "[/][bold]\x1b]0;pwned\x07\x1b[2J\r\u202etxt.exe"


async def test_hostile_names_print_as_text_and_never_reach_the_terminal(
    harness: Harness, tmp_path: Path
) -> None:
    """A reviewer named like Rich markup (`[/]` used to crash `payouts status`) and carrying
    escape sequences, a carriage return and a bidi override: every command shows it as
    text, with each control character replaced, and exits 0."""
    from payouts.domain.cashout import ReviewDecision
    from tests.support.attacks import held

    h = harness
    rid = await held(h, "rex", "600")
    handle = h.temporal.get_workflow_handle(f"cashout-{rid}")
    await handle.signal("approve", ReviewDecision(reviewer=HOSTILE, reason=HOSTILE))
    await h.wait_for(rid, lambda s: bool(s.reviews))
    for args in (("status", rid), ("review", "audit", rid), ("review", "list")):
        shown = await in_thread(h, tmp_path, *args)
        assert shown.returncode == 0, (args, shown.stderr)
        assert "[/][bold]" in shown.stdout or args[1] == "list", args
        for control in ("\x1b", "\x07", "\r", "\u202e"):
            assert control not in shown.stdout, (args, control)
