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
from payouts.security.deployment import LOOPBACK, Deployment, ensure_embedded_keys
from payouts.temporal.client import PayoutsClient


def is_local(temporal: str) -> bool:
    return temporal.rpartition(":")[0] in LOOPBACK


def embedded_stack(settings: Settings, temporal: str, policy: Policy | None = None) -> Stack:
    """A worker stack for a server on this machine, with the folder's keys (made on first
    use). A server elsewhere gets no development keys: its stack needs real ones."""
    if is_local(temporal):
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
