"""How the cash-out calls its activities: by typed reference, with the timeouts and retries
of each kind of step.

A database step is a local activity (short, idempotent by its key, retried quickly); a call
to the outside world is a regular activity that heartbeats, so a lost worker is noticed in
seconds and another one picks it up.
"""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, NoReturn, Protocol, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from payouts.domain.carried import Checkpoint
    from payouts.domain.cashout import (
        BankAccount,
        CashoutInput,
        GiftCardDelivery,
        Stage,
        WalletAccount,
    )
    from payouts.domain.messages import (
        Admission,
        BankEvent,
        NotifyInput,
        RiskResult,
        WalletEvent,
    )
    from payouts.domain.progress import Progress
    from payouts.domain.trust import rail_event_message
    from payouts.security import keys
    from payouts.temporal import search
    from payouts.temporal.interfaces import CashoutSteps

P = TypeVar("P")
R = TypeVar("R")
T = TypeVar("T")

LOCAL_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10)
)
REMOTE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=60)
)


def local(step: Callable[[Any, P], R], arg: P) -> Awaitable[R]:
    """A database step: a local activity, idempotent by its key."""
    return workflow.execute_local_activity_method(
        step, arg, start_to_close_timeout=timedelta(seconds=30), retry_policy=LOCAL_RETRY
    )


def remote(step: Callable[[CashoutSteps, P], Awaitable[R]], arg: P) -> Awaitable[R]:
    """A call to the outside world: a regular activity that heartbeats."""
    return workflow.execute_activity_method(
        step,
        arg,
        start_to_close_timeout=timedelta(minutes=2),
        heartbeat_timeout=timedelta(seconds=5),
        retry_policy=REMOTE_RETRY,
    )


async def resumed(condition: Callable[[], bool]) -> None:
    """`workflow.wait_condition` for the cash-out's own coroutines: a wait that began before
    a Temporal cancellation gives way to it (the SDK raises CancelledError when it ends);
    the cancellation is the pipeline's to refuse, so these just wait again."""
    while True:
        try:
            await workflow.wait_condition(condition)
            return
        except asyncio.CancelledError:
            continue


def reason(err: FailureError) -> str:
    """The innermost message: an activity error wraps the domain's ApplicationError (local
    activity failures arrive as that ApplicationError itself)."""
    inner: object = err
    while getattr(inner, "cause", None) is not None:
        inner = getattr(inner, "cause")  # noqa: B009
    return str(getattr(inner, "message", inner))


def error_types(err: FailureError) -> set[str]:
    """The types of the application errors in the chain (a domain error's code is one)."""
    found: set[str] = set()
    inner: object = err
    while inner is not None:
        if getattr(inner, "type", None):
            found.add(str(getattr(inner, "type")))  # noqa: B009
        inner = getattr(inner, "cause", None)
    return found


class Rolls(Protocol):
    """Continue-as-new at the long waits (`workflows.cashout_roll.Roller`)."""

    at: Checkpoint | None  # where this run resumed, if it did

    def due(self) -> bool: ...

    def roll(self, at: Checkpoint) -> Exception: ...


class Run(Protocol):
    """What the parts of a cash-out (identity, rails) need from the workflow that runs them."""

    inp: CashoutInput
    progress: Progress
    signed: bool  # admitted since signatures: decisions, cancels, rail events are checked
    trust: Admission | None  # what admission vouched for (the keys)

    @property
    def destination(self) -> BankAccount | WalletAccount | GiftCardDelivery: ...

    @property
    def roller(self) -> Rolls: ...

    def step(self, make: Callable[[], Awaitable[T]], *, local: bool = False) -> Awaitable[T]: ...

    async def fall_back(self, why: str) -> None:
        """Instant refused by the rail: go on at standard speed and fee."""
        ...

    def enter(self, stage: Stage, note: str) -> None: ...

    def note(self, text: str) -> None: ...

    def key(self, step: str) -> str: ...

    def hold_id(self) -> str: ...

    def notification(self, stage: Stage, outcome: str) -> NotifyInput: ...

    async def end(self, stage: Stage, note: str) -> NoReturn: ...

    async def stop_if_cancelled(self) -> None: ...

    async def wait_unless_cancelled(
        self, duration: timedelta, checkpoint: Checkpoint | None = None
    ) -> None: ...

    def refused(self, what: str, why: str) -> None:
        """Note and audit something that came in and does not count."""
        ...


def rail_event_refusal(run: Run, rail: str, event: BankEvent | WalletEvent) -> str | None:
    """Why a rail's event may not count for this cash-out: it must be signed by our rail
    components (the service key admission vouched for) for this very workflow."""
    trusted = run.trust
    if trusted is None or not trusted.service_key:
        return "the cash-out is not admitted"
    message = rail_event_message(workflow.info().workflow_id, rail, event.model_dump(mode="json"))
    if not keys.verify(trusted.service_key, message, event.signature):
        return "not signed by our rail components for this cash-out"
    return None


class Published:
    """What the search attributes say, so that only changes are upserted (each upsert is
    a history event and a visibility write)."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self.score: int | None = None

    def publish(self, stage: Stage, risk: RiskResult | None) -> None:
        updates: list[SearchAttributeUpdate[Any]] = []
        if stage != self.stage:
            updates.append(search.STAGE.value_set(stage.value))
            self.stage = stage
        if risk is not None and risk.score != self.score:
            updates.append(search.RISK.value_set(risk.score))
            self.score = risk.score
        if updates:
            workflow.upsert_search_attributes(updates)
