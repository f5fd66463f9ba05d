"""Admission: before a cash-out holds anything, the worker checks it came from the platform
and runs on the worker's own rules and quote (`payouts.domain.admission`). A refusal is
written to the security log with what the request claimed. The cash-out's first local
activity (`admit_and_reserve`) runs this, then the reserve.

Two more things happen here, where the worker has the database:

- a cash-out that names a saved destination (`SavedRef`) gets the destination itself and
  the facts its review needs (cool-off, shared, verification) in its admission;
- an automatic cash-out (`origin="auto"`) is admitted only on our sweep's signature (the
  service key) and only as the payee's standing instruction says: their rule for that
  currency exists and names this very destination, or (no rule, and the policy pays
  dormant balances) it goes to their default destination. The sweep's key can pay a payee
  only to a destination they saved.
"""

from __future__ import annotations

from datetime import UTC, datetime

from payouts.domain import admission, trust
from payouts.domain.cashout import CashoutInput, SavedRef
from payouts.domain.messages import Admission, AdmitInput
from payouts.errors import PayoutError
from payouts.payees.profiles import Profiles
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
        profiles: Profiles,
    ) -> None:
        self.db = db
        self.registry = registry
        self.platform_public_key = platform_public_key
        self.service_public_key = service_public_key
        self.profiles = profiles

    def admit(self, inp: AdmitInput) -> Admission:
        cashout = inp.inp
        why = self._signature_refusal(cashout) or admission.refusal(
            cashout, started_at=inp.started_at, registry=self.registry.get
        )
        if why is None and cashout.origin == "auto":
            why = self._standing_instruction_refusal(cashout)
        resolved = facts = None
        if why is None and isinstance(cashout.request.destination, SavedRef):
            try:
                resolved, facts = self.profiles.resolve(
                    cashout.request.user_id, cashout.request.destination.destination_id
                )
            except PayoutError as exc:
                why = exc.message
            else:
                if resolved.method != cashout.request.method.value:
                    why = (
                        f"destination: the saved destination is for {resolved.method}, "
                        f"not {cashout.request.method.value}"
                    )
        if why is not None:
            security_log.record(
                self.db,
                at=datetime.now(UTC),
                actor=f"{'sweep' if cashout.origin == 'auto' else 'platform'} "
                f"(for {cashout.request.user_id})",
                action="start cash-out",
                subject=contract.cashout_id(cashout.request.request_id),
                reason=why,
            )
            return Admission(admitted=False, refusal=why)
        return Admission(
            admitted=True,
            platform_key=self.platform_public_key,
            service_key=self.service_public_key,
            destination=resolved,
            profile=facts,
        )

    def _signature_refusal(self, cashout: CashoutInput) -> str | None:
        if not cashout.platform_signature:
            return "request: not signed by the platform"
        if cashout.origin == "auto":
            signer, message = (
                self.service_public_key,
                trust.auto_request_message(cashout.request, cashout.requested_at),
            )
        else:
            signer, message = (
                self.platform_public_key,
                trust.request_message(cashout.request, cashout.requested_at),
            )
        if not keys.verify(signer, message, cashout.platform_signature):
            who = "the sweep's" if cashout.origin == "auto" else "the platform's"
            return f"request: {who} signature does not verify"
        return None

    def _dormant_refusal(self, cashout: CashoutInput) -> str | None:
        """Without a rule in its currency, an automatic cash-out is a dormant balance's: the
        policy must pay those, and only to the payee's default destination."""
        req = cashout.request
        if self.profiles.policy.automatic.dormant_days is None:
            return f"auto: {req.user_id} has no automatic cash-out in {req.currency}"
        defaults = {d.id for d in self.profiles.view(req.user_id).destinations if d.is_default}
        if not isinstance(req.destination, SavedRef) or req.destination.destination_id not in (
            defaults
        ):
            return "auto: a dormant balance is paid only to the payee's default destination"
        return None

    def _standing_instruction_refusal(self, cashout: CashoutInput) -> str | None:
        req = cashout.request
        rule = next(
            (r for r in self.profiles.view(req.user_id).auto if r.currency == req.currency), None
        )
        if rule is None:
            return self._dormant_refusal(cashout)
        if req.destination != SavedRef(destination_id=rule.destination_id):
            return "auto: not the destination the payee's standing instruction names"
        return None
