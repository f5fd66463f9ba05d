"""Personal data encrypted in Temporal, the codec server, the reviewer audit trail, and
the metrics a worker exposes."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from payouts.config.settings import Settings
from payouts.devstack.demo import sandbox_iban
from payouts.devstack.embedded import embedded_stack, platform_client
from payouts.domain.cashout import Stage
from payouts.errors import CodecError, SecretError
from payouts.rails.giftcards import codes as giftcards
from payouts.store import audit
from payouts.temporal import telemetry
from payouts.temporal.codec import EncryptionCodec, codec_for, converter_for, new_key, parse_keys
from payouts.temporal.codec_server import CodecServer
from payouts.web import free_port
from tests.support.databases import test_server_payload_key
from tests.support.harness import Harness


async def test_histories_hold_no_personal_data_in_clear(harness: Harness) -> None:
    """Names, account numbers, wallet ids, addresses, gift codes and balances never appear
    in a raw history, on the paths that pay and on those that fail (a ledger refusal in a
    local activity, the wallet provider's failure, the bank's rejection): every failure
    message and stack trace in the history is sealed too. With the codec the same history
    reads back (so they were there, sealed)."""
    h = harness
    iban, closed = sandbox_iban("7001"), sandbox_iban("0404")
    h.stack.identity.register("pii", "verified", legal_name="Zoë Secretname")
    h.stack.identity.register("pcl", "verified", legal_name="Cleo Closedacct")
    for user in ("pii", "pwl", "pgc", "pbl", "pcl"):
        h.fund(user, "100.00")
    h.fund("ppo", "3.21")
    bank = await h.cashout("pii", "60", "bank_transfer", iban, holder="Zoë Secretname")
    wallet = await h.cashout("pwl", "10", "wallet", "+4915199998888")
    gift = await h.cashout("pgc", "25", "gift_card", "hidden.mailbox@example.org")
    blocked = await h.cashout("pbl", "10", "wallet", "blocked.secretwallet@example.org")
    rejected = await h.cashout("pcl", "30", "bank_transfer", closed, holder="Cleo Closedacct")
    poor = await h.cashout("ppo", "5", "wallet", "poor@example.org")  # the ledger refuses
    for t in (bank, rejected):
        await h.wait_for(t.request_id, lambda s: any("queued" in e.note for e in s.timeline))
    await h.bank_cycle()
    for t in (bank, wallet, gift):
        await h.wait_stage(t.request_id, Stage.PAID)
    for t in (blocked, rejected, poor):
        assert (await h.result(t.request_id)).stage is Stage.FAILED
    [card] = giftcards.reveal(
        h.stack.db,
        h.stack.vault,
        request_id=gift.request_id,
        user_id="pgc",
        at=_now(),
    )
    # (the poor payee's balance as a refusal would show it: digits alone match timestamps)
    secrets = [iban, closed, "Secretname", "Closedacct", "+4915199998888", "hidden.mailbox",
               "secretwallet", card.code, "3.21 USD"]  # fmt: skip
    plain = await Client.connect(
        h.temporal.service_client.config.target_host, data_converter=pydantic_data_converter
    )
    raw, failures = "", []
    tickets = (bank, wallet, gift, blocked, rejected, poor)
    batches = [w async for w in plain.list_workflows('WorkflowType = "BankBatchWorkflow"')]
    reports = [w async for w in plain.list_workflows('WorkflowType = "BankReportsWorkflow"')]
    for wid in [t.workflow_id for t in tickets] + [w.id for w in batches + reports]:
        history = (await plain.get_workflow_handle(wid).fetch_history()).to_json()
        raw += history
        failures += list(_failures(json.loads(history)))
    for secret in secrets:
        assert secret not in raw, secret
    assert failures, "the failure paths left no failure in the histories"
    assert {f.get("message") for f in failures} == {"Encoded failure"}
    assert not any(f.get("stackTrace") for f in failures)
    decoded = await h.temporal.get_workflow_handle(bank.workflow_id).fetch_history()
    first = decoded.events[0].workflow_execution_started_event_attributes.input.payloads[0]
    readable = (await codec_for(h.stack.settings).decode([first]))[0].data.decode()
    assert iban in readable and "Secretname" in readable


def _failures(node: Any) -> Iterator[dict[str, Any]]:
    """Every Temporal `Failure` in a history's JSON (failures nest as causes)."""
    if isinstance(node, dict):
        if "message" in node and ("encodedAttributes" in node or "stackTrace" in node):
            yield node
        for value in node.values():
            yield from _failures(value)
    elif isinstance(node, list):
        for value in node:
            yield from _failures(value)


def _now() -> datetime:
    return datetime.now(UTC)


