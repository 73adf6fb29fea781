"""Bud Pipelines: event-driven pipelines. The public face of the Python SDK.

    from bud import BudClient

    client = BudClient()  # BUD_URL, BUD_API_KEY
    trigger = client.event_triggers.create(pipeline_id="pipe_abc123", event_type="model.added")

Importing ``bud`` loads only the SDK (httpx, pydantic): nothing of the server.
"""

from __future__ import annotations

from bud.client import AsyncBudClient, BudClient, WaitTimeout
from bud.errors import (
    AuthenticationError,
    BadRequestError,
    BudError,
    ConflictError,
    FilterError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    TransportError,
    ValidationError,
)
from bud.schemas import (
    Action,
    Attempt,
    BacktestResult,
    BatchResult,
    Channel,
    Cluster,
    Decision,
    Delivery,
    Deployment,
    DeploymentRevision,
    DryRunResult,
    DryRunStep,
    Event,
    EventTrigger,
    EventType,
    Execution,
    Hook,
    HookDelivery,
    Model,
    Monitor,
    Page,
    Pipeline,
    ReplayDecision,
    ReplayResult,
    Secret,
    Step,
    TriggerStats,
    TriggerTest,
    ValidationResult,
)

__version__ = "0.1.0"

__all__ = [
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
]
