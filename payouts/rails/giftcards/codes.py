"""Gift card codes on our side: stored encrypted, shown to the payee exactly once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update

from payouts.errors import InvalidState, NotFound
from payouts.rails.giftcards.port import IssuedCard
from payouts.security.vault import Vault
from payouts.store.database import Database
from payouts.store.tables import GiftCard, to_epoch_us

_CARD = GiftCard.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class RevealedCard:
    face_value: int
    currency: str
    code: str


def store(
    db: Database,
    vault: Vault,
    *,
    request_id: str,
    user_id: str,
    cards: list[IssuedCard],
    at: datetime,
) -> list[str]:
    """Keep the codes encrypted (idempotent per request and card); returns their last 4."""
    with db.write_connection() as conn:
        have = {
            r.seq for r in conn.execute(select(_CARD.c.seq).where(_CARD.c.request_id == request_id))
        }
        for card in cards:
            if card.seq in have:
                continue
            conn.execute(
                insert(_CARD).values(
                    request_id=request_id,
                    user_id=user_id,
                    seq=card.seq,
                    currency=card.currency,
                    face_value=card.face_value,
                    provider_ref=card.provider_ref,
                    code_ciphertext=vault.encrypt(card.code),
                    last4=card.code[-4:],
                    issued_at=to_epoch_us(at),
                )
            )
    return [c.code[-4:] for c in cards]


def reveal(
    db: Database, vault: Vault, *, request_id: str, user_id: str, at: datetime
) -> list[RevealedCard]:
    """The codes, decrypted, the first time the payee asks; refused ever after."""
    with db.write_connection() as conn:
        rows = conn.execute(
            select(_CARD).where(_CARD.c.request_id == request_id).order_by(_CARD.c.seq)
        ).all()
        if not rows or rows[0].user_id != user_id:
            raise NotFound(f"no gift cards for request {request_id!r} and user {user_id!r}")
        shown = [r.revealed_at for r in rows if r.revealed_at is not None]
        if shown:
            raise InvalidState(
                f"the gift card codes of {request_id!r} were already shown on "
                f"{min(shown):%Y-%m-%d %H:%M} UTC; they are shown once"
            )
        cards = [
            RevealedCard(r.face_value, r.currency, vault.decrypt(r.code_ciphertext)) for r in rows
        ]
        conn.execute(
            update(_CARD)
            .where(_CARD.c.request_id == request_id)
            .values(revealed_at=to_epoch_us(at))
        )
    return cards
