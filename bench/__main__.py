"""`python -m bench [--only ledger,cashout] [--rows N]`: print every benchmark table."""

from __future__ import annotations

import argparse
import os
import platform
import sys

from bench.common import postgres_reachable


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench")
    parser.add_argument("--only", default="ledger,cashout", help="comma list of: ledger, cashout")
    parser.add_argument("--serial", type=int, default=60, help="cash-outs run one at a time")
    parser.add_argument("--load", type=int, default=400, help="cash-outs run under load")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=10_000)
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
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)
