"""The sandbox bank's Verification of Payee: how names compare, and its account codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from payouts.devstack.demo import sandbox_iban
from payouts.domain.profiles import Verification as V
from payouts.rails.bank.vop import INITIALS, OTHER_NAME, UNAVAILABLE, SandboxPayeeVerifier, compare
from payouts.rails.sandbox_db import SandboxDB


@pytest.mark.parametrize(
    ("asked", "held", "answer"),
    [
        ("Chloé Martin", "MARTIN, Chloe", V.MATCH),  # case, accents, order, punctuation
        ("Dev Patel", "D. Patel", V.CLOSE_MATCH),  # an initial for the first name
        ("D Patel", "Dev Patel", V.CLOSE_MATCH),
        ("Dev Patel", "Dev Pattel", V.CLOSE_MATCH),  # a typo
        ("Dev Patel", "Dev", V.NO_MATCH),  # a missing name is not close
        ("Dev Patel", "Ana Souza", V.NO_MATCH),
        ("D. P.", "Dev Patel", V.NO_MATCH),  # initials alone are not a name
        ("", "Dev Patel", V.NO_MATCH),
    ],
)
def test_names_compare_like_a_vop_service(asked: str, held: str, answer: V) -> None:
    assert compare(asked, held) is answer


def test_the_sandbox_answers_by_account(tmp_path: Path) -> None:
    vop = SandboxPayeeVerifier(SandboxDB(tmp_path / "sandbox.sqlite3"))
    assert vop.verify(sandbox_iban("1234"), "Ida Kern") == (V.MATCH, "")
    assert vop.verify(sandbox_iban(INITIALS), "Ida Kern") == (V.CLOSE_MATCH, "I. Kern")
    assert vop.verify(sandbox_iban(OTHER_NAME), "Ida Kern") == (V.NO_MATCH, "")
    assert vop.verify(sandbox_iban(UNAVAILABLE), "Ida Kern") == (V.UNAVAILABLE, "")
    registered = sandbox_iban("5555")
    vop.register(registered, "Ida Maria Kern")
    assert vop.verify(registered, "Ida Kern")[0] is V.NO_MATCH  # a missing middle name
    assert vop.verify(registered, "I. M. Kern") == (V.CLOSE_MATCH, "Ida Maria Kern")
    assert vop.calls(registered) == 2
