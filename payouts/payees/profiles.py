"""Payout profiles in the ledger database: saved destinations (sealed) and automatic
cash-out rules, as `payouts.domain.profiles` describes them.

Every change is one write transaction and idempotent: saving the same destination again
changes nothing (its id is derived from the payee and the account), and a change recorded
once is not recorded twice. The platform hears of every change that adds, changes or
removes a destination ("payout details changed", a signed webhook from the outbox).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import Connection, Row, and_, delete, insert, literal, select, tuple_, update

from payouts.domain.cashout import Destination, SavedRef, mask
from payouts.domain.policy import Method, Policy
from payouts.domain.profiles import (
    CHANGED,
    AutoRule,
    AutoStatus,
    Every,
    PayeeCheck,
    PayeeProfile,
    ProfileAction,
    ProfileChange,
    ProfileFacts,
    SavedDestination,
    Verification,
    auto_due,
    cooloff_end,
    destination_id,
    next_scheduled,
)
from payouts.domain.requests import destination_for
from payouts.errors import InvalidInput, NotFound
from payouts.ledger.risk_facts import destination_fingerprint
from payouts.payees.tables import ACCOUNTS as _ACCOUNTS
from payouts.payees.tables import AUTO as _AUTO
from payouts.payees.tables import PROFILES as _PROFILE
from payouts.payees.tables import USED as _USED
from payouts.security.vault import Vault
from payouts.store import outbox
from payouts.store.database import Database
from payouts.store.tables import to_epoch_us

_DESTINATION: TypeAdapter[Destination] = TypeAdapter(Destination)


class Profiles:
    def __init__(
        self,
        db: Database,
        *,
        vault: Vault,
        fingerprint_key: bytes,
        policy: Policy,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.db = db
        self.vault = vault
        self.fingerprint_key = fingerprint_key
        self.policy = policy
        self.clock = clock

    # ------------------------------------------------------------------ changes

    def apply(self, change: ProfileChange) -> str:
        """Apply one (already authenticated) change; returns the destination id it is
        about. Invalid ones raise `InvalidInput` naming the field, with nothing written."""
        now = self.clock()
        if change.action is ProfileAction.SAVE:
            return self._save(change, now)
        if change.action is ProfileAction.AUTO:
            assert change.auto is not None
            self._set_auto(change.user_id, change.auto, now)
            return change.auto.destination_id
        if change.action is ProfileAction.STOP_AUTO:
            with self.db.write_connection() as conn:
                conn.execute(
                    delete(_AUTO).where(
                        _AUTO.c.user_id == change.user_id, _AUTO.c.currency == change.currency
                    )
                )
            return ""
        with self.db.write_connection() as conn:
            if change.action is ProfileAction.REMOVE and outbox.recorded(conn, _event(change)):
                return change.destination_id  # applied before (a local activity run again)
            row = self._active(conn, change.user_id, change.destination_id)
            if change.action is ProfileAction.REMOVE:
                conn.execute(
                    update(_PROFILE)
                    .where(_PROFILE.c.id == row.id)
                    .values(status="removed", is_default=False, changed_at=to_epoch_us(now))
                )
                conn.execute(delete(_AUTO).where(_AUTO.c.destination_id == row.id))
                self._tell(conn, change, row.id, "removed", now)
            else:
                self._make_default(conn, change.user_id, row.method, row.id)
        return str(row.id)

    def _save(self, change: ProfileChange, now: datetime) -> str:
        if change.destination is None or isinstance(change.destination, SavedRef):
            raise InvalidInput(
                "destination: a destination to save is required", field="destination"
            )
        method = Method(change.destination.method)
        dest = destination_for(method, change.destination)  # the worker's own checks
        if not self.policy.methods.get(method) or not self.policy.methods[method].enabled:
            raise InvalidInput(f"destination: {method.value} is not offered", field="destination")
        fingerprint = destination_fingerprint(dest, self.fingerprint_key)
        dst = destination_id(change.user_id, fingerprint)
        hours = self.policy.methods[method].cooloff_hours
        with self.db.write_connection() as conn:
            found = conn.execute(select(_PROFILE).where(_PROFILE.c.id == dst)).first()
            unchanged = (
                found is not None
                and found.status == "active"
                and json.loads(self.vault.decrypt(found.sealed)) == dest.model_dump(mode="json")
            )
            if unchanged:
                pass  # saved before, unchanged: no new cool-off
            else:
                values = {
                    "sealed": self.vault.encrypt(json.dumps(dest.model_dump(mode="json"))),
                    "shown": mask(dest),
                    "status": "active",
                    "changed_at": to_epoch_us(now),
                    "cooloff_until": to_epoch_us(cooloff_end(now, hours)),
                    "verification": None,  # a changed destination is verified again
                    "verified_name": None,
                    "verified_at": None,
                }
                if found is None:
                    conn.execute(
                        insert(_PROFILE).values(
                            id=dst, user_id=change.user_id, method=method.value,
                            fingerprint=fingerprint, is_default=False,
                            created_at=to_epoch_us(now), **values,
                        )
                    )  # fmt: skip
                else:
                    conn.execute(update(_PROFILE).where(_PROFILE.c.id == dst).values(**values))
                self._tell(conn, change, dst, "saved" if found is None else "changed", now)
            if change.make_default:
                self._make_default(conn, change.user_id, method.value, dst)
        return dst

    def _make_default(self, conn: Connection, user_id: str, method: str, dst: str) -> None:
        mine = and_(_PROFILE.c.user_id == user_id, _PROFILE.c.method == method)
        conn.execute(update(_PROFILE).where(mine).values(is_default=False))
        conn.execute(update(_PROFILE).where(_PROFILE.c.id == dst).values(is_default=True))

    def _set_auto(self, user_id: str, rule: AutoRule, now: datetime) -> None:
        cur = self.policy.currencies.get(rule.currency)
        if cur is None:
            raise InvalidInput(f"auto.currency: {rule.currency!r} is not offered", field="auto")
        for field, amount in (("threshold", rule.threshold), ("minimum", rule.minimum or None)):
            if amount is not None and amount < cur.min_cashout:
                raise InvalidInput(
                    f"auto.{field}: below the policy minimum cash-out for {rule.currency}",
                    field=f"auto.{field}",
                )
        with self.db.write_connection() as conn:
            self._active(conn, user_id, rule.destination_id)
            conn.execute(
                delete(_AUTO).where(_AUTO.c.user_id == user_id, _AUTO.c.currency == rule.currency)
            )
            conn.execute(
                insert(_AUTO).values(
                    user_id=user_id, currency=rule.currency, destination_id=rule.destination_id,
                    threshold=rule.threshold, every=rule.every.value if rule.every else None,
                    minimum=rule.minimum, changed_at=to_epoch_us(now),
                )
            )  # fmt: skip

    def _active(self, conn: Connection, user_id: str, dst: str) -> Row[Any]:
        row = conn.execute(
            select(_PROFILE).where(
                _PROFILE.c.id == dst, _PROFILE.c.user_id == user_id, _PROFILE.c.status == "active"
            )
        ).first()
        if row is None:
            raise NotFound(f"destination_id: {dst!r} is not a saved destination of {user_id!r}")
        return row

    def _tell(
        self, conn: Connection, change: ProfileChange, dst: str, what: str, now: datetime
    ) -> None:
        outbox.record_in(
            conn,
            event_id=_event(change),
            request_id=change.change_id,
            user_id=change.user_id,
            stage=CHANGED,
            payload={
                "stage": CHANGED,
                "request_id": change.change_id,
                "user_id": change.user_id,
                "destination_id": dst,
                "change": what,
            },
            at=now,
        )

    # ------------------------------------------------------------------ reads

    def view(self, user_id: str) -> PayeeProfile:
        with self.db.read_connection() as conn:
            rows = conn.execute(
                select(_PROFILE)
                .where(_PROFILE.c.user_id == user_id, _PROFILE.c.status == "active")
                .order_by(_PROFILE.c.created_at, _PROFILE.c.id)
            ).all()
            autos = conn.execute(
                select(_AUTO).where(_AUTO.c.user_id == user_id).order_by(_AUTO.c.currency)
            ).all()
            shared = self._shared(conn, user_id, [r.fingerprint for r in rows])
            balances: dict[str, int] = dict(
                conn.execute(
                    select(_ACCOUNTS.c.currency, _ACCOUNTS.c.balance).where(
                        _ACCOUNTS.c.owner == user_id, _ACCOUNTS.c.kind == "available"
                    )
                ).all()
            )
        rules = [rule_of(a) for a in autos]
        now = self.clock()
        return PayeeProfile(
            user_id=user_id,
            destinations=tuple(
                SavedDestination(
                    id=r.id,
                    method=Method(r.method),
                    shown=r.shown,
                    is_default=r.is_default,
                    changed_at=r.changed_at,
                    cooloff_until=r.cooloff_until,
                    verification=Verification(r.verification) if r.verification else None,
                    verified_name=r.verified_name or "",
                    shared=r.fingerprint in shared,
                )
                for r in rows
            ),
            auto=tuple(rules),
            auto_status=tuple(status_of(r, int(balances.get(r.currency, 0)), now) for r in rules),
        )

    def resolve(self, user_id: str, dst: str) -> tuple[Destination, ProfileFacts]:
        """The destination a cash-out names by id, and what its review must know."""
        with self.db.read_connection() as conn:
            row = self._active(conn, user_id, dst)
            shared = self._shared(conn, user_id, [row.fingerprint])
        destination = _DESTINATION.validate_python(json.loads(self.vault.decrypt(row.sealed)))
        return destination, ProfileFacts(
            destination_id=row.id,
            changed_at=row.changed_at,
            cooloff_until=row.cooloff_until,
            shared=bool(shared),
            verification=Verification(row.verification) if row.verification else None,
            verified_name=row.verified_name or "",
        )

    def _shared(self, conn: Connection, user_id: str, fingerprints: list[str]) -> set[str]:
        """Which of these accounts another payee saved or was paid to."""
        if not fingerprints:
            return set()
        saved = select(_PROFILE.c.fingerprint).where(
            _PROFILE.c.fingerprint.in_(fingerprints), _PROFILE.c.user_id != user_id
        )
        used = select(_USED.c.fingerprint).where(
            _USED.c.fingerprint.in_(fingerprints), _USED.c.user_id != user_id
        )
        return set(conn.execute(saved.union(used)).scalars())

    def kept_verification(self, user_id: str, dst: str, changed_at: datetime) -> PayeeCheck | None:
        """The bank's answer kept for this destination, if it is unchanged since."""
        with self.db.read_connection() as conn:
            row = self._active(conn, user_id, dst)
        if row.verification is None or row.changed_at != changed_at:
            return None
        result = Verification(row.verification)
        return PayeeCheck(result=result, bank_name=row.verified_name or "", kept=True)

    def record_verification(
        self, user_id: str, dst: str, changed_at: datetime, check: PayeeCheck, at: datetime
    ) -> None:
        """Keep the bank's answer with the destination (unless it changed meanwhile):
        unchanged, it is not asked again."""
        with self.db.write_connection() as conn:
            conn.execute(
                update(_PROFILE)
                .where(
                    _PROFILE.c.id == dst,
                    _PROFILE.c.user_id == user_id,
                    _PROFILE.c.changed_at == to_epoch_us(changed_at),
                )
                .values(verification=check.result.value,
                        verified_name=check.bank_name[:140] or None, verified_at=to_epoch_us(at))
            )  # fmt: skip


