"""The gift card provider: issues cards of given face values, idempotent by key.

A real adapter is the vendor's order API, keeping the idempotency key; the codes it
returns go straight into our vault (`rails.giftcards.codes`), never into history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class IssuedCard:
    seq: int
    provider_ref: str
    currency: str
    face_value: int
    code: str


@dataclass(frozen=True)
class CardLine:
    reference: str
    provider_ref: str
    currency: str
    face_value: int
    day: str


class GiftCardProvider(Protocol):
    def issue(
        self, *, key: str, reference: str, currency: str, faces: tuple[int, ...], at: datetime
    ) -> list[IssuedCard]:
        """Issue one card per face value; the same key answers the same cards."""
        ...

    def statement(self, day: str | None = None) -> list[CardLine]:
        """Every card issued (on `day`, YYYY-MM-DD), for reconciliation."""
        ...
