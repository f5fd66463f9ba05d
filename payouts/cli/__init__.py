"""`payouts`: the command line for operators, reviewers and the demo.

One module per command group (`ledger`, `cashouts`, `review`, `reversals`, `rails`, `stack`,
`db`, ...), each a thin shell over the services. Every read command takes `--json`. Every
error ends with a one-line message on stderr and a non-zero exit status (1: refused or
invalid, 2: usage); never a traceback, unless PAYOUTS_DEBUG=1.
"""

from __future__ import annotations

import os
import sys

import typer

from payouts.cli import (  # noqa: F401  (each module registers its commands)
    cashouts,
    db,
    keygen,
    ledger,
    profile,
    rails,
    reversals,
    review,
    security,
    stack,
    statement,
)
from payouts.cli.common import app, env, err

__all__ = ["app", "env", "main", "run"]
from payouts.errors import PayoutError


def main(argv: list[str] | None = None) -> None:
    """Run the CLI and leave with an explicit exit status.

    The process ends through `os._exit` after flushing: processes that used the Temporal
    client can crash at interpreter exit (sdk-python #300), and a finished command must
    never report that as its result.
    """
    code = run(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run(argv: list[str] | None = None) -> int:
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="payouts", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except PayoutError as exc:
        err.print(f"error: {exc.message}", markup=False)
        return 1
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        return 130
    except typer.TyperException as exc:  # usage errors: the message, then help hints
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            err.print(f"error: {exc.format_message()}", markup=False)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except Exception as exc:
        if os.environ.get("PAYOUTS_DEBUG"):
            raise
        err.print(f"error: {type(exc).__name__}: {exc}", markup=False)
        return 1
