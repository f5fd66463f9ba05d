"""The attack and abuse drill: `python -m tests.attack [--quick]` (`make attack`; the quick
version runs in `make test`).

It starts a Temporal dev server and our stack, then tries every way in that the trust
boundary and hardening work closed, as an outsider with Temporal access, a forger of rail
events, a flooder, a local process reaching for the codec server, a hand-typed SQL fix.
Each attack is measured, not assumed: how many attempts were refused, how much money
moved that should not have (balances and payouts at the rails), whether each run's
history stayed under its bound. At the end every history on the drill's task queue is
read raw (no codec) and searched for the personal and financial values the drill used.
It prints one table and exits non-zero unless everything was refused, no money moved, the
bounds held and no secret was in clear.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa
from rich.console import Console
from rich.table import Table
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from payouts.devstack import devserver
from payouts.devstack.demo import sandbox_iban
from payouts.domain.bounds import MAX_PAYLOAD
from payouts.domain.carried import ROLL_BYTES, Board, Carried, Checkpoint, DeskState, Seen
from payouts.domain.cashout import CancelRequest, ReviewDecision, ReviewRequest, Stage
from payouts.domain.messages import BankEvent
from payouts.errors import InvalidState, PayoutError
from payouts.ledger.ingest import ingest_file
from payouts.rails.bank import book, quarantine
from payouts.security.keys import SigningKey
from payouts.security.signatures import sign_request
from payouts.security.signing import sign
from payouts.temporal import contract, search
from payouts.temporal.codec import codec_for, converter_for
from payouts.temporal.codec_server import CodecServer
from tests import attack_profiles, attack_reversals
from tests.support.attacks import NAN_REPORT, M, build, held, start_raw
from tests.support.harness import Harness

BOUND = 2 * ROLL_BYTES  # a run's history: the roll threshold, and what arrives meanwhile


@dataclass
class Row:
    attack: str
    path: str
    tried: int = 0
    refused: int = 0
    moved: int = 0  # micro-units that moved because of the attack
    bounded: bool | None = None  # history and state under their bounds (None: not at stake)


@dataclass
class Drill:
    h: Harness
    quick: bool
    rows: list[Row] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    found: list[str] = field(default_factory=list)  # where a secret was read in clear

    # ------------------------------------------------------------------ measuring

    def money(self, user: str, workflow_id: str | None = None) -> int:
        """Everything an attack could move for `user`: their balances, and what the rails
        paid for `workflow_id`."""
        b = self.h.stack.ledger.balance(user, "USD")
        paid = 0
        if workflow_id:
            h = self.h
            paid = h.wallet.payouts_for(workflow_id) + h.stack.gift_cards.cards_for(workflow_id)
            item = book.item_for(h.stack.db, workflow_id)
            paid += int(item is not None and item.status != "queued")
        return b.available * 3 + b.held * 5 + b.pending * 7 + paid * 1_000_003

    def row(self, attack: str, path: str) -> Row:
        self.rows.append(Row(attack, path))
        return self.rows[-1]

    async def refused(
        self, row: Row, attempt: Awaitable[Any], is_refusal: Callable[[Any], bool]
    ) -> None:
        row.tried += 1
        try:
            result = await attempt
        except Exception as exc:
            result = exc
        row.refused += int(is_refusal(result))

    # ------------------------------------------------------------------ the attacks

    async def starts(self) -> None:
        """Starts that skip the platform: unsigned, another key, a forged quote, a made-up
        carried state."""
        h, row = self.h, self.row("start a cash-out without the platform", "Temporal start")
        h.fund("mal", "100.00")
        before = self.money("mal")
        inp = await build(h, "mal", 40 * M, "wallet", "mal.wallet@example.org")
        self.secrets.append("mal.wallet@example.org")
        quote = inp.quote.model_copy(update={"fee": -990 * M, "net": 1000 * M})
        forged_quote = inp.model_copy(
            update={"quote": quote, "request": inp.request.model_copy(update={"quote": quote})}
        )
        carried = Carried(
            at=Checkpoint.RAIL, runs=1, board=Board(), desk=DeskState(), trust=None,
            held=True, published_stage=Stage.DISBURSING,
            progress=Seen(stage=Stage.DISBURSING, timeline=(), rail_ref="p-forged"),
        )  # fmt: skip
        key = h.stack.deployment.platform_key()
        attempts = [
            inp,  # as typed into `temporal workflow start`: no signature
            sign_request(SigningKey.generate(), fresh(inp)),
            sign_request(key, fresh(forged_quote)),
            sign_request(key, fresh(inp).model_copy(update={"carried": carried})),
        ]
        for attempt in attempts:
            rid = await start_raw(h, attempt)
            row.tried += 1
            row.refused += int((await h.result(rid)).stage is Stage.REJECTED)
        row.moved = abs(self.money("mal") - before)

    async def profiles(self) -> None:
        await attack_profiles.run(self)

    async def reversals(self) -> None:
        await attack_reversals.run(self)

    async def reviews(self) -> None:
        """Decisions and cancels not signed by who they claim: typed JSON, another key, a
        replayed signature, a stranger's cancel, a Temporal cancellation."""
        h, row = self.h, self.row("approve or cancel as someone else", "signals, cancel")
        rid = await held(h, "rev", "600")
        wid = contract.cashout_id(rid)
        before = self.money("rev", wid)
        handle = h.temporal.get_workflow_handle(wid)
        forged = await h.client.signed_decision(
            rid, reviewer="alice", decision="approve", key=SigningKey.generate()
        )
        signals = [
            ("approve", ReviewDecision(reviewer="alice")),
            ("approve", forged),
            ("approve", ReviewDecision(reviewer="rev")),  # the payee for themselves
            ("cancel", CancelRequest(requested_by="rev", reason="unsigned")),
            ("cancel", CancelRequest(requested_by="mallory")),
        ]
        for name, payload in signals:
            await handle.signal(name, payload)
        await handle.cancel()  # a Temporal cancellation
        row.tried = len(signals) + 1
        status = await h.wait_for(
            rid,
            lambda s: (
                s.refused >= len(signals)
                and any("cancellation refused" in e.note for e in s.timeline)
            ),
        )
        row.refused = min(status.refused, len(signals)) + int(status.stage is Stage.AWAITING_REVIEW)
        row.moved = abs(self.money("rev", wid) - before)
        await h.client.cancel(rid, requested_by="rev", reason="drill over")

    async def rail_events(self) -> None:
        """Events that would end a transfer or a payout: unsigned, and wallet webhooks with
        a bad signature, no event id, a non-ASCII header, an old timestamp."""
        h, row = self.h, self.row("forge the bank's and the wallet's answers", "signal, webhook")
        h.fund("ban", "700.00")
        iban = sandbox_iban("6161")
        self.secrets += [iban, "Bana Secretholder"]
        ticket = await h.cashout("ban", "600", "bank_transfer", iban, holder="Bana Secretholder")
        rid, wid = ticket.request_id, ticket.workflow_id
        await h.wait_stage(rid, Stage.AWAITING_REVIEW)
        handle = h.temporal.get_workflow_handle(wid)
        e2e = book.end_to_end_id(wid)
        for kind in ("rejected", "booked", "returned"):  # no genuine answer exists yet
            await handle.signal("bank_event", BankEvent(kind=kind, end_to_end_id=e2e, code="AC04"))
        row.tried += 3
        await h.client.review(rid, reviewer="alice", decision="approve")
        await h.wait_for(rid, lambda s: any("queued" in e.note for e in s.timeline))
        await h.bank_cycle()
        status = await h.wait_stage(rid, Stage.PAID)
        row.refused += min(status.refused, 3)
        row.moved += abs(sum(h.balance("ban")) - 100 * M)  # paid once, as approved
        body = json.dumps(
            {"id": "evt_f", "type": "payout.completed",
             "data": {"id": "x", "status": "completed", "reference": wid}}
        ).encode()  # fmt: skip
        secret = h.stack.settings.wallet_webhook_secret
        old = int(datetime.now(UTC).timestamp()) - 3600
        headers = [
            {"Wallet-Event-Id": "evt_f", "Wallet-Signature": sign("wrong", body, event_id="evt_f")},
            {"Wallet-Signature": sign(secret, body, event_id="evt_f")},  # id header missing
            {"Wallet-Event-Id": "evt_f", "Wallet-Signature": "t=1,v1=ünïcödé"},
            {
                "Wallet-Event-Id": "evt_f",
                "Wallet-Signature": sign(secret, body, old, event_id="evt_f"),
            },
        ]
        async with aiohttp.ClientSession() as http:
            for header in headers:
                async with http.post(h.cars.receiver_url, data=body, headers=header) as resp:
                    row.tried += 1
                    row.refused += int(resp.status == 401)

    async def flood(self) -> None:
        """The most a caller can send: signals just under the size cap until the cash-out has
        continued as new, some over it, an oversized update; then the real approval pays it
        once, with every run's history under its bound."""
        h, row = self.h, self.row("flood a cash-out", "signals, updates")
        rid = await held(h, "flo", "600")
        wid = contract.cashout_id(rid)
        handle = h.temporal.get_workflow_handle(wid)
        rolls = 1 if self.quick else 3
        big = "x" * (MAX_PAYLOAD - 1_500)
        while (await h.client.status(rid)).runs < rolls:
            sends = [
                handle.signal("approve", ReviewDecision(reviewer=f"m{row.tried + i}{big}"))
                for i in range(20)
            ]
            await asyncio.gather(*sends)
            row.tried += 20
        for _ in range(5):  # over the cap: dropped unread
            await handle.signal("approve", ReviewDecision(reviewer="y" * 2 * MAX_PAYLOAD))
        row.tried += 5
        await self.refused(
            row,
            handle.execute_update("review", ReviewRequest(decision="approve", reviewer=big * 2)),
            lambda r: isinstance(r, Exception),
        )
        status = await h.wait_for(rid, lambda s: s.dropped == 5)
        row.refused += status.refused + status.dropped
        await h.client.approve(rid, reviewer="carol")
        result = await h.result(rid)
        row.moved = 0 if result.stage is Stage.PAID and h.wallet.payouts_for(wid) == 1 else 1
        sizes = []
        async for run in h.temporal.list_workflows(f'WorkflowId = "{wid}"'):
            events = (
                await h.temporal.get_workflow_handle(wid, run_id=run.run_id).fetch_history()
            ).events
            sizes.append(sum(e.ByteSize() for e in events))
        row.bounded = (
            len(sizes) > rolls and max(sizes) <= BOUND and len(result.status.timeline) < 80
        )

    async def codec_server(self) -> None:
        """A local process reaching for the decryption service: no token, a wrong one, a
        DNS-rebinding Host, a foreign Origin, /encode."""
        h, row = self.h, self.row("read payloads through the codec server", "HTTP")
        server = CodecServer(
            codec_for(h.stack.settings), origins=("http://localhost:8233",),
            token=h.stack.settings.operator_token,
        )  # fmt: skip
        url = await server.start()
        body = '{"payloads": []}'
        bearer = f"Bearer {h.stack.settings.operator_token}"
        tries = [
            ("/decode", {}),
            ("/decode", {"Authorization": "Bearer not-the-token-at-all"}),
            ("/decode", {"Authorization": bearer, "Host": "attacker.example:80"}),
            ("/decode", {"Authorization": bearer, "Origin": "http://attacker.example"}),
            ("/encode", {"Authorization": bearer}),
        ]
        try:
            async with aiohttp.ClientSession() as http:
                for path, headers in tries:
                    async with http.post(url + path, data=body, headers=headers) as resp:
                        row.tried += 1
                        row.refused += int(resp.status in (401, 403, 405, 421))
        finally:
            await server.stop()

    async def edges(self) -> None:
        """Files and amounts at the edge: a rejects file over its input, amounts with
        thousands of digits."""
        h, row = self.h, self.row("break the edges (files, amounts)", "CLI, ingest")
        with tempfile.TemporaryDirectory() as tmp:
            source = Path(tmp) / "in.csv"
            text = "event_id,user_id,amount,currency\n=1+1,eve,-1,USD\n"
            source.write_text(text)
            before = h.stack.ledger.totals("USD").earned
            await self.refused(
                row, asyncio.to_thread(ingest_file, h.stack.ledger, source, rejects=source),
                lambda r: isinstance(r, PayoutError) and source.read_text() == text,
            )  # fmt: skip
            row.moved += abs(h.stack.ledger.totals("USD").earned - before)
        from payouts.domain.money import parse_micros

        for amount in ("0" * 5000 + "1", "9" * 5000, "1e99999", "NaN"):
            row.tried += 1
            try:
                parse_micros(amount)
                row.refused += int(amount.startswith("0"))  # leading zeros: the number itself
            except PayoutError:
                row.refused += 1

    async def terminal(self) -> None:
        """A reviewer named like markup and escape sequences (which crashed `payouts status`
        and reached the operator's terminal): every command prints it as text."""
        from tests.e2e.test_cli_cashout import HOSTILE, in_thread

        h, row = self.h, self.row("hostile names in the operator's terminal", "CLI output")
        rid = await held(h, "ter", "600")
        handle = h.temporal.get_workflow_handle(contract.cashout_id(rid))
        await handle.signal("approve", ReviewDecision(reviewer=HOSTILE, reason=HOSTILE))
        await h.wait_for(rid, lambda s: bool(s.reviews))
        for args in (("status", rid), ("review", "audit", rid), ("review", "list")):
            shown = await in_thread(h, h.stack.settings.data_dir, *args)
            row.tried += 1
            clean = not any(c in shown.stdout for c in ("\x1b", "\x07", "\r", "\u202e"))
            row.refused += int(shown.returncode == 0 and clean)
        await h.client.cancel(rid, requested_by="ter", reason="drill over")

    async def bank_files(self) -> None:
        """A report with NaN amounts and a batch file the schema refuses: each set aside,
        the others go through; only the transfer at fault fails, its hold released."""
        h, row = self.h, self.row("poison the bank files", "bank files")
        tickets = {}
        for user, last4 in (("bgo", "6262"), ("bbd", "6363")):
            h.fund(user, "50.00")
            self.secrets.append(f"{user.title()} Holder")
            t = await h.cashout(
                user, "10", "bank_transfer", sandbox_iban(last4), holder=f"{user.title()} Holder"
            )
            await h.wait_for(t.request_id, lambda s: any("queued" in e.note for e in s.timeline))
            tickets[user] = t
        total = {u: sum(h.balance(u)) for u in tickets}
        with h.stack.db.engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE bank_items SET bic = 'NOT-A-BIC' WHERE workflow_id = :w"),
                {"w": tickets["bbd"].workflow_id},
            )
        h.stack.bank.deliver_raw("0000-nan.camt.054.xml", NAN_REPORT, datetime.now(UTC))
        await h.bank_cycle()
        row.tried = 2
        row.refused += int(bool(quarantine.report_files(h.stack.db, status="quarantined")))
        row.refused += int(bool(book.batches(h.stack.db, status="quarantined")))
        await h.wait_stage(tickets["bgo"].request_id, Stage.PAID)
        failed = await h.result(tickets["bbd"].request_id)
        row.moved = abs(sum(h.balance("bbd")) - total["bbd"]) if failed.stage is Stage.FAILED else 1
        row.moved += abs(total["bgo"] - sum(h.balance("bgo")) - 10 * M)  # paid once, in full

    async def database(self) -> None:
        """Hand-typed SQL against the ledger: a negative balance, an unbalanced leg, a
        deleted leg, an overflowing balance."""
        h, row = self.h, self.row("write around the ledger", "SQL")
        h.fund("sql", "10.00")
        before = self.money("sql")
        db = h.stack.db
        tries = [
            "UPDATE accounts SET balance = -1 WHERE owner = 'sql' AND kind = 'available'",
            "DELETE FROM ledger_legs",
            "UPDATE ledger_legs SET amount = amount + 1",
            "UPDATE accounts SET balance = balance + 9223372036854775807 WHERE owner = 'sql'",
        ]
        for statement in tries:
            row.tried += 1
            try:
                with db.engine.begin() as conn:
                    conn.execute(sa.text(statement))
            except sa.exc.DBAPIError:
                row.refused += 1
        row.tried += 1
        try:
            h.stack.ledger.credit_earning(
                event_id=f"big-{uuid.uuid4().hex}", user_id="sql", currency="USD",
                amount=2**63 - 1, earned_at=datetime.now(UTC) - timedelta(days=30),
            )  # fmt: skip
        except InvalidState:
            row.refused += 1
        row.moved = abs(self.money("sql") - before)

    # ------------------------------------------------------------------ secrets

    async def secrets_in_clear(self) -> int:
        """Every history of the drill's task queue read raw: the values used, any balance,
        and any failure message not sealed."""
        plain = await Client.connect(
            self.h.temporal.service_client.config.target_host,
            data_converter=pydantic_data_converter,
        )
        query = f'TaskQueue = "{self.h.task_queue}"'
        async for w in plain.list_workflows(query):
            raw = (await plain.get_workflow_handle(w.id, run_id=w.run_id).fetch_history()).to_json()
            self.found += [f"{w.id}: {secret}" for secret in self.secrets if secret in raw]
            unsealed = [f for f in failures(json.loads(raw)) if f["message"] != "Encoded failure"]
            self.found += [f"{w.id}: a failure in clear: {f['message'][:60]}" for f in unsealed]
        return len(self.found)