async def test_codec_key_rotation() -> None:
    """A new key writes; old payloads still read; a payload under an unknown key fails."""
    old = parse_keys(f"k1:{new_key()}", secret="x")
    sealed = await EncryptionCodec(old).encode([Payload(data=b'"hello"')])
    rotated = EncryptionCodec(parse_keys(f"k2:{new_key()}", secret="x") + old)
    assert (await rotated.decode(sealed))[0].data == b'"hello"'
    fresh = await rotated.encode([Payload(data=b"x")])
    assert fresh[0].metadata["encryption-key-id"] == b"k2"
    with pytest.raises(CodecError, match="unknown key 'k2'"):
        await EncryptionCodec(old).decode(fresh)
    with pytest.raises(CodecError, match="must be 32 bytes"):
        parse_keys("k:" + base64.b64encode(b"short").decode(), secret="x")


async def test_codec_binds_its_metadata_and_still_reads_release_0_1() -> None:
    """Version 2 binds encoding, version and key id into the AEAD: dropping the version tag
    (a downgrade to the unbound format) breaks it. A release-0.1 payload (no tag, nothing
    bound) still reads, so running cash-outs' histories do."""
    keys = parse_keys(f"k1:{new_key()}", secret="x")
    codec = EncryptionCodec(keys)
    [sealed] = await codec.encode([Payload(data=b'"hello"')])
    assert sealed.metadata["encryption-version"] == b"2"
    downgraded = Payload()
    downgraded.CopyFrom(sealed)
    del downgraded.metadata["encryption-version"]
    with pytest.raises(CodecError, match="does not decrypt"):
        await codec.decode([downgraded])
    nonce = os.urandom(12)
    plain = Payload(data=b'"old"').SerializeToString()
    legacy = Payload(
        metadata={"encoding": b"binary/encrypted", "encryption-key-id": b"k1"},
        data=nonce + AESGCM(keys[0][1]).encrypt(nonce, plain, None),
    )
    assert (await codec.decode([legacy]))[0].data == b'"old"'


TOKEN = "operator-token-0123456789"


async def test_the_codec_server_serves_operators_only() -> None:
    """The UI's remote codec protocol, for holders of the operator token (a bearer header
    or the UI's path): no token, a wrong one, a foreign Host (DNS rebinding), a foreign
    Origin, a huge body and /encode are all refused; CORS answers only the UI's origin."""
    codec = codec_for(Settings())
    server = CodecServer(codec, origins=("http://localhost:8233",), token=TOKEN)
    url = await server.start()
    sealed = await codec.encode([Payload(metadata={"encoding": b"json/plain"}, data=b'"Zoe"')])
    body = json_format.MessageToJson(Payloads(payloads=sealed))
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    ui = {"Origin": "http://localhost:8233"}

    async def post(path: str, data: str | bytes = body, **headers: str) -> tuple[int, str, Any]:
        async with (
            aiohttp.ClientSession() as http,
            http.post(url + path, data=data, headers=headers) as resp,
        ):
            return resp.status, await resp.text(), resp.headers.get("Access-Control-Allow-Origin")

    try:
        ok, answer, _ = await post("/decode", **bearer)
        via_path, _, allowed = await post(f"/t/{TOKEN}/decode", **ui)
        statuses = {
            "no token": (await post("/decode"))[0],
            "wrong token": (await post("/decode", Authorization="Bearer " + "x" * 25))[0],
            "wrong path token": (await post("/t/nope-nope-nope-nope/decode"))[0],
            "foreign host": (await post("/decode", Host="evil.example:80", **bearer))[0],
            "foreign origin": (await post("/decode", Origin="http://evil.example", **bearer))[0],
            "huge body": (await post("/decode", data=b"x" * (5 * 1024 * 1024), **bearer))[0],
            "encode": (await post("/encode", **bearer))[0],
            "not payloads": (await post("/decode", data="nonsense", **bearer))[0],
        }
    finally:
        await server.stop()
    assert (ok, via_path, allowed) == (200, 200, "http://localhost:8233")
    assert json_format.Parse(answer, Payloads()).payloads[0].data == b'"Zoe"'
    assert statuses == {
        "no token": 401,
        "wrong token": 401,
        "wrong path token": 401,
        "foreign host": 421,
        "foreign origin": 403,
        "huge body": 413,
        "encode": 405,
        "not payloads": 400,
    }
    with pytest.raises(SecretError, match="PAYOUTS_OPERATOR_TOKEN"):
        CodecServer(codec, origins=(), token="")


