"""Operations: deliver platform notifications from the outbox, reconcile a day."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio import activity

from activities.bank import write_atomically
from activities.cashout import async_domain_errors, heartbeating
from payouts.domain.messages import DeliveryResult, ReconcileInput, ReconcileResult
from payouts.ops import reconcile
from payouts.rails.bank import book
from payouts.rails.bank.port import Bank
from payouts.rails.giftcards.port import GiftCardProvider
from payouts.rails.platform import notify
from payouts.rails.platform.port import PlatformEndpoint
from payouts.rails.wallet.port import WalletProvider
from payouts.store.database import Database
from payouts.temporal.contract import Activity as A
from payouts.temporal.interfaces import OpsSteps


class OpsActivities(OpsSteps):
    def __init__(
        self,
        *,
        db: Database,
        platform: PlatformEndpoint | None,
        wallet: WalletProvider,
        gift_cards: GiftCardProvider,
        bank: Bank,
        bank_outbound: Path,
        reports_dir: Path,
        held_too_long_hours: int,
        owed_flag_days: int | None = None,
    ) -> None:
        self.db = db
        self.platform = platform
        self.wallet = wallet
        self.gift_cards = gift_cards
        self.bank = bank
        self.bank_outbound = bank_outbound
        self.reports_dir = reports_dir
        self.held_too_long_hours = held_too_long_hours
        self.owed_flag_days = owed_flag_days

    @activity.defn(name=A.DELIVER_NOTIFICATIONS)
    @async_domain_errors
    async def deliver_notifications(self, as_of: datetime) -> DeliveryResult:
        if self.platform is None:
            return DeliveryResult(delivered=0, failed=0)
        done = await heartbeating(notify.deliver_due(self.db, self.platform, as_of=as_of))
        return DeliveryResult(delivered=done.delivered, failed=done.failed)

    @activity.defn(name=A.RECONCILE_DAY)
    @async_domain_errors
    async def reconcile_day(self, inp: ReconcileInput) -> ReconcileResult:
        report = await heartbeating(self.run(inp.day, inp.as_of))
        path = self.reports_dir / f"reconcile-{inp.day.isoformat()}.json"
        write_atomically(path, json.dumps(report.as_dict(), indent=2).encode())
        return ReconcileResult(
            day=inp.day,
            checked=report.checked,
            mismatches=len(report.mismatches),
            report_file=str(path),
        )

    async def run(self, day: date, as_of: datetime) -> reconcile.Report:
        """Gather the rails' records for `day` (and the day before, for payouts that
        straddle midnight) and reconcile them with the ledger and the bank files."""
        wallet = []
        for d in (day - timedelta(days=1), day):
            wallet += await self.wallet.statement(d)
        cards = [
            c
            for d in (day - timedelta(days=1), day)
            for c in self.gift_cards.statement(d.isoformat())
        ]
        names = [
            b.file_name
            for b in book.batches(
                self.db, day=datetime.combine(day, datetime.min.time(), tzinfo=as_of.tzinfo)
            )
        ]
        files = reconcile.bank_files(self.bank_outbound, names)
        view = reconcile.RailView(
            wallet=wallet, gift_cards=cards, bank=self.bank.statement(), files=files
        )
        return reconcile.reconcile(
            self.db,
            view,
            day=day,
            as_of=as_of,
            held_too_long_hours=self.held_too_long_hours,
            owed_flag_days=self.owed_flag_days,
        )

    def all(self) -> list[Callable[..., Any]]:
        return [self.deliver_notifications, self.reconcile_day]
