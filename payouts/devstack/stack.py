"""`payouts up`: the embedded stack in one process group.

- the Temporal dev server (with its UI) as a child process with its state in the data
  folder, unless a server already listens on the port, which is then reused;
- the HTTP sidecars: the wallet provider sandbox, our webhook ingress (where the wallet
  provider's webhooks arrive), and a sandbox of the platform's webhook endpoint;
- the Temporal Schedules (bank cutoffs, bank reports, notifications, reconciliation);
- a worker.

Ctrl-C stops the worker first (in-flight tasks finish or are handed back), then the
sidecars, then the server.
"""

from __future__ import annotations

import asyncio
import os
import signal
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.console import Console
from rich.text import Text
from temporalio.client import Client

from payouts.config.settings import Settings
from payouts.devstack import demo as demo_module
from payouts.devstack.devserver import DevServer
from payouts.devstack.embedded import embedded_stack, platform_client
from payouts.domain.policy import Policy
from payouts.rails.platform.sandbox import PlatformSandbox
from payouts.rails.wallet.sandbox import WalletFaults, WalletSandbox
from payouts.rails.wallet.webhooks import WebhookReceiver
from payouts.temporal import telemetry
from payouts.temporal.codec import codec_for, converter_for
from payouts.temporal.codec_server import CodecServer
from payouts.temporal.connection import ensure_search_attributes, wait_until_ready
from payouts.temporal.schedules import ensure_pollers, ensure_schedules
from payouts.web import free_port, port_open, serve

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from payouts.app.stack import Stack


def resolve_ports(settings: Settings) -> Settings:
    """Concrete ports and URLs for the sidecars (0 means: pick a free port now)."""
    wallet_port = settings.wallet_port or free_port()
    webhook_port = settings.webhook_port or free_port()
    platform_port = settings.platform_port or free_port()
    return settings.model_copy(
        update={
            "wallet_port": wallet_port,
            "webhook_port": webhook_port,
            "platform_port": platform_port,
            "wallet_api_url": settings.wallet_api_url or f"http://127.0.0.1:{wallet_port}",
            "platform_webhook_url": settings.platform_webhook_url
            or f"http://127.0.0.1:{platform_port}/payouts/events",
        }
    )


@dataclass
class Sidecars:
    wallet: WalletSandbox | None
    receiver: WebhookReceiver
    platform: PlatformSandbox | None
    receiver_url: str


@asynccontextmanager
async def sidecars(settings: Settings, stack: Stack, client: Client) -> AsyncIterator[Sidecars]:
    """Start the wallet sandbox (unless a real provider is configured), our webhook ingress
    and the platform sandbox (unless a real platform URL is configured)."""
    receiver = WebhookReceiver(
        client=client,
        db=stack.db,
        wallet_secret=settings.wallet_webhook_secret,
        service_key=stack.service_key,
    )
    runner, base = await serve(receiver.app(), port=settings.webhook_port)
    receiver_url = f"{base}/webhooks/wallet"
    wallet: WalletSandbox | None = None
    platform: PlatformSandbox | None = None
    try:
        if settings.wallet_api_url == f"http://127.0.0.1:{settings.wallet_port}":
            wallet = WalletSandbox(
                stack.sandbox,
                api_key=settings.wallet_api_key,
                webhook_secret=settings.wallet_webhook_secret,
                webhook_url=receiver_url,
                faults=WalletFaults(
                    seed=settings.sandbox_seed,
                    error_rate=settings.sandbox_transient_rate,
                    throttle_rate=settings.sandbox_throttle_rate,
                    timeout_rate=settings.sandbox_timeout_rate,
                    timeout_seconds=settings.wallet_timeout_seconds + 2,
                    duplicate_rate=settings.sandbox_webhook_duplicate_rate,
                    reorder_rate=settings.sandbox_webhook_reorder_rate,
                    complete_seconds=settings.sandbox_wallet_complete_seconds,
                ),
            )
            await wallet.start(port=settings.wallet_port)
        if settings.platform_webhook_url == (
            f"http://127.0.0.1:{settings.platform_port}/payouts/events"
        ):
            platform = PlatformSandbox(secret=settings.platform_webhook_secret)
            await platform.start(port=settings.platform_port)
        yield Sidecars(wallet, receiver, platform, receiver_url)
    finally:
        if platform is not None:
            await platform.stop()
        if wallet is not None:
            await wallet.stop()
        await runner.cleanup()


DEMO_TIMING = {
    "sandbox_bank_settle_seconds": 20,
    "sandbox_bank_return_seconds": 60,
    "bank_poll_seconds": 5,
    "auto_sweep_minutes": 1,
}


def demo_timing(settings: Settings) -> Settings:
    """The demo's bank answers in seconds, not days (unless the environment says otherwise)."""
    chosen = {k: v for k, v in DEMO_TIMING.items() if f"PAYOUTS_{k.upper()}" not in os.environ}
    return settings.model_copy(update=chosen)


