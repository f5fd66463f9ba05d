"""The platform's side: start a cash-out through the client SDK and print its ticket.

    python starter.py USER AMOUNT --method wallet --destination ana@example.com \\
        [--currency USD] [--holder NAME] [--request-id ID] [--wait]

Connection settings come from Temporal's environment configuration (default
localhost:7233); the policy and task queue from PAYOUTS_* settings. The request is signed
with the platform's key (PAYOUTS_PLATFORM_KEY_FILE, or in the embedded stack the one
`payouts up` generated): the worker admits nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import uuid

from payouts.config.settings import Settings
from payouts.domain.money import parse_micros
from payouts.errors import PayoutError
from payouts.security.deployment import Deployment
from payouts.temporal.client import PayoutsClient
from payouts.temporal.codec import converter_for
from payouts.temporal.connection import connect_config


async def start(args: argparse.Namespace) -> dict[str, object]:
    deployment = Deployment(Settings(), connect_config()["target_host"])
    deployment.require("payload_keys")
    settings = deployment.settings
    client = await PayoutsClient.connect(
        policy=deployment.policy(settings.load_policy()),
        task_queue=settings.task_queue,
        converter=converter_for(settings),
        platform_key=deployment.platform_key(),
    )
    ticket = await client.request_cashout(
        request_id=args.request_id or uuid.uuid4().hex[:16],
        user_id=args.user,
        amount=parse_micros(args.amount, field="AMOUNT", allow_zero=False),
        currency=args.currency,
        method=args.method,
        destination=args.destination,
        holder=args.holder,
    )
    answer: dict[str, object] = {
        "request_id": ticket.request_id,
        "workflow_id": ticket.workflow_id,
        "existing": ticket.existing,
        "quote": ticket.quote.model_dump(mode="json"),
    }
    if args.wait:
        status = await client.wait(ticket.request_id)
        answer["stage"] = status.stage.value
        answer["outcome"] = status.outcome
    return answer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Start a cash-out through the Payouts client.")
    parser.add_argument("user")
    parser.add_argument("amount", help="decimal amount, e.g. 12.50")
    parser.add_argument("--method", required=True, choices=["bank_transfer", "wallet", "gift_card"])
    parser.add_argument("--destination", required=True)
    parser.add_argument("--currency", default="USD")
    parser.add_argument("--holder", default=None)
    parser.add_argument("--request-id", default=None)
    parser.add_argument("--wait", action="store_true")
    args = parser.parse_args(argv)
    try:
        print(json.dumps(asyncio.run(start(args)), indent=2))
        return 0
    except PayoutError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # processes that used the Temporal client can crash at exit (sdk #300)
