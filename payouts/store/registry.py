"""The policy versions this service has run under, kept in the ledger database so that
every worker admits what any of them quoted (a quote stays honoured for a while after the
policy changes, and a rolling deploy runs two versions at once)."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import select

from payouts.domain.policy import Policy
from payouts.store.database import Database
from payouts.store.tables import PolicyVersion, to_epoch_us

VERSIONS = PolicyVersion.__table__  # type: ignore[attr-defined]


class PolicyRegistry:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._known: dict[str, Policy] = {}

    def register(self, policy: Policy, at: datetime) -> None:
        """Record `policy` (once per version)."""
        body = json.dumps(policy.model_dump(mode="json"), sort_keys=True)
        with self.db.write_connection() as conn:
            conn.execute(
                self.db.dialect.insert_new(VERSIONS).values(
                    version=policy.version,
                    name=policy.name[:200],
                    body_json=body,
                    registered_at=to_epoch_us(at),
                )
            )
        self._known[policy.version] = policy

    def get(self, version: str) -> Policy | None:
        """The policy of `version`, or None if this service never ran under it."""
        found = self._known.get(version)
        if found is not None:
            return found
        with self.db.read_connection() as conn:
            body = conn.execute(
                select(VERSIONS.c.body_json).where(VERSIONS.c.version == version)
            ).scalar()
        if body is None:
            return None
        policy = Policy.model_validate(json.loads(body))
        if policy.version != version:  # the stored body must hash to its own version
            return None
        self._known[version] = policy
        return policy