def failures(node: Any) -> list[dict[str, Any]]:
    """Every failure our code wrote in a history's JSON (a failure nests causes; the
    server's own, such as "UnhandledCommand", carry no data of ours and are left out)."""
    found = []
    if isinstance(node, dict):
        if (
            isinstance(node.get("message"), str)
            and "serverFailureInfo" not in node
            and (
                "encodedAttributes" in node
                or "stackTrace" in node
                or "applicationFailureInfo" in node
            )
        ):
            found.append(node)
        for value in node.values():
            found += failures(value)
    elif isinstance(node, list):
        for value in node:
            found += failures(value)
    return found


def fresh(inp: Any) -> Any:
    """The same request under a new id (each attack is its own cash-out)."""
    request = inp.request.model_copy(update={"request_id": uuid.uuid4().hex[:16]})
    return inp.model_copy(update={"request": request})


# ---------------------------------------------------------------------- running it

ATTACKS = ("starts", "reviews", "rail_events", "flood", "codec_server", "terminal", "edges",
           "bank_files", "database", "profiles", "reversals")  # fmt: skip


async def drill(h: Harness, *, quick: bool) -> tuple[list[Row], int]:
    d = Drill(h, quick)
    for name in ATTACKS:
        await getattr(d, name)()
    secrets = await d.secrets_in_clear()
    for where in d.found:
        print("IN CLEAR:", where)
    return d.rows, secrets


