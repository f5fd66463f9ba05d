"""How much of what a caller sends may reach a cash-out's state: its history must stay
bounded whatever anyone signals.

Anyone with Temporal access can signal any payload. A payload over `MAX_PAYLOAD` (as JSON)
is dropped at the handler and only counted; strings that do reach the state are clipped
(`shown`); refusals are kept up to a cap and counted beyond it, while what counts (an
accepted decision, a cancel, a rail's genuine answer) is always kept.
"""

from __future__ import annotations

from pydantic import BaseModel

MAX_PAYLOAD = 16 * 1024  # bytes of JSON in one signal or update payload
MAX_NAME = 64  # characters of a name shown in a note or a refusal
MAX_REASON = 500  # characters of a reason kept
MAX_NOTED_REFUSALS = 50  # refusals in the timeline and the reviews list; then counted
MAX_AUDITED_REFUSALS = 200  # refused decisions written to the audit table; then counted
MAX_ANSWERS = 200  # signalled decisions the `answer` query remembers (the newest)


def shown(value: object, limit: int = MAX_NAME) -> str:
    """A caller's string, quoted and clipped, for a note or a refusal."""
    text = str(value)
    return repr(text[:limit] + ("…" if len(text) > limit else ""))


def oversized(payload: BaseModel) -> bool:
    """Too large to let into the state (its JSON is over `MAX_PAYLOAD` bytes)?"""
    return len(payload.model_dump_json()) > MAX_PAYLOAD
