"""Rules for identifiers that come from outside (the platform, files, the CLI).

Identifiers are plain ASCII on purpose: no look-alike letters, no invisible characters, no
right-to-left overrides can make two different ids look the same to an operator.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from payouts.errors import InvalidInput

_USER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}", re.ASCII)
_EVENT_ID = re.compile(r"[\x21-\x7e]{1,200}", re.ASCII)
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}", re.ASCII)


def user_id(value: object, *, field: str = "user_id") -> str:
    if not isinstance(value, str) or not _USER_ID.fullmatch(value):
        raise InvalidInput(
            f"{field}: {value!r} must be 1-128 ASCII letters, digits or '_.:-', "
            "starting with a letter or digit",
            field=field,
        )
    return value


def event_id(value: object, *, field: str = "event_id") -> str:
    if not isinstance(value, str) or not _EVENT_ID.fullmatch(value):
        raise InvalidInput(
            f"{field}: {value!r} must be 1-200 visible ASCII characters (no spaces)",
            field=field,
        )
    return value


def request_id(value: object, *, field: str = "request_id") -> str:
    if not isinstance(value, str) or not _REQUEST_ID.fullmatch(value):
        raise InvalidInput(
            f"{field}: {value!r} must be 1-100 ASCII letters, digits or '_.:-', "
            "starting with a letter or digit",
            field=field,
        )
    return value


def timestamp(value: object, *, field: str, now: datetime, max_skew: timedelta) -> datetime:
    """An ISO 8601 time with a timezone, not later than `now + max_skew`."""
    if not isinstance(value, str):
        raise InvalidInput(f"{field}: expected an ISO 8601 time, got {value!r}", field=field)
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(
            f"{field}: {value!r} is not an ISO 8601 time such as 2026-11-25T08:00:00Z",
            field=field,
        ) from None
    if parsed.tzinfo is None:
        raise InvalidInput(
            f"{field}: {value!r} has no timezone; add 'Z' or an offset such as +02:00",
            field=field,
        )
    parsed = parsed.astimezone(UTC)
    if parsed > now + max_skew:
        raise InvalidInput(f"{field}: {value!r} is in the future", field=field)
    if parsed.year < 2000:
        raise InvalidInput(f"{field}: {value!r} is before the year 2000", field=field)
    return parsed
