"""The embedded stack's keys, and a worker stack and client that use them.

`payouts up`, the tests and the benchmarks run against a Temporal server on this machine;
they mark their data folder as embedded for that server (`security.deployment`), so the
worker, the CLI and the client take the generated keys from it.
"""

from __future__ import annotations

from temporalio.client import Client

from payouts.app.stack import Stack
from payouts.config.settings import Settings
from payouts.domain.policy import Policy
from payouts.security.deployment import LOOPBACK, Deployment, ensure_embedded_keys, keys_dir
from payouts.temporal.client import PayoutsClient


def is_local(temporal: str) -> bool:
    return temporal.rpartition(":")[0] in LOOPBACK


def embedded_stack(
    settings: Settings,
    temporal: str,
    policy: Policy | None = None,
    *,
    payload_key: str | None = None,
) -> Stack:
    """A worker stack for a server on this machine, with the folder's keys (made on first
    use). A server elsewhere gets no development keys: its stack needs real ones.

    `payload_key` (`id:base64`) becomes the folder's payload key when it has none yet: the
    tests and benchmarks share one with clients built before the stack."""
    if is_local(temporal):
        if payload_key is not None:
            path = keys_dir(settings) / "payload.keys"
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                path.touch(mode=0o600)
                path.write_text(payload_key)
        ensure_embedded_keys(settings, policy or settings.load_policy(), temporal)
    return Stack(settings, policy, deployment=Deployment(settings, temporal))


def platform_client(stack: Stack, client: Client, task_queue: str | None = None) -> PayoutsClient:
    """The platform's client, signing with the stack's platform key; reviewers' decisions
    are signed with the folder's reviewer keys (the embedded stack only)."""
    dep = stack.deployment
    return PayoutsClient(
        client,
        policy=stack.policy,
        task_queue=task_queue or stack.settings.task_queue,
        platform_key=dep.platform_key(),
        keyring=dep.reviewer_key if dep.embedded else None,
    )
