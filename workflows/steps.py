"""How the cash-out calls its activities: by typed reference, with the timeouts and retries
of each kind of step.

A database step is a local activity (short, idempotent by its key, retried quickly); a call
to the outside world is a regular activity that heartbeats, so a lost worker is noticed in
seconds and another one picks it up.
"""

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from payouts.temporal.interfaces import CashoutSteps

P = TypeVar("P")
R = TypeVar("R")

LOCAL_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10)
)
REMOTE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=60)
)


def local(step: Callable[[CashoutSteps, P], R], arg: P) -> Awaitable[R]:
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


def reason(err: FailureError) -> str:
    """The innermost message: an activity error wraps the domain's ApplicationError (local
    activity failures arrive as that ApplicationError itself)."""
    inner: object = err
    while getattr(inner, "cause", None) is not None:
        inner = getattr(inner, "cause")  # noqa: B009
    return str(getattr(inner, "message", inner))
