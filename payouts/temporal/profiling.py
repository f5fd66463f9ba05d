"""What the platform does with payout profiles through the client: save, remove and choose
destinations, set or stop automatic cash-outs, read a payee's profile. Each is a change the
platform signs (`trust.profile_message`); the worker applies it in a `PayeeProfileWorkflow`
of its own (whose history is its audit trail), or refuses it with the reason."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from payouts.domain import trust, validation
from payouts.domain.money import parse_micros
from payouts.domain.policy import Method
from payouts.domain.profiles import (
    AutoRule,
    Every,
    PayeeProfile,
    ProfileAction,
    ProfileChange,
    ProfileResult,
)
from payouts.domain.requests import destination_for, method_of
from payouts.errors import InvalidInput, ProfileRefused
from payouts.security.keys import SigningKey
from payouts.temporal import contract
from payouts.temporal.contract import Workflow
from payouts.temporal.platform_requests import signed

if TYPE_CHECKING:
    from temporalio.client import Client


class ProfileCalls:
    """The profile half of `PayoutsClient` (which provides the transport and the key)."""

    client: Client
    task_queue: str
    platform_key: SigningKey | None

    async def save_destination(
        self,
        user_id: str,
        method: Method | str,
        destination: object,
        *,
        holder: str | None = None,
        bic: str | None = None,
        default: bool = False,
    ) -> str:
        """Save a destination (checked as a cash-out's would be); returns its id. Saving
        it again changes nothing; a changed one starts a new cool-off."""
        dest = destination_for(method_of(method), destination, holder=holder, bic=bic)
        result = await self.change_profile(
            user_id, ProfileAction.SAVE, destination=dest, make_default=default
        )
        return result.destination_id

    async def remove_destination(self, user_id: str, destination_id: str) -> PayeeProfile:
        return await self._profile_of(user_id, ProfileAction.REMOVE, destination_id=destination_id)

    async def make_default(self, user_id: str, destination_id: str) -> PayeeProfile:
        return await self._profile_of(
            user_id, ProfileAction.MAKE_DEFAULT, destination_id=destination_id
        )

    async def set_auto_cashout(
        self,
        user_id: str,
        *,
        destination_id: str,
        currency: str,
        threshold: str | None = None,
        every: str | None = None,
        minimum: str = "0",
    ) -> PayeeProfile:
        """Pay out automatically: at `threshold` (a decimal amount), `every` week or month
        (with at least `minimum`), or both."""
        try:
            rule = AutoRule(
                destination_id=destination_id,
                currency=currency.upper(),
                threshold=parse_micros(threshold, field="threshold") if threshold else None,
                every=Every(every) if every else None,
                minimum=parse_micros(minimum, field="minimum"),
            )
        except ValidationError as exc:
            why = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
            raise InvalidInput(why, field="auto") from None
        except ValueError as exc:  # every: not weekly or monthly
            raise InvalidInput(f"auto.every: {exc}", field="auto.every") from None
        return await self._profile_of(user_id, ProfileAction.AUTO, auto=rule)

    async def stop_auto_cashout(self, user_id: str, currency: str) -> PayeeProfile:
        return await self._profile_of(user_id, ProfileAction.STOP_AUTO, currency=currency.upper())

    async def payee_profile(self, user_id: str) -> PayeeProfile:
        """Saved destinations (masked), automatic cash-outs and where the payee stands."""
        return await self._profile_of(user_id, ProfileAction.VIEW)

    async def _profile_of(self, user_id: str, action: ProfileAction, **fields: Any) -> PayeeProfile:
        result = await self.change_profile(user_id, action, **fields)
        assert result.profile is not None
        return result.profile

    async def change_profile(
        self, user_id: str, action: ProfileAction, *, change_id: str | None = None, **fields: Any
    ) -> ProfileResult:
        """Sign and apply one change; a refusal raises `ProfileRefused` with the reason. A
        change re-sent with its `change_id` answers the first one's result."""
        change = ProfileChange(
            change_id=change_id or uuid.uuid4().hex[:20],
            user_id=validation.user_id(user_id),
            action=action,
            requested_at=datetime.now(UTC),
            **fields,
        )
        change = signed(change, self.platform_key, trust.profile_message)
        wid = contract.profile_change_id(change.change_id)
        try:
            handle = await self.client.start_workflow(
                Workflow.PROFILE,
                change,
                id=wid,
                task_queue=self.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                result_type=ProfileResult,
            )
        except WorkflowAlreadyStartedError:
            handle = self.client.get_workflow_handle(wid, result_type=ProfileResult)
        result: ProfileResult = await handle.result()
        if not result.applied:
            raise ProfileRefused(result.refusal)
        return result
