"""`payouts keygen ...`: every key a deployment needs, and the line that registers it.

Private keys are written to a file readable by its owner only (mode 0600, never over an
existing file); what to register is printed on standard output. Rotation is in the
README's security section.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated

import typer
from cryptography.fernet import Fernet

from payouts.cli.common import app, err, out
from payouts.errors import InvalidInput
from payouts.security.keys import SigningKey

keygen_app = typer.Typer(
    help="Make keys: payload, gift codes, platform, service, reviewer, operator.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(keygen_app, name="keygen")

OutOpt = Annotated[Path, typer.Option("--out", help="Where to write the private key (0600).")]


def _print(line: str) -> None:
    out.print(line, markup=False, highlight=False)


def _signing_key(path: Path) -> SigningKey:
    key = SigningKey.generate()
    key.save(path)
    err.print(f"private key written to {path} (mode 0600); key id {key.key_id}", markup=False)
    return key


@keygen_app.command("payload")
def payload(
    key_id: Annotated[str, typer.Argument(help="A name for the key, e.g. 2026-11.")],
) -> None:
    """A Temporal payload key, `id:base64key`. To rotate, put it first in
    PAYOUTS_PAYLOAD_KEYS and keep the old ones after it, on every worker and codec server."""
    from payouts.temporal.codec import new_key, parse_keys

    if not key_id or any(c in key_id for c in ":, ") or not key_id.isprintable():
        raise InvalidInput("key_id: must be a non-empty name without ':', ',' or spaces")
    spec = f"{key_id}:{new_key()}"
    parse_keys(spec, secret="")  # the same rules the workers apply
    _print(spec)


@keygen_app.command("giftcodes")
def giftcodes() -> None:
    """A key for gift card codes at rest. To rotate, put it first in PAYOUTS_GIFT_CODE_KEYS."""
    _print(Fernet.generate_key().decode())


@keygen_app.command("platform")
def platform(out_file: OutOpt) -> None:
    """The platform's signing key: its client signs cash-out requests and payees' cancels
    (PAYOUTS_PLATFORM_KEY_FILE); workers verify with the public key printed."""
    _print(f"PAYOUTS_PLATFORM_PUBLIC_KEY={_signing_key(out_file).public}")


@keygen_app.command("service")
def service(out_file: OutOpt) -> None:
    """Our rail components' signing key (workers and webhook ingress sign the rails'
    events with it): PAYOUTS_SERVICE_KEY_FILE on every worker."""
    key = _signing_key(out_file)
    _print(f"PAYOUTS_SERVICE_KEY_FILE={out_file.resolve()}  # public key {key.public}")


@keygen_app.command("reviewer")
def reviewer(
    reviewer_id: Annotated[str, typer.Argument(metavar="ID", help="The reviewer's id.")],
    out_file: OutOpt,
) -> None:
    """A reviewer's signing key. The reviewer keeps the file (their CLI's --key); the
    policy's [[reviewers]] entry gets the public key printed."""
    key = _signing_key(out_file)
    _print(f'[[reviewers]]\nid = "{reviewer_id}"\npublic_key = "{key.public}"')


@keygen_app.command("operator")
def operator() -> None:
    """The operators' bearer token for the codec server (PAYOUTS_OPERATOR_TOKEN)."""
    _print(f"PAYOUTS_OPERATOR_TOKEN={secrets.token_urlsafe(32)}")
