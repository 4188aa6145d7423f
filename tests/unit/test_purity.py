"""The functional core stays pure (DESIGN §1.1, §1.2): no domain module imports a store
adapter, a database driver or `time`, and none reads the wall clock.

The scan parses the source with `ast`, so it sees imports inside functions too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import salesflow

PACKAGE = Path(salesflow.__file__).parent

NOT_CORE_FILES = {"engine.py", "cli.py", "clock.py", "worker.py", "__init__.py"}
"""The shell (the worker loop included), the clock port, and the package facade
(``salesflow/__init__.py`` re-exports the public API, stores included, so it is not part
of the core)."""
NOT_CORE_DIRS = {"commands", "stores", "testing"}
"""The shell's command areas (mixins composed into ``Salesflow``), the store adapters and
the testing helpers."""

FORBIDDEN_MODULES = (
    "sqlite3",
    "psycopg",
    "time",
    "salesflow.stores.sqlite",
    "salesflow.stores.postgres",
    "salesflow.stores.memory",
    "salesflow.stores.url",
)
"""A module is forbidden when it is one of these or inside one of them."""

FORBIDDEN_CALLS = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("time", "time"),
    ("time", "sleep"),
}
"""``owner.attribute`` calls that read the wall clock or wait."""


def core_modules() -> list[Path]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] in NOT_CORE_DIRS or str(relative) in NOT_CORE_FILES:
            continue
        found.append(path)
    return found


def _forbidden(module: str) -> bool:
    return any(module == bad or module.startswith(bad + ".") for bad in FORBIDDEN_MODULES)


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f"{inner}.{node.attr}" if inner else None
    return None


def violations(source: str, package: str = "salesflow") -> list[str]:
    """Every impure import or wall-clock call in ``source``, as readable lines.

    ``package`` is the package the module lives in, to resolve relative imports.
    """
    tree = ast.parse(source)
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _forbidden(alias.name):
                    found.append(f"line {node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                if _forbidden(target):
                    found.append(f"line {node.lineno}: from {base} import … ({target})")
                    break
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name is None:
                continue
            parts = name.split(".")
            if len(parts) >= 2 and (parts[-2], parts[-1]) in FORBIDDEN_CALLS:
                found.append(f"line {node.lineno}: call {name}()")
    return found


def package_of(path: Path) -> str:
    module = module_name(path)
    return module if path.name == "__init__.py" else module.rsplit(".", 1)[0]


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def test_the_core_is_found() -> None:
    names = {module_name(p) for p in core_modules()}
    expected = {
        "salesflow.lead",
        "salesflow.party",
        "salesflow.qualification",
        "salesflow.opportunity",
        "salesflow.activity",
        "salesflow.values",
        "salesflow.conditions",
        "salesflow.events",
        "salesflow.lifecycle",
        "salesflow.worktime",
        "salesflow.views",
        "salesflow.fields",
        "salesflow.errors",
    }
    assert expected <= names
    assert not names & {
        "salesflow.engine",
        "salesflow.commands",
        "salesflow.commands.core",
        "salesflow.commands.leads",
        "salesflow.commands.records",
        "salesflow.commands.activities",
        "salesflow.commands.due",
        "salesflow.clock",
        "salesflow.cli",
        "salesflow.stores.base",
        "salesflow.stores.memory",
        "salesflow.testing.contract",
    }


@pytest.mark.parametrize("path", core_modules(), ids=module_name)
def test_core_module_is_pure(path: Path) -> None:
    problems = violations(path.read_text(encoding="utf-8"), package_of(path))
    assert problems == [], f"{module_name(path)} is not pure: {problems}"


# --- the scanner itself must be able to fail -----------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "import sqlite3",
        "import psycopg",
        "import psycopg.rows",
        "from psycopg import sql",
        "import time",
        "from time import monotonic",
        "from salesflow.stores.memory import MemoryStore",
        "from salesflow.stores import sqlite",
        "from salesflow.stores import postgres as pg",
        "import salesflow.stores.url",
        "from .stores.memory import MemoryStore",
        "from .stores import memory",
        "def f():\n    import sqlite3\n",
        "datetime.now()",
        "datetime.datetime.now(UTC)",
        "datetime.utcnow()",
        "datetime.today()",
        "date.today()",
        "time.time()",
        "time.sleep(1)",
        "def f():\n    return dt.datetime.now()\n",
    ],
)
def test_the_scan_catches(source: str) -> None:
    assert violations(source), f"the scan missed: {source!r}"


def test_relative_imports_resolve_from_a_subpackage() -> None:
    assert violations("from ..stores import memory", package="salesflow.templates")
    assert violations("from . import memory", package="salesflow.stores")
    assert violations("from .. import stores", package="salesflow.templates") == []


@pytest.mark.parametrize(
    "source",
    [
        "from datetime import datetime, time, timedelta",
        "from salesflow.stores.base import Query",
        "from salesflow.stores import base",
        "from .stores.base import SortKey",
        "import timeit_like_name",
        "from salesflow.timeline import x",
        "datetime.combine(day, time(0))",
        "clock.now()",
        "now = self.now",
        "datetime.fromisoformat(s)",
    ],
)
def test_the_scan_allows(source: str) -> None:
    assert violations(source) == []
