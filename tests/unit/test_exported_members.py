"""Pins the public face of ``bud``: adding or removing a name must be a deliberate change."""

from __future__ import annotations

import subprocess
import sys

import bud

EXPECTED = {
    "Action",
    "AsyncBudClient",
    "Attempt",
    "AuthenticationError",
    "BacktestResult",
    "BadRequestError",
    "BatchResult",
    "BudClient",
    "BudError",
    "Channel",
    "Cluster",
    "ConflictError",
    "Decision",
    "Delivery",
    "Deployment",
    "DeploymentRevision",
    "DryRunResult",
    "DryRunStep",
    "Event",
    "EventTrigger",
    "EventType",
    "Execution",
    "FilterError",
    "Hook",
    "HookDelivery",
    "Model",
    "Monitor",
    "NotFoundError",
    "Page",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "Pipeline",
    "RateLimitedError",
    "ReplayDecision",
    "ReplayResult",
    "Secret",
    "ServerError",
    "Step",
    "TransportError",
    "TriggerStats",
    "TriggerTest",
    "ValidationError",
    "ValidationResult",
    "WaitTimeout",
    "__version__",
}


def test_all_is_pinned() -> None:
    assert set(bud.__all__) == EXPECTED
    assert len(bud.__all__) == len(set(bud.__all__)), "duplicates in bud.__all__"


def test_every_exported_name_exists() -> None:
    for name in bud.__all__:
        assert hasattr(bud, name), name


def test_version() -> None:
    assert bud.__version__ == "0.1.0"


def test_errors_share_one_base() -> None:
    for name in bud.__all__:
        obj = getattr(bud, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, bud.BudError), name
    assert issubclass(bud.WaitTimeout, TimeoutError)
    assert issubclass(bud.FilterError, bud.ValidationError)


def test_import_stays_client_side() -> None:
    # A fresh interpreter: this test process may already have imported the server.
    code = (
        "import sys, bud; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('fastapi', 'sqlalchemy', 'uvicorn', 'jinja2', 'aiosqlite', 'psycopg') "
        "or m.startswith(('bud.server', 'bud.engine', 'bud.store', 'bud.actions', "
        "'bud.platform', 'bud.web'))); "
        "print(','.join(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_cli_help_stays_client_side() -> None:
    code = (
        "import sys; from bud.cli.app import app; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'sqlalchemy', "
        "'uvicorn') or m.startswith(('bud.server', 'bud.engine', 'bud.store'))); "
        "print(','.join(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
