"""What every platform action the client sends goes through: its model is checked (a bad
field is an `InvalidInput` naming it), then signed with the platform's key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from payouts.errors import InvalidInput
from payouts.security.keys import SigningKey

M = TypeVar("M", bound=BaseModel)


def checked(model: type[M], **fields: Any) -> M:
    try:
        return model(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(f"{where}: {first['msg']}", field=where) from None


def signed(request: M, key: SigningKey | None, message: Callable[[M], bytes]) -> M:
    """The request with the platform's signature over `message(request)` (unsigned without
    a key: the worker then refuses it, with the reason)."""
    if key is None:
        return request
    return request.model_copy(update={"platform_signature": key.sign(message(request))})
