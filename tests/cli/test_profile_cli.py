"""`payouts profile ...`: saved destinations and automatic cash-outs from the command line,
against a running worker (the same data folder, so the CLI signs as the platform)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from payouts import cli
from tests.e2e.test_cli_cashout import in_thread
from tests.support.harness import Harness


async def profile(h: Harness, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `payouts profile ...` without blocking the event loop that drives the worker."""
    return await in_thread(h, data_dir, "profile", *args)


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stderr.strip().count("\n") == 0 and "Traceback" not in done.stderr
    return done.stderr.strip()


async def test_save_then_show_masks_the_destination(harness: Harness, tmp_path: Path) -> None:
    """save prints the new id; show lists it masked (never the full address), as the
    default, in cool-off, and --json has the profile's shape."""
    h = harness
    saved = await profile(
        h, tmp_path, "save", "ines", "-m", "wallet", "-d", "ines.wallet@example.org", "--default"
    )
    assert saved.returncode == 0, saved.stderr
    dst = saved.stdout.strip()
    assert dst.startswith("dst_") and len(dst) == 24
    shown = await profile(h, tmp_path, "show", "ines")
    assert shown.returncode == 0, shown.stderr
    assert dst in shown.stdout and "i***@example.org" in shown.stdout
    assert "ines.wallet" not in shown.stdout
    assert "ines has no automatic cash-outs" in shown.stdout
    data = json.loads((await profile(h, tmp_path, "show", "ines", "--json")).stdout)
    assert set(data) == {"user_id", "destinations", "auto", "auto_status"}
    [d] = data["destinations"]
    assert (d["id"], d["method"], d["shown"], d["is_default"]) == (
        dst,
        "wallet",
        "i***@example.org",
        True,
    )
    assert d["cooloff_until"] > d["changed_at"] and d["verification"] is None
    assert "ines.wallet" not in json.dumps(data)


async def test_default_and_remove(harness: Harness, tmp_path: Path) -> None:
    """default moves the default to another destination of the method; remove drops one,
    and the automatic cash-out that paid to it."""
    h = harness
    first = await h.client.save_destination("jon", "gift_card", "jon@example.org", default=True)
    second = await h.client.save_destination("jon", "gift_card", "jon.two@example.org")
    await h.client.set_auto_cashout("jon", destination_id=first, currency="USD", every="weekly")
    moved = await profile(h, tmp_path, "default", "jon", second)
    assert moved.returncode == 0, moved.stderr
    assert (
        moved.stdout.strip() == f"jon: {second} is now the default for gift_card (j***@example.org)"
    )
    removed = await profile(h, tmp_path, "remove", "jon", first, "--json")
    assert removed.returncode == 0, removed.stderr
    data = json.loads(removed.stdout)
    assert [(d["id"], d["is_default"]) for d in data["destinations"]] == [(second, True)]
    assert data["auto"] == []


async def test_auto_threshold_is_explained_then_stopped(harness: Harness, tmp_path: Path) -> None:
    """auto with a threshold above the balance: it answers, and show tells (in the table and
    in --json), by how much the balance is short; stop-auto ends it."""
    h = harness
    h.fund("kim", "30.00")
    dst = await h.client.save_destination("kim", "gift_card", "kim@example.org")
    auto = await profile(h, tmp_path, "auto", "kim", "-d", dst, "-c", "usd", "--threshold", "50")
    assert auto.returncode == 0, auto.stderr
    assert auto.stdout.strip() == (
        f"kim: automatic cash-out in USD to {dst} at 50.00 USD; below your threshold by 20.00 USD"
    )
    shown = await profile(h, tmp_path, "show", "kim")
    assert shown.returncode == 0, shown.stderr
    assert "Automatic cash-outs of kim" in shown.stdout and "at 50.00 USD" in shown.stdout
    assert "30.00 USD" in shown.stdout and "below your threshold by 20.00 USD" in shown.stdout
    data = json.loads((await profile(h, tmp_path, "show", "kim", "--json")).stdout)
    [rule] = data["auto"]
    assert (rule["destination_id"], rule["currency"], rule["threshold"], rule["every"]) == (
        dst,
        "USD",
        50_000_000,
        None,
    )
    [status] = data["auto_status"]
    assert (status["currency"], status["available"], status["due"]) == ("USD", 30_000_000, False)
    assert status["explanation"] == "below your threshold by 20.00 USD"
    stopped = await profile(h, tmp_path, "stop-auto", "kim", "--currency", "USD")
    assert stopped.returncode == 0 and stopped.stdout.strip() == "kim: no automatic cash-out in USD"
    assert (await h.client.payee_profile("kim")).auto == ()


