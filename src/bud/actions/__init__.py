"""Actions: the registry and the ``@action`` declaration for third-party actions."""

from bud.actions.base import Action, ActionContext, ActionError, RetryPolicy, action
from bud.actions.registry import ActionRegistry, default_registry

__all__ = [
    "Action",
    "ActionContext",
    "ActionError",
    "ActionRegistry",
    "RetryPolicy",
    "action",
    "default_registry",
]
