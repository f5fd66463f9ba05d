"""The house rules of docs/architecture.md, checked: which layer may import which, the pure
domain free of I/O, nothing importing the `worker.py` entry point, and short modules."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent.parent
CODE = ("payouts", "workflows", "activities")
MAX_LINES = 400

# Each layer and the layers of our own code it may import (itself included). Third-party
# packages are free, except where FORBIDDEN says otherwise.
MAY_IMPORT: dict[str, set[str]] = {
    "payouts.errors": set(),
    "payouts.domain": {"payouts.errors"},
    "payouts.config": {"payouts.errors", "payouts.domain"},
    "payouts.security": {"payouts.errors", "payouts.domain", "payouts.config"},
    "payouts.web": set(),
    "payouts.store": {"payouts.errors", "payouts.domain"},
    "payouts.ledger": {"payouts.errors", "payouts.domain", "payouts.store"},
    "payouts.temporal": {
        "payouts.errors",
        "payouts.domain",
        "payouts.config",
        "payouts.security",
        "payouts.web",
    },
    "payouts.rails": {
        "payouts.errors",
        "payouts.domain",
        "payouts.security",
        "payouts.store",
        "payouts.ledger",
        "payouts.web",
        "payouts.temporal.contract",
    },
    "payouts.payees": {
        "payouts.errors",
        "payouts.domain",
        "payouts.security",
        "payouts.store",
        "payouts.ledger",
    },
    "payouts.ops": {
        "payouts.errors",
        "payouts.domain",
        "payouts.store",
        "payouts.ledger",
        "payouts.rails",
    },
    "workflows": {
        "payouts.errors",
        "payouts.domain",
        "payouts.temporal.contract",
        "payouts.temporal.interfaces",
        "payouts.temporal.search",
        "payouts.security.keys",  # verifying a signature is pure: the same on every replay
    },
    "activities": {
        "payouts.errors",
        "payouts.domain",
        "payouts.config",
        "payouts.security",
        "payouts.store",
        "payouts.ledger",
        "payouts.rails",
        "payouts.ops",
        "payouts.payees",
        "payouts.temporal.contract",
        "payouts.temporal.interfaces",
    },
    # the top: composition, the command line, the developer stack
    "payouts.app": {"payouts", "activities", "workflows"},
    "payouts.cli": {"payouts"},
    "payouts.devstack": {"payouts"},
}
FORBIDDEN = {
    "payouts.domain": {
        "temporalio",
        "sqlalchemy",
        "sqlmodel",
        "alembic",
        "psycopg",
        "sqlite3",
        "aiohttp",
        "lxml",
        "socket",
        "subprocess",
    },
    "workflows": {"sqlalchemy", "sqlmodel", "psycopg", "sqlite3", "aiohttp"},
}


def layer_of(module: str) -> str:
    if module in ("payouts", "payouts.__main__"):
        return "payouts.cli"  # the package's own entry: `python -m payouts` runs the CLI
    for name in sorted(MAY_IMPORT, key=len, reverse=True):
        if module == name or module.startswith(name + "."):
            return name
    raise AssertionError(f"{module} is in no layer of docs/architecture.md")


def modules() -> list[tuple[str, Path]]:
    found = []
    for top in CODE:
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            if "migrations" in parts and "versions" in parts:
                continue  # revisions describe the schema; they import only alembic
            found.append((".".join(parts), path))
    return found


def imports_of(path: Path, module: str) -> set[str]:
    """Every module `path` imports, anywhere in it (functions and `with` blocks too)."""
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            for alias in node.names:
                # `from package import module` imports the module; `from module import
                # name` imports the module
                sub = f"{base}.{alias.name}"
                found.add(sub if is_module(sub) else base)
    return found


def is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def ours(name: str) -> bool:
    return name.split(".")[0] in (*CODE, "worker", "starter")


def allowed(layer: str, target: str) -> bool:
    if target in ("payouts", *CODE):
        return False  # a whole package: import what you use by its module
    if layer_of_or_none(target) == layer:
        return True
    return any(target == ok or target.startswith(ok + ".") for ok in MAY_IMPORT[layer])


def layer_of_or_none(module: str) -> str | None:
    try:
        return layer_of(module)
    except AssertionError:
        return None


MODULES = modules()


@pytest.mark.parametrize(("module", "path"), MODULES, ids=[m for m, _ in MODULES])
def test_each_module_imports_only_what_its_layer_may(module: str, path: Path) -> None:
    """A module imports its own layer and the layers below it, never one above."""
    layer = layer_of(module)
    wrong = []
    for target in sorted(imports_of(path, module)):
        top = target.split(".")[0]
        if top in ("worker", "starter"):
            wrong.append(f"{target} (the entry points are imported by nothing)")
        elif ours(target) and not allowed(layer, target):
            wrong.append(target)
        elif top in FORBIDDEN.get(layer, set()):
            wrong.append(f"{target} (no I/O in {layer})")
    assert not wrong, f"{module} ({layer}) imports {wrong}"


def test_the_pure_domain_imports_without_io_packages() -> None:
    """Every domain module imports in a Python where temporalio, SQLAlchemy, sqlmodel and
    the database drivers cannot be imported at all."""
    domain = [m for m, _ in MODULES if layer_of(m) == "payouts.domain"]
    blocked = ["temporalio", "sqlalchemy", "sqlmodel", "alembic", "psycopg", "sqlite3", "aiohttp"]
    script = (
        "import sys\n"
        f"for name in {blocked!r}:\n"
        "    sys.modules[name] = None\n"
        f"for m in {domain!r}:\n"
        "    __import__(m)\n"
        "print(len([m for m in sys.modules if m.startswith('payouts.')]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) >= len(domain)


@pytest.mark.parametrize(("module", "path"), MODULES, ids=[m for m, _ in MODULES])
def test_modules_are_short_or_say_why(module: str, path: Path) -> None:
    """No module is over 400 lines unless its first lines say why it must be."""
    text = path.read_text()
    lines = text.count("\n")
    if lines <= MAX_LINES:
        return
    head = "\n".join(text.splitlines()[:12]).lower()
    assert "longer than 400 lines because" in head, f"{module} has {lines} lines"
