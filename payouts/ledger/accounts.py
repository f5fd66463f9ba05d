"""The ledger's accounts: which exist, and their ids.

Per user and currency: `pending` (immature earnings), `available`, `held` (reserved by a
cash-out), and `owed` (what the payee owes from reversed earnings no balance covered: at
or below zero, the database refuses more). Per currency, for the platform (owner
`@platform`): `earnings_funding` (the source of every earning: minus everything ever
earned), `fees`, `payout_clearing` (money handed to the rails) and `reversed_earnings`
(everything ever reversed).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from sqlalchemy import Connection, select

from payouts.store.dialect import Dialect
from payouts.store.tables import Account

PLATFORM = "@platform"
ACCOUNTS = Account.__table__  # type: ignore[attr-defined]


class Kind(StrEnum):
    PENDING = "pending"
    AVAILABLE = "available"
    HELD = "held"
    FUNDING = "earnings_funding"
    FEES = "fees"
    CLEARING = "payout_clearing"
    OWED = "owed"
    REVERSED = "reversed_earnings"


USER_KINDS = (Kind.PENDING, Kind.AVAILABLE, Kind.HELD)  # created together; `owed` on demand
PLATFORM_KINDS = (Kind.FUNDING, Kind.FEES, Kind.CLEARING, Kind.REVERSED)

AccountKey = tuple[str, str, str]  # (owner, kind, currency)


def owner_of(kind: Kind, user_id: str) -> str:
    """Whose account of `kind` a user's posting touches: theirs, or the platform's."""
    return PLATFORM if kind in PLATFORM_KINDS else user_id


class AccountIds:
    """Account ids by (owner, kind, currency), creating missing accounts on the way.

    Ids are cached per process once the transaction that saw them committed: `ensure`
    collects the ones it meets into `fresh`, and the caller `remember`s them after commit.
    """

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._known: dict[AccountKey, int] = {}

    def remember(self, fresh: dict[AccountKey, int]) -> None:
        self._known.update(fresh)

    def ensure(
        self, conn: Connection, keys: Iterable[AccountKey], fresh: dict[AccountKey, int]
    ) -> dict[AccountKey, int]:
        wanted_keys = set(keys)
        found: dict[AccountKey, int] = {}
        missing: list[AccountKey] = []
        for k in wanted_keys:
            acc = self._known.get(k) or fresh.get(k)
            if acc is None:
                missing.append(k)
            else:
                found[k] = acc
        if not missing:
            return found
        # A user's three accounts are always created together.
        wanted = set(missing)
        for owner, _kind, cur in missing:
            if owner != PLATFORM:
                wanted.update((owner, k, cur) for k in USER_KINDS)
        ordered = sorted(wanted)
        self.dialect.insert_new_accounts(conn, ACCOUNTS, [(o, str(k), c) for o, k, c in ordered])
        a = ACCOUNTS.c
        rows = self.dialect.select_where_in(
            conn,
            select(a.id, a.owner, a.kind, a.currency),
            a.owner,
            sorted({o for o, _, _ in ordered}),
        )
        for acc_id, owner, kind, cur in rows:
            key = (owner, kind, cur)
            if key in wanted:
                fresh[key] = acc_id
                if key in wanted_keys:
                    found[key] = acc_id
        return found