async def test_refused_changes_exit_1_with_one_line(harness: Harness, tmp_path: Path) -> None:
    """The worker refuses another payee's destination id and a threshold below the policy's
    minimum cash-out: one line on stderr, exit 1, and nothing is written."""
    h = harness
    theirs = await h.client.save_destination("lea", "gift_card", "lea@example.org")
    mine = await h.client.save_destination("max", "gift_card", "max@example.org")
    not_theirs = f"error: destination_id: {theirs!r} is not a saved destination of 'max'"
    for args, why in (
        (("default", "max", theirs), not_theirs),
        (("remove", "max", theirs), not_theirs),
        (("auto", "max", "-d", theirs, "-c", "USD", "--threshold", "50"), not_theirs),
        (
            ("auto", "max", "-d", mine, "-c", "USD", "--threshold", "1"),
            "error: auto.threshold: below the policy minimum cash-out for USD",
        ),
    ):
        assert one_line_error(await profile(h, tmp_path, *args)) == why, args
    lea = await h.client.payee_profile("lea")
    assert [(d.id, d.is_default) for d in lea.destinations] == [(theirs, False)]
    maxs = await h.client.payee_profile("max")
    assert [d.id for d in maxs.destinations] == [mine] and maxs.auto == ()


DST = "dst_" + "0" * 20


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("show", "bad/user"), "USER: 'bad/user' must be"),
        (("save", "u1", "-m", "cheque", "-d", "x"), "method: 'cheque' is not one of"),
        (("save", "u1", "-m", "wallet", "-d", "nope"), "destination.wallet_id: 'nope' must be"),
        (
            ("save", "u1", "-m", "bank_transfer", "-d", "DE89370400440532013000"),
            "destination.holder_name: the account holder's name is required",
        ),
        (
            ("save", "u1", "-m", "wallet", "-d", "u1@example.org", "--holder", "U One"),
            "--holder/--bic: only for bank_transfer, not wallet",
        ),
        (("save", "u1", "-m", "wallet", "-d", f"saved:{DST}"), "--destination: give the account"),
        (("remove", "u1", "dst_xyz"), "DST_ID: 'dst_xyz' is not a saved destination id"),
        (("auto", "u1", "-d", DST, "-c", "USD"), "give a threshold, a schedule, or both"),
        (("auto", "u1", "-d", DST, "-c", "ZZZ", "--threshold", "5"), "--currency: 'ZZZ' is not"),
        (
            ("auto", "u1", "-d", DST, "-c", "USD", "--threshold", "1e3"),
            "--threshold: '1e3' uses exponent notation",
        ),
        (
            ("auto", "u1", "-d", DST, "-c", "USD", "--threshold", "5.001"),
            "--threshold: '5.001' is not a whole number of USD minor units",
        ),
        (("auto", "u1", "-d", DST, "-c", "USD", "--threshold", "0"), "--threshold: must be"),
        (("auto", "u1", "-d", DST, "-c", "USD", "--every", "daily"), "--every: 'daily' is not one"),
        (
            ("auto", "u1", "-d", DST, "-c", "USD", "--threshold", "9", "--minimum", "5"),
            "--minimum: only applies with --every",
        ),
        (
            ("auto", "u1", "-d", DST, "-c", "USD", "--every", "weekly", "--minimum", "-1"),
            "--minimum: '-1' is negative",
        ),
        (("stop-auto", "u1", "-c", "XYZ"), "--currency: 'XYZ' is not"),
    ],
)
def test_bad_input_is_refused_before_anything_is_sent(
    args: tuple[str, ...],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each malformed input is one line naming the option and the rule, exit 1, checked
    before the CLI connects to anything (no server here: nothing can be written)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PAYOUTS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:9")  # connecting would fail otherwise
    cli.env.reset()
    code = cli.run(["profile", *args])
    err = capsys.readouterr().err
    assert code == 1, err
    assert message in err and err.strip().count("\n") == 0, err