def verdict(rows: list[Row], secrets: int) -> bool:
    return (
        all(r.refused == r.tried for r in rows)
        and sum(r.moved for r in rows) == 0
        and all(r.bounded is not False for r in rows)
        and secrets == 0
    )


def table(rows: list[Row], secrets: int) -> Table:
    t = Table(title="Attacks on a running stack")
    for col in ("attack", "way in", "tried", "refused", "money moved", "bounds held"):
        t.add_column(col, justify="left" if col in ("attack", "way in") else "right")
    for r in rows:
        bounded = "-" if r.bounded is None else ("yes" if r.bounded else "NO")
        t.add_row(r.attack, r.path, str(r.tried), str(r.refused), str(r.moved), bounded)
    t.add_section()
    held = all(r.bounded is not False for r in rows)
    t.add_row(
        "total", f"secrets in clear: {secrets}", str(sum(r.tried for r in rows)),
        str(sum(r.refused for r in rows)), str(sum(r.moved for r in rows)),
        "yes" if held else "NO",
    )  # fmt: skip
    return t


async def main(quick: bool) -> int:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(devserver.temporal_cli()),
        dev_server_extra_args=devserver.LATENCY_FLAGS,
        search_attributes=search.ALL,
        data_converter=converter_for(h_settings()),
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            async with Harness.running(env, Path(tmp)) as h:
                rows, secrets = await drill(h, quick=quick)
    finally:
        await env.shutdown()
    Console(width=120).print(table(rows, secrets))
    ok = verdict(rows, secrets)
    print("every attack refused, nothing moved, bounds held, no secret in clear" if ok
          else "FAILED: see the table")  # fmt: skip
    return 0 if ok else 1


def h_settings() -> Any:
    from payouts.config.settings import Settings

    return Settings()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the short version in make test")
    status = asyncio.run(main(parser.parse_args().quick))
    sys.stdout.flush()
    os._exit(status)
