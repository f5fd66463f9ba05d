"""Admission: before a cash-out holds anything, the worker checks it came from the platform
and runs on the worker's own rules and quote (`payouts.domain.admission`). A refusal is
written to the security log with what the request claimed. The cash-out's first local
activity (`admit_and_reserve`) runs this, then the reserve."""

from __future__ import annotations

from datetime import UTC, datetime

from payouts.domain import admission, trust
from payouts.domain.messages import Admission, AdmitInput
from payouts.security import keys
from payouts.store import security_log
from payouts.store.database import Database
from payouts.store.registry import PolicyRegistry
from payouts.temporal import contract


class Admitter:
    def __init__(
        self,
        *,
        db: Database,
        registry: PolicyRegistry,
        platform_public_key: str,
        service_public_key: str,
    ) -> None:
        self.db = db
        self.registry = registry
        self.platform_public_key = platform_public_key
        self.service_public_key = service_public_key

    def admit(self, inp: AdmitInput) -> Admission:
        cashout = inp.inp
        why: str | None
        if not cashout.platform_signature:
            why = "request: not signed by the platform"
        elif not keys.verify(
            self.platform_public_key,
            trust.request_message(cashout.request, cashout.requested_at),
            cashout.platform_signature,
        ):
            why = "request: the platform's signature does not verify"
        else:
            why = admission.refusal(cashout, started_at=inp.started_at, registry=self.registry.get)
        if why is not None:
            security_log.record(
                self.db,
                at=datetime.now(UTC),
                actor=f"platform (for {cashout.request.user_id})",
                action="start cash-out",
                subject=contract.cashout_id(cashout.request.request_id),
                reason=why,
            )
            return Admission(admitted=False, refusal=why)
        return Admission(
            admitted=True,
            platform_key=self.platform_public_key,
            service_key=self.service_public_key,
        )
