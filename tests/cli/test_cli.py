"""The `payouts` CLI: ledger commands, --json output, one-line errors and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from payouts import cli


@pytest.fixture
def run_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PAYOUTS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("PAYOUTS_DATABASE_URL", raising=False)
    monkeypatch.delenv("PAYOUTS_POLICY", raising=False)

    def run(*args: str) -> tuple[int, str, str]:
        cli.env.reset()
        code = cli.run(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def test_earn_then_balance_json(run_cli) -> None:  # type: ignore[no-untyped-def]
    """earn credits once per event id; balance --json reports micros."""
    code, out, _ = run_cli("earn", "alice", "0.000125", "-c", "usd", "--event-id", "e1")
    assert code == 0 and "credited" in out
    code, out, _ = run_cli("earn", "alice", "0.000125", "-c", "USD", "--event-id", "e1", "--json")
    assert code == 0 and json.loads(out)["duplicate"] is True
    code, out, _ = run_cli("balance", "alice", "--json")
    [bal] = json.loads(out)
    assert (bal["currency"], bal["pending"], bal["pending_display"]) == ("USD", 125, "0.000125")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("earn", "alice", "1e-3", "-c", "USD"), "AMOUNT: '1e-3' uses exponent notation"),
        (("earn", "alice", "NaN", "-c", "USD"), "NaN and Infinity are not amounts"),
        (("earn", "alice", "1", "-c", "ZZZ"), "--currency: 'ZZZ' is not a supported ISO 4217"),
        (("earn", "bad/user", "1", "-c", "USD"), "USER: 'bad/user' must be"),
        (("quote", "alice", "1", "-m", "wallet", "-c", "USD"), "below the minimum cash-out"),
        (("quote", "alice", "10", "-m", "cheque", "-c", "USD"), "method: 'cheque' is not one of"),
        (("quote", "alice", "all", "-m", "wallet", "-c", "USD"), "no available USD balance"),
        (("ingest", "missing.csv"), "does not exist"),
    ],
)
def test_errors_are_one_line_with_exit_1(run_cli, args: tuple[str, ...], message: str) -> None:  # type: ignore[no-untyped-def]
    """Every refusal is a single line on stderr naming the rule, with exit status 1."""
    code, _, err = run_cli(*args)
    assert code == 1
    assert message in err
    assert err.strip().count("\n") == 0 and "Traceback" not in err


def test_usage_error_exit_2(run_cli) -> None:  # type: ignore[no-untyped-def]
    """Unknown commands and missing options are usage errors (exit 2)."""
    assert run_cli("frobnicate")[0] == 2
    assert run_cli("earn", "alice", "1")[0] == 2


def test_quote_shows_gross_fee_net_and_remainder(run_cli) -> None:  # type: ignore[no-untyped-def]
    """quote prints what the payee gets and what stays, against the available balance."""
    run_cli("earn", "alice", "20.005", "-c", "USD", "--earned-at", "2026-01-01T00:00:00Z")
    code, out, _ = run_cli("quote", "alice", "all", "-m", "bank_transfer", "-c", "USD", "--json")
    data = json.loads(out)
    assert code == 0
    assert (data["gross"], data["fee"], data["net"], data["remainder"]) == (
        20_000_000,
        350_000,
        19_650_000,
        5_000,
    )
    assert data["covered"] is True
    code, out, _ = run_cli("quote", "alice", "12.345678", "-m", "bank_transfer", "-c", "USD")
    assert "0.005678 USD" in out and "12.02 USD" in out


def test_ingest_reports_and_balances_add_up(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """ingest credits a file; the balances it leaves add up to the file's total."""
    path = tmp_path / "e.csv"
    lines = ["event_id,user_id,amount,currency,earned_at"]
    total = 0
    for i in range(3000):
        micros = 100 + i
        total += micros
        lines.append(f"e{i},user{i % 7},0.{micros:06d},USD,2026-10-01T00:00:00Z")
    path.write_text("\n".join(lines) + "\n")
    code, out, _ = run_cli("ingest", str(path), "--json")
    report = json.loads(out)
    assert code == 0 and report["credited"] == 3000 and report["rejected"] == 0
    summed = 0
    for u in range(7):
        _, out, _ = run_cli("balance", f"user{u}", "--json")
        summed += sum(b["available"] + b["pending"] for b in json.loads(out))
    assert summed == total
    code, out, _ = run_cli("audit", "--json")
    assert code == 0 and json.loads(out)["problems"] == []


def test_ingest_rejects_option(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Without --rejects a bad file is refused (exit 1); with it the good rows go in."""
    path = tmp_path / "e.csv"
    path.write_text("event_id,user_id,amount,currency\na,u1,1,USD\nb,u1,oops,USD\n")
    code, _, err = run_cli("ingest", str(path))
    assert code == 1 and "line 3: amount: 'oops'" in err
    code, out, _ = run_cli("ingest", str(path), "--rejects", str(tmp_path / "r.csv"))
    assert code == 0 and "1 credited" in out and "1 rejected" in out


def test_console_script_exits_cleanly(tmp_path: Path) -> None:
    """The installed entry point prints one line and exits 1 on an error, without traceback."""
    env = dict(os.environ, PAYOUTS_DATA_DIR=str(tmp_path))
    proc = subprocess.run(
        [sys.executable, "-m", "payouts", "earn", "alice", "1e-3", "-c", "USD"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 1
    assert (
        proc.stderr.strip()
        == "error: AMOUNT: '1e-3' uses exponent notation; write a plain decimal such as 0.000125"
    )
