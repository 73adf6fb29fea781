"""The repository is the only door to the database (docs/architecture.md).

The engine, the services and the built-in platform speak in domain operations: they import
neither SQLAlchemy nor the table definitions nor a backend. The SQL lives in ``bud.store``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import bud

ROOT = Path(bud.__file__).parent
FORBIDDEN = (
    "sqlalchemy",
    "psycopg",
    "sqlite3",
    "bud.store.schema",
    "bud.store.sql",
    "bud.store.sqlite",
    "bud.store.postgres",
    "bud.store.migrations",
)
GUARDED = ("engine", "services", "platform")


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


@pytest.mark.parametrize("package", GUARDED)
def test_no_sql_outside_the_store(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in files
        for name in _imports(path)
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)
    ]
    assert offenders == []


def test_the_store_package_keeps_the_sql() -> None:
    """And the check above is not vacuous: the store does import SQLAlchemy."""
    assert any(name.startswith("sqlalchemy") for name in _imports(ROOT / "store" / "sql.py"))
