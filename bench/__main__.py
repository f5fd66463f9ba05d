"""`python -m bench [--only ledger,cashout,sweep,statement] [--rows N] [--payees N]
[--statement-earnings N]`: print every benchmark table."""

from __future__ import annotations

import argparse
import os
import platform
import sys

from bench.common import postgres_reachable


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench")
    parser.add_argument(
        "--only",
        default="ledger,cashout,sweep,statement",
        help="comma list of: ledger, cashout, sweep, statement",
    )
    parser.add_argument("--serial", type=int, default=60, help="cash-outs run one at a time")
    parser.add_argument("--load", type=int, default=400, help="cash-outs run under load")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument(
        "--payees",
        type=int,
        default=int(os.environ.get("BENCH_SWEEP_PAYEES", 100_000)),
        help="opted-in payees the automatic cash-out sweep pages through",
    )
    parser.add_argument(
        "--sweep-due", type=float, default=0.002, help="fraction of them due (started)"
    )
    parser.add_argument(
        "--sweep-db", default="sqlite,postgresql", help="ledger databases the sweep runs on"
    )
    parser.add_argument(
        "--statement-earnings",
        type=int,
        default=1_000_000,
        help="earnings of the one payee whose statement is streamed",
    )
    args = parser.parse_args()
    only = set(args.only.split(","))
    kinds = ["sqlite"] + (["postgresql"] if postgres_reachable() else [])
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {platform.platform()}"
    )
    if "postgresql" not in kinds:
        print("PostgreSQL not reachable: its rows are left out")
    if "cashout" in only:
        from bench import cashout_bench

        print()
        print(cashout_bench.run(args.serial, args.load), flush=True)
    if "ledger" in only:
        from bench import ledger_bench

        print()
        print(ledger_bench.run(kinds, args.rows, args.users), flush=True)
    if "sweep" in only:
        from bench import sweep_bench

        print()
        sweep_kinds = [k for k in kinds if k in args.sweep_db.split(",")]
        print(sweep_bench.run(sweep_kinds, args.payees, args.sweep_due), flush=True)
    if "statement" in only:
        from bench import statement_bench

        print()
        print(statement_bench.run(kinds, args.statement_earnings), flush=True)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)