def _address(port: int) -> tuple[str, int]:
    """TEMPORAL_ADDRESS when set (a remote cluster), else the local port."""
    configured = os.environ.get("TEMPORAL_ADDRESS")
    if configured:
        host, _, p = configured.rpartition(":")
        return host or "127.0.0.1", int(p)
    return "127.0.0.1", port


async def up(
    settings: Settings,
    policy: Policy,
    *,
    demo: bool,
    port: int,
    ui_port: int,
    console: Console,
) -> None:
    settings = resolve_ports(demo_timing(settings) if demo else settings)
    host, tport = _address(port)
    # the keys first: generated into the data folder on first start (embedded only)
    stack = embedded_stack(settings, f"{host}:{tport}", policy)
    settings, policy = stack.settings, stack.policy
    codec_server = CodecServer(
        codec_for(settings),
        origins=(f"http://localhost:{ui_port}", f"http://127.0.0.1:{ui_port}"),
        token=settings.operator_token,
        allow_encode=True,  # the UI seals what it sends (a pasted, signed approval)
    )
    await codec_server.start(port=settings.codec_port)
    server: DevServer | None = None
    if port_open(host, tport):
        console.print(f"using the Temporal server already listening at {host}:{tport}")
        ui = None
    else:
        server = DevServer(
            port=tport,
            ui_port=ui_port,
            db_file=settings.temporal_db_path,
            log_file=settings.temporal_db_path.with_name("temporal.log"),
            ui_codec_endpoint=codec_server.ui_endpoint,
        )
        console.print(
            f"starting the Temporal dev server at {server.address} "
            f"(state in {settings.temporal_db_path}) ..."
        )
        server.start()
        ui = f"http://localhost:{ui_port}"
    try:
        client = await wait_until_ready(
            converter_for(settings),
            target_host=f"{host}:{tport}",
            runtime=telemetry.runtime(settings.metrics_port, settings.metrics_host),
        )
        added = await ensure_search_attributes(client)
        if added:
            console.print(f"registered search attributes: {', '.join(added)}")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with sidecars(settings, stack, client) as cars, stack.worker(client):
            ids = await ensure_schedules(client, settings, policy)
            ids += await ensure_pollers(client, settings)
            console.print(
                f"worker polling task queue {settings.task_queue!r}; ledger "
                f"{_safe_url(settings.ledger_url)}"
            )
            console.print(f"schedules and pollers: {', '.join(ids)}")
            console.print(
                f"wallet provider {settings.wallet_api_url}"
                + (" (sandbox)" if cars.wallet else "")
                + f"; its webhooks arrive at {cars.receiver_url}"
            )
            console.print(
                f"platform notifications go to {settings.platform_webhook_url}"
                + (" (sandbox)" if cars.platform else "")
            )
            console.print(
                f"bank files: {settings.bank_dir}/outbound (pain.001) and /inbound "
                "(pain.002, camt.054)"
            )
            console.print(
                f"payloads are encrypted; the codec server {codec_server.url} decodes "
                "them for this UI and for callers with the operator token "
                f"({settings.data_dir}/keys/operator.token)"
            )
            if settings.metrics_port:
                console.print(
                    f"Prometheus metrics: http://{settings.metrics_host}:{settings.metrics_port}"
                    "/metrics"
                )
            if stack.deployment.embedded:
                reviewers = ", ".join(r.id for r in policy.reviewers)
                console.print(
                    f"keys in {stack.deployment.folder} (made on first start, mode 0600): the "
                    f"platform signs cash-outs and payees' cancels; reviewers ({reviewers}) "
                    "sign decisions: payouts review approve R --reviewer alice, or payouts "
                    "review sign R --reviewer alice for the UI's Send a Signal"
                )
            if ui:
                console.print(Text(f"Temporal UI: {ui}", style="bold"))
            if demo:
                payouts = platform_client(stack, client)
                started = await demo_module.run(payouts, stack.ledger, stack.identity)
                console.print(Text("\ndemo cash-outs", style="bold"))
                for line in demo_module.describe(started):
                    console.print("  " + line, markup=False)
                console.print(demo_module.hints(started))
                tag = started[0][1].request_id.removeprefix("demo-").rsplit("-", 1)[0]
                for line in await demo_module.clawback(payouts, stack.ledger, tag):
                    console.print("  " + line, markup=False)
            console.print("\nrunning; Ctrl-C stops the worker and the server")
            await stop.wait()
            console.print("stopping the worker ...")
    finally:
        stack.close()
        await codec_server.stop()
        if server is not None:
            console.print("stopping the Temporal dev server ...")
            server.stop()


def _safe_url(url: str) -> str:
    """The ledger URL without a password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.split("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}@{host}"
    return url