async def test_keygen_and_the_standalone_codec_server() -> None:
    """`payouts keygen` prints a key the workers accept; `payouts codec-server`, run by an
    operator with the keys (new first, old after), decodes payloads sealed under either."""
    import os
    import subprocess
    import sys

    def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "payouts", *args],
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            timeout=30,
        )

    old, new = (
        cli("keygen", "payload", "2026-10").stdout.strip(),
        cli("keygen", "payload", "2026-11").stdout.strip(),
    )
    assert old.startswith("2026-10:") and new.startswith("2026-11:")
    bad = cli("keygen", "payload", "a:b")
    assert bad.returncode == 1 and "key_id: must be a non-empty name" in bad.stderr
    sealed_old = await codec_for(Settings(payload_keys=old)).encode([Payload(data=b'"Zoe"')])
    sealed_new = await codec_for(Settings(payload_keys=f"{new},{old}")).encode(
        [Payload(data=b'"Yan"')]
    )
    assert sealed_new[0].metadata["encryption-key-id"] == b"2026-11"
    port = free_port()
    keys = {"PAYOUTS_PAYLOAD_KEYS": f"{new},{old}"}
    refused = cli("codec-server", "--port", str(port), **keys)
    assert refused.returncode == 1 and "PAYOUTS_OPERATOR_TOKEN is not set" in refused.stderr
    token = cli("keygen", "operator").stdout.strip().split("=", 1)[1]
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "payouts", "codec-server", "--port", str(port)),
        env={**os.environ, **keys, "PAYOUTS_OPERATOR_TOKEN": token},
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        banner = (await proc.stdout.readline()).decode()
        assert f"http://127.0.0.1:{port}/t/$PAYOUTS_OPERATOR_TOKEN" in banner
        body = json_format.MessageToJson(Payloads(payloads=sealed_old + sealed_new))
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"http://127.0.0.1:{port}/decode",
                data=body,
                headers={"Authorization": f"Bearer {token}"},
            ) as resp,
        ):
            answer = json_format.Parse(await resp.text(), Payloads())
    finally:
        proc.terminate()
        await proc.wait()
    assert [p.data for p in answer.payloads] == [b'"Zoe"', b'"Yan"']


async def test_every_review_decision_is_audited(harness: Harness) -> None:
    """Unknown reviewers, the payee, a repeated approval under four eyes (by signal or
    update) are refused and recorded; accepted decisions too: who, when, what, how, from
    which client."""
    h = harness
    h.fund("carol", "2200.00")  # carol is a reviewer, cashing out for herself
    ticket = await h.cashout("carol", "2100", "wallet", "carol@example.com")
    rid = ticket.request_id
    await h.wait_stage(rid, Stage.AWAITING_REVIEW)
    await h.client.approve(rid, reviewer="carol", client="ui")  # the payee, by signal
    await h.client.approve(rid, reviewer="mallory")  # a stranger, by signal
    await h.client.review(rid, reviewer="bob", decision="approve", client="sdk:ops")
    await h.client.approve(rid, reviewer="bob")  # the same reviewer twice, by signal
    status = await h.wait_for(rid, lambda s: len(s.reviews) == 4)
    assert status.stage is Stage.AWAITING_REVIEW  # no signal got around the rules
    await h.client.review(rid, reviewer="alice", decision="approve")
    await h.result(rid)
    trail = audit.entries(h.stack.db, ticket.workflow_id)
    rows = [(e.reviewer, e.decision, e.accepted, e.via, e.client) for e in trail]
    assert rows == [
        ("carol", "approve", False, "signal", "ui"),
        ("mallory", "approve", False, "signal", "sdk"),
        ("bob", "approve", True, "signal", "sdk:ops"),
        ("bob", "approve", False, "signal", "sdk"),
        ("alice", "approve", True, "signal", "sdk"),
    ]
    assert trail[0].refusal == "reviewers cannot decide on their own cash-out"
    assert [e.seq for e in trail] == [1, 2, 3, 4, 5]


async def test_worker_exposes_prometheus_metrics(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """The SDK's metrics and ours (stages, amounts, fees, review wait) on /metrics."""
    port = free_port()
    settings = Settings(
        data_dir=tmp_path,
        task_queue=f"m-{uuid.uuid4().hex[:6]}",
    )
    client = await Client.connect(
        temporal_env.client.service_client.config.target_host,
        data_converter=converter_for(settings),
        runtime=telemetry.runtime(port),
    )
    stack = embedded_stack(
        settings,
        temporal_env.client.service_client.config.target_host,
        payload_key=test_server_payload_key(),
    )
    payouts = platform_client(stack, client)
    stack.ledger.credit_earning(
        event_id="m1",
        user_id="met",
        currency="USD",
        amount=700_000_000,
        earned_at=_now() - timedelta(days=10),
    )
    try:
        async with stack.worker(client):
            paid = await payouts.request_cashout(
                request_id=uuid.uuid4().hex[:10],
                user_id="met",
                amount=25_000_000,
                currency="USD",
                method="gift_card",
                destination="m@e.org",
            )
            await payouts.result(paid.request_id)
            held = await payouts.request_cashout(
                request_id=uuid.uuid4().hex[:10],
                user_id="met",
                amount=600_000_000,
                currency="USD",
                method="bank_transfer",
                destination=sandbox_iban("7002"),
                holder="Met",
            )
            for _ in range(200):
                if (await payouts.status(held.request_id)).stage is Stage.AWAITING_REVIEW:
                    break
                await asyncio.sleep(0.05)
            await payouts.reject(held.request_id, reviewer="bob", reason="no")
            await payouts.result(held.request_id)
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"http://127.0.0.1:{port}/metrics") as resp,
            ):
                text = await resp.text()
    finally:
        stack.close()
    assert "payouts_cashout_stages{" in text and 'stage="PAID"' in text
    assert "payouts_paid_micros{" in text and "25000000" in text
    assert "payouts_fees_micros{" in text
    assert "payouts_review_wait_seconds_bucket{" in text
    assert "temporal_workflow_completed" in text  # the SDK's own
