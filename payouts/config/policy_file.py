"""Reading the policy file: the shipped `default_policy.toml`, or `PAYOUTS_POLICY`."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

from payouts.domain.policy import Policy, parse_policy
from payouts.errors import PolicyInvalid


def load_policy(path: Path | None = None) -> Policy:
    """Load and validate a policy file; the shipped default when `path` is None."""
    if path is None:
        text = default_policy_text()
        source = "default_policy.toml"
    else:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise PolicyInvalid(f"policy {source}: cannot read ({exc.strerror})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyInvalid(f"policy {source} is not valid TOML: {exc}") from None
    return parse_policy(data, source)


def default_policy_text() -> str:
    """The policy this package ships."""
    return resources.files("payouts.config").joinpath("default_policy.toml").read_text()
