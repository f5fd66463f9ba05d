"""The Temporal UI stays a way to approve, and stays authenticated: in a real browser
(Debian's Chromium, driven by Playwright), a reviewer pastes the payload `payouts review
sign` printed into the workflow's "Send a Signal" dialog and the held cash-out is paid; a
payload typed by hand in alice's name is refused first."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import TimeoutError as PlaywrightTimeout
from playwright.async_api import async_playwright
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from payouts.config.settings import Settings
from payouts.devstack.devserver import DevServer
from payouts.domain.cashout import Stage
from payouts.temporal import search
from payouts.temporal.codec import converter_for
from payouts.temporal.connection import ensure_search_attributes
from payouts.web import free_port
from tests.support.harness import Harness

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(os.environ.get("PAYOUTS_UI_ARTIFACTS", "/tmp/payouts-ui"))

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium: `apt-get install chromium` (make ui-test installs it where it can)",
)


@pytest.fixture
async def ui_server(tmp_path: Path) -> AsyncIterator[tuple[WorkflowEnvironment, str]]:
    """A dev server with its web UI, on free ports."""
    server = DevServer(port=free_port(), ui_port=free_port(), log_file=tmp_path / "temporal.log")
    server.start()
    converter = converter_for(Settings())
    client = await Client.connect(server.address, data_converter=converter)
    await ensure_search_attributes(client)
    try:
        yield WorkflowEnvironment.from_client(client), f"http://127.0.0.1:{server.ui_port}"
    finally:
        server.stop()


async def send_signal(page, name: str, payload: str) -> None:  # type: ignore[no-untyped-def]
    """What a reviewer does in the UI: More Actions, Send a Signal, name, data, Submit."""
    await page.get_by_role("button", name="More Actions").click()
    await page.get_by_role("menuitem", name="Send a Signal").click()
    dialog = page.get_by_role("dialog").filter(has_text="Send a Signal")
    await dialog.locator("#signal-name").fill(name)
    editor = dialog.get_by_role("textbox", name="Data")
    await editor.click()
    await page.keyboard.press("Control+A")  # the dialog keeps the last payload
    await page.keyboard.press("Delete")
    await page.keyboard.insert_text(payload)
    await dialog.locator("#signal-name").click()  # leaving the editor lets it settle
    await dialog.get_by_role("button", name="Submit").click()
    try:
        await dialog.wait_for(state="hidden", timeout=10_000)
    except PlaywrightTimeout:  # the view re-renders when the workflow completes at once
        await page.keyboard.press("Escape")


async def test_a_signed_payload_pasted_in_the_ui_approves_and_a_forged_one_does_not(
    ui_server: tuple[WorkflowEnvironment, str], tmp_path: Path
) -> None:
    env, ui = ui_server
    assert search.STAGE  # the server knows our search attributes
    async with Harness.running(env, tmp_path) as h:
        h.fund("uma", "700.00")
        ticket = await h.cashout("uma", "600", "wallet", "uma@example.com")
        rid, wid = ticket.request_id, ticket.workflow_id
        await h.wait_stage(rid, Stage.AWAITING_REVIEW)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=CHROMIUM,
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                ],
            )
            page = await browser.new_page(viewport={"width": 1400, "height": 1000})
            await page.goto(f"{ui}/namespaces/default/workflows/{wid}")
            await page.get_by_role("button", name="More Actions").wait_for()

            forged = json.dumps({"reviewer": "alice", "reason": "typed by someone else"})
            await send_signal(page, "approve", forged)
            refused = await h.wait_for(rid, lambda s: bool(s.reviews))
            assert refused.stage is Stage.AWAITING_REVIEW
            assert refused.reviews[-1].reviewer == "alice" and not refused.reviews[-1].accepted
            assert refused.reviews[-1].refusal.startswith("unsigned")

            signed = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "payouts", "review", "sign", rid, "--reviewer", "alice",
                 "--reason", "checked in the UI"],
                capture_output=True, text=True, timeout=60,
                env={**os.environ, "PAYOUTS_DATA_DIR": str(tmp_path),
                     "PAYOUTS_TASK_QUEUE": h.task_queue,
                     "TEMPORAL_ADDRESS": h.temporal.service_client.config.target_host},
            )  # fmt: skip
            assert signed.returncode == 0, signed.stderr
            await send_signal(page, "approve", signed.stdout.strip())
            result = await h.result(rid)
            await page.reload()
            await page.get_by_role("button", name="More Actions").wait_for()
            await page.screenshot(path=str(ARTIFACTS / "approved-from-the-ui.png"), full_page=True)
            await browser.close()
        assert result.stage is Stage.PAID
        accepted = result.status.reviews[-1]
        assert (accepted.reviewer, accepted.accepted, accepted.client) == (
            "alice",
            True,
            "temporal-ui",
        )
