"""The short version of `make attack`, in `make test`: every attack of the drill against
the running stack, with its table's verdict."""

from __future__ import annotations

from rich.console import Console

from tests.attack import drill, table, verdict
from tests.support.harness import Harness


async def test_every_attack_is_refused_and_nothing_moves(harness: Harness) -> None:
    rows, secrets = await drill(harness, quick=True)
    Console(width=140).print(table(rows, secrets))
    assert all(r.tried > 0 for r in rows)
    assert [r.attack for r in rows if r.refused != r.tried] == []
    assert [r.attack for r in rows if r.moved] == []
    assert [r.attack for r in rows if r.bounded is False] == []
    assert secrets == 0
    assert verdict(rows, secrets)
