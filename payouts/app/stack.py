"""The composition root: settings -> keys, database, ledger, rails -> activities.

One place decides which adapter serves each port; every process that runs a worker builds
its `Stack` here (`python worker.py`, `payouts worker`, `payouts up`, the tests).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from temporalio.client import Client
from temporalio.worker import Worker

from activities.admission import Admitter
from activities.bank import BankActivities
from activities.cashout import CashoutActivities
from activities.ops import OpsActivities
from activities.payees import PayeeActivities
from payouts.app.runtime import new_worker
from payouts.config.settings import Settings
from payouts.domain.policy import Policy
from payouts.ledger import Ledger
from payouts.payees.profiles import Profiles
from payouts.rails.bank.iso20022 import Party
from payouts.rails.bank.sandbox import BankTiming, SandboxBank
from payouts.rails.bank.vop import SandboxPayeeVerifier
from payouts.rails.giftcards.sandbox import SandboxGiftCards
from payouts.rails.identity.sandbox import SandboxIdentity
from payouts.rails.platform.port import WebhookEndpoint
from payouts.rails.sandbox_db import SandboxDB
from payouts.rails.wallet.client import WalletClient
from payouts.security.deployment import Deployment
from payouts.security.vault import vault_for
from payouts.store.database import Database
from payouts.store.registry import PolicyRegistry
from payouts.temporal.connection import connect_config
from payouts.temporal.starting import start_new


class Stack:
    """Everything a worker needs, built once from settings and the keys it holds.

    It refuses to start on development secrets, derived keys or reviewers without keys
    outside the embedded stack (`payouts.security.deployment`)."""

    def __init__(
        self,
        settings: Settings,
        policy: Policy | None = None,
        *,
        deployment: Deployment | None = None,
    ) -> None:
        dep = deployment or Deployment(settings, connect_config()["target_host"])
        settings = dep.settings
        self.deployment = dep
        self.settings = settings
        self.policy = dep.policy(policy or settings.load_policy())
        dep.require(
            "secret",
            "payload_keys",
            "gift_code_keys",
            "platform_public_key",
            "service_key",
            "reviewer_keys",
            policy=self.policy,
        )
        self.service_key = dep.service_key()
        self.db = Database(settings.ledger_url)
        self.db.ensure_schema()
        self.registry = PolicyRegistry(self.db)
        self.registry.register(self.policy, datetime.now(UTC))
        self.vault = vault_for(settings)
        self.profiles = Profiles(
            self.db,
            vault=self.vault,
            fingerprint_key=settings.secret_key.encode(),
            policy=self.policy,
        )
        self.admitter = Admitter(
            db=self.db,
            registry=self.registry,
            platform_public_key=dep.platform_public(),
            service_public_key=self.service_key.public,
            profiles=self.profiles,
        )
        self.ledger = Ledger(self.db, hold_hours=self.policy.maturation.hold_hours)
        self.sandbox = SandboxDB(settings.sandbox_path)
        self.identity = SandboxIdentity(
            self.sandbox, default_pending_seconds=settings.sandbox_identity_pending_seconds
        )
        self.payee_verifier = SandboxPayeeVerifier(self.sandbox)  # the bank's VoP service
        self.wallet = WalletClient(
            settings.wallet_api_url or f"http://127.0.0.1:{settings.wallet_port}",
            settings.wallet_api_key,
            timeout=settings.wallet_timeout_seconds,
        )
        self.gift_cards = SandboxGiftCards(
            self.sandbox, seed=settings.sandbox_seed, transient_rate=settings.sandbox_transient_rate
        )
        self.bank = SandboxBank(
            self.sandbox,
            account=self.debtor,
            timing=BankTiming(
                ack_seconds=settings.sandbox_bank_ack_seconds,
                book_seconds=settings.sandbox_bank_settle_seconds,
                return_seconds=settings.sandbox_bank_return_seconds,
            ),
            seed=settings.sandbox_seed,
            reject_rate=settings.sandbox_bank_reject_rate,
            return_rate=settings.sandbox_bank_return_rate,
        )
        self.activities = CashoutActivities(
            ledger=self.ledger,
            identity=self.identity,
            wallet=self.wallet,
            gift_cards=self.gift_cards,
            vault=self.vault,
            fingerprint_key=settings.secret_key.encode(),
            admitter=self.admitter,
            owed_allowances={c: r.owed_allowance for c, r in self.policy.currencies.items()},
            owed_review_above={
                c: r.owed_review_above
                for c, r in self.policy.currencies.items()
                if r.owed_review_above is not None
            },
        )
        self.payee_activities = PayeeActivities(
            profiles=self.profiles,
            ledger=self.ledger,
            policy=self.policy,
            platform_public_key=dep.platform_public(),
            service_key=self.service_key,
            start=start_new,
            verifier=self.payee_verifier,
        )
        self.bank_activities = BankActivities(
            ledger=self.ledger,
            policy=self.policy,
            bank=self.bank,
            files_dir=settings.bank_dir,
            debtor=self.debtor,
            service_key=self.service_key,
        )
        url = settings.platform_webhook_url
        self.platform = WebhookEndpoint(url, settings.platform_webhook_secret) if url else None
        self.ops_activities = OpsActivities(
            db=self.db,
            platform=self.platform,
            wallet=self.wallet,
            gift_cards=self.gift_cards,
            bank=self.bank,
            bank_outbound=settings.bank_dir / "outbound",
            reports_dir=settings.reports_dir,
            held_too_long_hours=settings.held_too_long_hours,
            owed_flag_days=self.policy.owed.flag_after_days,
        )
        self.executor = ThreadPoolExecutor(
            max_workers=settings.worker_threads, thread_name_prefix="activity"
        )

    @property
    def debtor(self) -> Party:
        s = self.settings
        return Party(s.bank_debtor_name, s.bank_debtor_iban, s.bank_debtor_bic)

    def worker(self, client: Client, *, task_queue: str | None = None) -> Worker:
        return new_worker(
            client,
            task_queue=task_queue or self.settings.task_queue,
            activities=[
                *self.activities.all(),
                *self.bank_activities.all(),
                *self.ops_activities.all(),
                *self.payee_activities.all(),
            ],
            executor=self.executor,
            threads=self.settings.worker_threads,
        )

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.db.dispose()
