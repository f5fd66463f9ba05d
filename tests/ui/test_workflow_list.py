"""What an operator sees after a minute of `make run`: the Temporal UI's workflow list
(headless Chromium) shows every demo cash-out on its first screen, with a handful of
service workflows, not a page of pollers (71 of 76 rows were pollers before)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from playwright.async_api import async_playwright
from temporalio.client import Client

from payouts.devstack.demo import CASHOUTS
from payouts.web import free_port, port_open
from tests.ui.test_temporal_ui import ARTIFACTS, CHROMIUM

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium: `make browser`")

VIEWPORT = {"width": 1400, "height": 1000}
MINUTE = 60.0


async def wait_until(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.5)


async def test_the_workflow_list_after_a_minute_of_make_run(tmp_path: Path) -> None:
    temporal_port, ui_port = free_port(), free_port()
    env = {
        **os.environ,
        "PAYOUTS_DATA_DIR": str(tmp_path / ".payouts"),
        "PAYOUTS_WALLET_PORT": str(free_port()),
        "PAYOUTS_WEBHOOK_PORT": str(free_port()),
        "PAYOUTS_PLATFORM_PORT": str(free_port()),
        "PAYOUTS_CODEC_PORT": str(free_port()),
        "PAYOUTS_METRICS_PORT": "0",
    }
    log = (tmp_path / "make-run.log").open("wb")
    up = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "payouts", "up", "--demo", "--port", str(temporal_port),
        "--ui-port", str(ui_port), env=env, stdout=log, stderr=log, start_new_session=True,
    )  # fmt: skip
    began = time.monotonic()
    try:
        await wait_until(
            lambda: asyncio.to_thread(port_open, "127.0.0.1", ui_port), 90, "the UI never listened"
        )
        client = await Client.connect(f"127.0.0.1:{temporal_port}")

        async def count(query: str) -> int:
            return (await client.count_workflows(query)).count

        cashouts = 'WorkflowType = "CashoutWorkflow"'
        await wait_until(
            lambda: _at_least(count(cashouts), len(CASHOUTS)), 90, "the demo did not start"
        )
        await asyncio.sleep(max(0.0, MINUTE - (time.monotonic() - began)))
        total, demo = await count(""), await count(cashouts)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
            )
            page = await browser.new_page(viewport=VIEWPORT)
            await page.goto(f"http://127.0.0.1:{ui_port}/namespaces/default/workflows")
            rows = page.locator("table tbody tr")
            await rows.first.wait_for()
            await page.wait_for_timeout(1000)  # the list settles (counts, columns)
            await page.screenshot(path=str(ARTIFACTS / "workflow-list-after-a-minute.png"))
            texts = await rows.all_inner_texts()
            visible = 0
            for i, text in enumerate(texts):
                box = await rows.nth(i).bounding_box()
                on_screen = box is not None and box["y"] + box["height"] <= VIEWPORT["height"]
                visible += int("CashoutWorkflow" in text and on_screen)
            await browser.close()
    finally:
        os.killpg(up.pid, signal.SIGINT)  # Ctrl-C: the worker, then the server, stop
        try:
            await asyncio.wait_for(up.wait(), 30)
        except TimeoutError:
            os.killpg(up.pid, signal.SIGKILL)
            await up.wait()
        log.close()
    others = total - demo
    assert demo >= len(CASHOUTS)
    # two pollers, a bank cutoff and an automatic cash-out sweep a minute (a run or two
    # each), and the automatic payee's two profile changes (their audit trail)
    assert others <= 8, f"{others} service workflows after a minute"
    assert visible == demo, f"{visible} of {demo} cash-outs on the first screen"


async def _at_least(n: asyncio.Future[int] | object, k: int) -> bool:
    return int(await n) >= k  # type: ignore[misc]
