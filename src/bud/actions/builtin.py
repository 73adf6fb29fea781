"""Every built-in action."""

from __future__ import annotations

from bud.actions.base import Action
from bud.actions.core import (
    delay_action,
    fail_action,
    log_action,
    run_pipeline_action,
    set_output_action,
)
from bud.actions.http import HTTP_ACTIONS
from bud.actions.notify import NOTIFY_ACTIONS
from bud.actions.operations import OPERATION_ACTIONS
from bud.actions.platform import (
    cluster_health_action,
    deployment_create_action,
    deployment_delete_action,
    model_add_action,
)
from bud.actions.waiting import wait_for_event_action

BUILTIN_ACTIONS: list[Action] = [
    log_action,
    delay_action,
    wait_for_event_action,
    set_output_action,
    fail_action,
    run_pipeline_action,
    cluster_health_action,
    deployment_create_action,
    deployment_delete_action,
    model_add_action,
    *OPERATION_ACTIONS,
    *NOTIFY_ACTIONS,
    *HTTP_ACTIONS,
]