def _event(change: ProfileChange) -> str:
    """The outbox event of a change (one per change: its id is the change's)."""
    return f"profile-{change.change_id}"


@dataclass(frozen=True)
class OptedIn:
    """One row of the sweep: a payee's rule, the method of its destination, and their
    matured available balance in its currency."""

    user_id: str
    rule: AutoRule
    method: Method
    available: int

    @property
    def cursor(self) -> str:
        return f"{self.user_id}|{self.rule.currency}"


def auto_page(db: Database, after: str, limit: int) -> list[OptedIn]:
    """The next `limit` standing instructions after the cursor `user|currency`, in order,
    with what each payee has available (one indexed query per page)."""
    user, _, currency = after.partition("|")
    available = _ACCOUNTS.alias("available")
    stmt = (
        select(_AUTO, _PROFILE.c.method, available.c.balance)
        .join(
            _PROFILE, and_(_PROFILE.c.id == _AUTO.c.destination_id, _PROFILE.c.status == "active")
        )
        .outerjoin(
            available,
            and_(
                available.c.owner == _AUTO.c.user_id,
                available.c.owner >= literal(user),  # (PostgreSQL: the index from the cursor)
                available.c.kind == "available",
                available.c.currency == _AUTO.c.currency,
            ),
        )
        .where(tuple_(_AUTO.c.user_id, _AUTO.c.currency) > tuple_(literal(user), literal(currency)))
        .order_by(_AUTO.c.user_id, _AUTO.c.currency)
        .limit(limit)
    )
    with db.read_connection() as conn:
        rows = conn.execute(stmt).all()
    return [OptedIn(r.user_id, rule_of(r), Method(r.method), int(r.balance or 0)) for r in rows]


def status_of(rule: AutoRule, available: int, now: datetime) -> AutoStatus:
    due, why, _ = auto_due(rule, available, now)
    if due:
        why = f"due: {why}; the next sweep pays it"
    elif rule.threshold is not None and rule.every is not None:
        why += f"; next scheduled day {next_scheduled(rule, now):%Y-%m-%d}"
    return AutoStatus(currency=rule.currency, available=available, due=due, explanation=why)


def rule_of(row: Row[Any]) -> AutoRule:
    return AutoRule(
        destination_id=row.destination_id,
        currency=row.currency,
        threshold=row.threshold,
        every=Every(row.every) if row.every else None,
        minimum=row.minimum,
    )
